"""03b_training_craft: what the trainer does silently, each part trained with and without.

Every run of sections 1, 2, 4 and 5 trains the same character-level decoder (03's, deeper
and narrower, so that the layer-norm placement matters) with one recipe: AdamW with
betas (0.9, beta2), decay `weight_decay` on matrices, linear warmup over
`warmup_fraction` of the run, cosine decay to a tenth of the peak, clipping at 1.
"""

from __future__ import annotations

from sslm_lab.lab.profiles.parameters import Choice, Integer, Parameters, Real
from sslm_lab.lab.profiles.table import knob, sizes_table

PRECISIONS = ("bf16", "fp16")  # what section 4's run is compared with fp32 in


def _warmup_within_run(values: dict) -> str | None:
    warmup, steps = values["warmup_steps"], values["max_steps"]
    if warmup is not None and steps is not None and warmup > steps:
        return f"warmup_steps={warmup} is longer than the run, max_steps={steps}"
    return None


# The notebook's parameters cell, besides `profile`: what each value may be.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    max_steps=Integer(low=1, none="the profile's max_steps"),
    warmup_steps=Integer(low=0, none="the profile's warmup_fraction of max_steps"),
    peak_lr=Real(low=0, low_open=True, none="the rate the range test chooses"),
    grad_accumulation=Integer(low=2, high=16, none="the profile's grad_accumulation"),
    precision=Choice(PRECISIONS, none="the profile's precision"),
    seeds=Integer(low=2, high=10, none="the profile's seeds"),
    rules=(_warmup_within_run,),
)


# fmt: off
@sizes_table
class TrainingCraftSizes:
    """03b_training_craft: what the trainer does silently, each part trained with and without."""

    #                                   smoke       laptop      gpu
    n_layer: int = knob(                2,          6,          6)
    n_head: int = knob(                 2,          4,          4)
    n_embd: int = knob(                 32,         64,         128)
    block_size: int = knob(             16,         32,         64)     # context in characters
    batch_size: int = knob(             8,          16,         32)     # windows per step
    max_steps: int = knob(              30,         200,        1000)   # every run of 1, 2, 4, 5
    # Linear warmup over this share of a run. laptop: 100 updates, about 1 / (1 - beta2), the
    # horizon of Adam's second-moment average. Measured while choosing it (2 seeds each):
    # at 2e-3, a warmup of 20 left post-LN on the unigram plateau for both seeds, 100 did not.
    warmup_fraction: float = knob(      0.3,        0.5,        0.1)
    beta2: float = knob(                0.99,       0.99,       0.99)
    weight_decay: float = knob(         0.1,        0.1,        0.1)    # on matrices only
    # characters of the LM train split used; None: all of it
    train_chars: int | None = knob(     200_000,    None,       None)
    val_windows: int = knob(            32,         256,        1024)   # the units compared
    seeds: int = knob(                  2,          3,          5)      # runs per comparison
    # The range test: exponentially rising rate from min to max over this many updates
    range_steps: int = knob(            40,         200,        300)
    range_min_lr: float = knob(         1e-5,       1e-5,       1e-5)
    range_max_lr: float = knob(         1.0,        1.0,        1.0)
    # Multiples of the chosen rate trained above it (1x is the main run)
    rate_multiples: tuple[float, ...] = knob((10,), (3, 10, 30, 100), (3, 10, 30, 100, 300))
    # Section 3: a small float64 model, `grad_accumulation` micro-batches of `micro_rows`
    grad_accumulation: int = knob(      4,          4,          8)
    micro_rows: int = knob(             4,          8,          8)
    # Section 4: the low-precision run beside fp32. Where the device has no fast kernels for
    # it (fp16 on any CPU; bf16 on a CPU without AVX-512 BF16 or AMX) both runs take only
    # `slow_precision_steps`: fp16 autocast took 7x fp32's time per step on the laptop model.
    precision: str = knob(              "bf16",     "bf16",     "bf16")
    slow_precision_steps: int = knob(   10,         40,         100)
    fp16_run: bool = knob(              False,      False,      True)   # also fp16, on CUDA
    # Section 5: weight decay on everything against matrices only, at this strength (both),
    # large enough that the decay of an unopposed gain over one run is visible
    decay_demo_weight_decay: float = knob(1.0,      1.0,        1.0)
    # Section 7's cached sweep: whole short runs of a 2-layer decoder
    sweep_steps: int = knob(            6,          60,         200)
    sweep_rate_multiples: tuple[float, ...] = knob((1, 10), (0.3, 1, 3, 10), (0.3, 1, 3, 10))
    sweep_warmups: tuple[int, ...] = knob((0, 2),   (0, 10, 30),  (0, 30, 100))
    # laptop and gpu assert what a run that learned must show (below the unigram, the
    # comparisons' directions measured there); smoke only proves the code paths.
    learns: bool = knob(                False,      True,       True)
# fmt: on
