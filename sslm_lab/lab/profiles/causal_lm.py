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
    # The char vs BPE vs trigram comparison: passages of the val text, each scored by every
    # system on the same characters. gpu: 256 x 1025 characters, half the val text.
    passages: int = knob(               16,         128,        256)
    passage_chars: int = knob(          129,        257,        1025)
    dropout_train_chars: int = knob(    5_000,      5_000,      100_000)  # the small text
    # laptop: 200 steps, not the 300 of one seed: three seeds of both runs must fit the
    # budget, and without dropout the val loss is at its lowest by step 75 or 125 (seeds
    # 0-2, evaluated every 25) and climbs after
    dropout_steps: int = knob(          40,         200,        1000)
    dropout_rate: float = knob(         0.3,        0.3,        0.2)    # the run with dropout
    # Seeds of the small-text pair (no dropout, dropout): the comparison section 4 is about.
    # The two main runs keep one seed: at laptop size each is over a minute of the five.
    # smoke: 2, the fewest that give the per-seed gap an interval.
    dropout_seeds: int = knob(          2,          3,          5)
    # The shared genre probe (lab.downstream): passages per work; smoke's fewer keep it fast
    genre_max_per_work: int = knob(     8,          64,         64)
    sample_tokens: int = knob(          24,         120,        300)    # length of each sample
    samples_per_temperature: int = knob(2,          8,          32)
    temperatures: tuple[float, ...] = knob((0.5, 1.0, 1.5),
                                           (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
                                           (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0))
    # Asserted (verdicts of lab.compare, "better"): both decoders below the trigram on the
    # same val passages; dropout below no dropout on held-out windows, and its gap smaller.
    # Measured at laptop size, seed 0, on the 2-core VM under load (bf16, 2026-12-08), 95 %
    # intervals: char 2.677 vs trigram 2.957 bits/char, -0.298 to -0.262; BPE 2.477,
    # -0.504 to -0.456 (128 passages); dropout 4.009 vs 4.114, -0.132 to -0.081 (128
    # windows x 3 seeds); gap 0.918 vs 1.405, -0.599 to -0.376 (t over 3 seeds); val
    # bits/char lowest at T = 1.0 (asserted within 0.75-1.25). An untrained decoder is far
    # above the trigram ("worse"), and a run that learned nothing has no gap to shrink
    # ("not established"). 150 smoke steps only have to beat the unigram.
    beats_trigram: bool = knob(         False,      True,       True)
    # Asserted for a full-length run: char-level val loss at most this (nats per char). The
    # gpu value is the baby-GPT reference figure, not yet measured on this suite's GPU run.
    max_val_loss: float | None = knob(  None,       None,       1.32)
# fmt: on
