"""Interactive views for the notebooks, one module per topic.

Every widget here is a thin view over a pure function that tests call directly: the
widget is never the only way to reach a result, and the notebooks run headless.

- `tokens`: the tokenizer explorer (00_tour);
- `attention`: one head's attention over a line of text (01_attention);
- `masking`: the masking playground and the cloze explorer (02_masked_lm);
- `sampling`: the sampling explorer (03_autoregressive_lm);
- `latent`: the latent explorer, a point or a path through a VAE's code (04_vae);
- `replay`: the training replay, a GAN's samples step by step (05_gan);
- `embeddings`: the embedding explorer, a line's nearest lines (06_contrastive);
- `finetune`: the passage explorer, each fine-tuned model's genre and names (07_fine_tuning).
"""
