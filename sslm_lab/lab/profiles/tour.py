"""00_tour: tokenizers and n-gram baselines."""

from __future__ import annotations

from sslm_lab.data.tokenizers import MAX_BPE_VOCAB_SIZE, MIN_BPE_VOCAB_SIZE
from sslm_lab.lab.profiles.parameters import Integer, Parameters
from sslm_lab.lab.profiles.table import knob, sizes_table

# The notebook's parameters cell, besides `profile`: what each value may be.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    bpe_vocab_size=Integer(
        low=MIN_BPE_VOCAB_SIZE, high=MAX_BPE_VOCAB_SIZE, none="the profile's bpe_vocab_size"
    ),
)


# fmt: off
@sizes_table
class TourSizes:
    """00_tour: tokenizers and n-gram baselines."""

    #                                   smoke   laptop  gpu
    bpe_vocab_size: int = knob(         512,    2048,   8192)
    ngram_smoothing: float = knob(      0.01,   0.01,   0.01)  # add-k constant of the n-grams
    digits_grid: int = knob(            4,      8,      10)    # digits per row and column shown
# fmt: on
