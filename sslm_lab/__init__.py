"""sslm_lab: self-supervised pretraining of language models, learned by running it.

The top of the package holds the ideas the notebooks teach, one idea a file:

    transformer   attention (explicit and fused), the KV cache, blocks, the body
    heads         heads on the body's hidden states: CausalLM, MaskedLM, SequenceClassifier
    masking       BERT 80/10/10 masking: token, whole-word and span; causal and padding masks
    objectives    the pretraining losses, also in the trainer's (model, batch, step) shape
    contrastive   InfoNCE, NT-Xent, MoCo's queue and momentum update, alignment, uniformity, CPC
    generation    greedy, temperature, top-k, top-p, with the KV cache
    ngrams        the character n-gram models every language model must beat
    interop       weights to and from Hugging Face BERT and GPT-2; the real MiniLM
    pretrained    a trained model saved with its tokenizer, and loaded back

Beside them, in their own packages:

    training/     the one training loop and its machinery (checkpoints, callbacks,
                  batches, devices and precision)
    lab/          the notebooks' tooling: profiles, results, the reproduce runner, the
                  `sslm-lab` command, widgets and figures by topic
    data/         corpora, tokenizers, datasets and LM windows, with verified caches

and at the bottom, used by all: `files` (atomic writes, the weights check) and
`eval_mode` (`with evaluating(model):`). The import direction (lab on top; ideas and
training independent of each other; data and helpers at the bottom) is an import-linter
contract in pyproject.toml, checked by tests/test_architecture.py.
"""

__version__ = "0.1.0"
