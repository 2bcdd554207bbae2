"""03_autoregressive_lm: the decoders, their training, the dropout comparison, sampling.

The gpu column is the char-level "baby GPT" run, and it is also what
`benchmarks/bench_baby_gpt.py --preset gpu` trains: the benchmark reads its settings here.
"""

from __future__ import annotations

from sslm_lab.data.tokenizers import MAX_BPE_VOCAB_SIZE, MIN_BPE_VOCAB_SIZE
from sslm_lab.lab.profiles.parameters import Integer, Parameters, Real, Text
from sslm_lab.lab.profiles.table import knob, sizes_table

# The notebook's parameters cell, besides `profile`: what each value may be.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    bpe_vocab_size=Integer(
        low=MIN_BPE_VOCAB_SIZE, high=MAX_BPE_VOCAB_SIZE, none="the profile's bpe_vocab_size"
    ),
    # At least 2: the speed the notebook prints is measured over the steps after the first
    # (the warm-up), so one step has none (KeyError 'tokens_per_s').
    max_steps=Integer(low=2, none="the profile's max_steps and bpe_max_steps"),
    dropout_rate=Real(low=0, high=1, low_open=True, high_open=True, none="the profile's"),
    # The KV-cache exercise decodes 20 characters after the prompt with one cache of
    # block_size positions, 32 in the smoke profile: 13 + 20 - 1 = 32 fits, 14 does not.
    prompt=Text(max_length=13),
)


# fmt: off
@sizes_table
class CausalLMSizes:
    """03_autoregressive_lm: the decoders, their training, the dropout comparison, sampling."""

    #                                   smoke       laptop      gpu
    n_layer: int = knob(                1,          4,          6)
    n_head: int = knob(                 2,          4,          6)
    n_embd: int = knob(                 32,         128,        384)
    block_size: int = knob(             32,         64,         256)    # context in tokens
    bias: bool = knob(                  True,       True,       False)  # biases in linear layers
    batch_size: int = knob(             8,          16,         64)     # sequences per step
    max_steps: int = knob(              150,        1000,       5000)   # the character-level run
    bpe_max_steps: int = knob(          150,        700,        2000)   # the BPE run
    lr: float = knob(                   1e-2,       4e-3,       1e-3)   # peak, after warmup
    min_lr: float = knob(               1e-3,       4e-4,       1e-4)   # where the cosine ends
    beta2: float = knob(                0.99,       0.99,       0.99)
    warmup_steps: int = knob(           5,          50,         100)
    weight_decay: float = knob(         0.1,        0.1,        0.1)
    dropout: float = knob(              0.0,        0.0,        0.2)    # char-level and BPE runs
    # laptop "auto": bf16 only where the CPU or GPU multiplies bf16 natively (AVX-512 BF16,
    # AMX; Ampere and newer), else fp32 (hardware.resolve_precision); smoke stays fp32, so
    # it is the same everywhere; gpu is bf16 on CUDA and "auto" on any other device
    precision: str = knob(              "fp32",     "auto",     "bf16")
    compile: bool = knob(               False,      False,      True)   # torch.compile, on CUDA
    bpe_vocab_size: int = knob(         512,        2048,       2048)
    # characters of the LM train split used; None: all of it
    train_chars: int | None = knob(     200_000,    None,       None)
    eval_every: int = knob(             50,         100,        250)
    eval_blocks: int = knob(            16,         128,        1024)   # windows per evaluation
    dropout_train_chars: int = knob(    5_000,      5_000,      100_000)  # the small text
    dropout_steps: int = knob(          40,         300,        1000)
    dropout_rate: float = knob(         0.3,        0.3,        0.2)    # the run with dropout
    sample_tokens: int = knob(          24,         120,        300)    # length of each sample
    samples_per_temperature: int = knob(2,          8,          32)
    temperatures: tuple[float, ...] = knob((0.5, 1.0, 1.5),
                                           (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
                                           (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0))
    # Asserted: both decoders below the trigram's bits per character. Measured at laptop
    # size on the 2-core VM: char 2.660, BPE 2.499 vs trigram 2.941 (margin 0.28 and 0.44);
    # 150 smoke steps only have to beat the unigram.
    beats_trigram: bool = knob(         False,      True,       True)
    # Asserted for a full-length run: char-level val loss at most this (nats per char). The
    # gpu value is the baby-GPT reference figure, not yet measured on this suite's GPU run.
    max_val_loss: float | None = knob(  None,       None,       1.32)
# fmt: on
