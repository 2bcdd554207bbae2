"""Matplotlib figures for the notebooks, one module per topic; each function returns its Figure.

- `corpus`: the corpora and the first baselines (00_tour);
- `attention`: masks, scores and attention weights over tokens (01_attention);
- `language_models`: teacher forcing, learning curves, temperature and the masked-LM
  history (02_masked_lm, 03_autoregressive_lm);
- `vae`: the ELBO's terms, latent maps, rate and distortion (04_vae);
- `gan`: the generator's gradient, sample grids, coverage and diagnostics (05_gan);
- `contrastive`: augmented views, probe curves, the temperature study (06_contrastive);
- `finetune`: accuracy against labels and trained parameters (07_fine_tuning);
- `training`: any run's history, and labelled bars against a baseline.
"""
