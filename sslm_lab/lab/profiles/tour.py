"""00_tour: tokenizers and n-gram baselines."""

from __future__ import annotations

from sslm_lab.lab.profiles.table import knob, sizes_table


# fmt: off
@sizes_table
class TourSizes:
    """00_tour: tokenizers and n-gram baselines."""

    #                                   smoke   laptop  gpu
    bpe_vocab_size: int = knob(         512,    2048,   8192)
    ngram_smoothing: float = knob(      0.01,   0.01,   0.01)  # add-k constant of the n-grams
    digits_grid: int = knob(            4,      8,      10)    # digits per row and column shown
# fmt: on
