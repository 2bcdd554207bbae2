"""sslm_lab: self-supervised pretraining of language models, learned by running it."""

__version__ = "0.1.0"
