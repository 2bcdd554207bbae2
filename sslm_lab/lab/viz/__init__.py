"""Matplotlib figures for the notebooks, one module per topic; each function returns its Figure.

- `corpus`: the corpora and the first baselines (00_tour);
- `attention`: masks, scores and attention weights over tokens (01_attention);
- `language_models`: teacher forcing, learning curves, temperature and the masked-LM
  history (02_masked_lm, 03_autoregressive_lm);
- `training`: any run's history, and labelled bars against a baseline.
"""
