"""Matplotlib figures for the notebooks; each function returns its Figure.

One module per notebook topic, named as its table in `lab/profiles` and its widgets in
`lab/widgets` are:

- `tour`: the corpora and the first baselines (00_tour);
- `attention`: masks, scores and attention weights over tokens (01_attention);
- `masked_lm`: the masked-LM history against the unigram guess (02_masked_lm);
- `causal_lm`: teacher forcing, learning curves and temperature (03_autoregressive_lm);
- `training_craft`: range tests, rate multiples, warmup and layer norms, precision
  (03b_training_craft);
- `vae`: the ELBO's terms, latent maps, rate and distortion (04_vae);
- `gan`: the generator's gradient, sample grids, coverage and diagnostics (05_gan);
- `contrastive`: augmented views, probe curves, the temperature study (06_contrastive);
- `finetune`: accuracy against labels and trained parameters (07_fine_tuning);
- `known_language`: the language's matrices, training curves against the exact optimum,
  accuracy against labels with the optimum on top (09_known_language);
- `training`: any run's history, and labelled bars against a baseline (every notebook).
"""
