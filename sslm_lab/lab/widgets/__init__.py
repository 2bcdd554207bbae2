"""Interactive views for the notebooks, one module per notebook topic (named as its table
in `lab/profiles` and its figures in `lab/viz` are).

Every widget here is a thin view over a pure function that tests call directly: the
widget is never the only way to reach a result, and the notebooks run headless.

- `tour`: the tokenizer explorer (00_tour);
- `attention`: one head's attention over a line of text (01_attention);
- `masked_lm`: the masking playground and the cloze explorer (02_masked_lm);
- `causal_lm`: the sampling explorer (03_autoregressive_lm);
- `training_craft`: the schedule explorer over a sweep trained beforehand (03b_training_craft);
- `vae`: the latent explorer, a point or a path through a VAE's code (04_vae);
- `gan`: the training replay, a GAN's samples step by step (05_gan);
- `contrastive`: the embedding explorer, a line's nearest lines (06_contrastive);
- `finetune`: the passage explorer, each fine-tuned model's genre and names (07_fine_tuning);
- `known_language`: the language explorer, the exact optima as its knobs move
  (09_known_language).
"""
