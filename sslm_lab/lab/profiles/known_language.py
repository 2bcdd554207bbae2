"""09_known_language: every pretraining objective on a language whose optimum is known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sslm_lab.checks import ArgumentError, invalid
from sslm_lab.lab.profiles.parameters import Choice, Integer, Parameters
from sslm_lab.lab.profiles.table import knob, sizes_table

# The objectives the notebook may pretrain (random init is always there, as the control):
# `sslm_lab.lab.recipes.OBJECTIVES` without "random", written out because recipes imports
# this package (tests/test_known_language.py checks that the two agree).
OBJECTIVES = ("mlm", "clm", "electra", "simcse", "span_contrast", "vae")


@dataclass(frozen=True)
class CommaSeparated:
    """A notebook parameter that is a comma-separated list, each item meeting `item` (a
    `Choice`, or an `Integer` whose items must also rise), none twice; `none` as in
    `Integer`. A string, so that papermill and the command line pass it as they pass text:
    `-p objectives mlm,clm`."""

    item: Choice | Integer
    none: str | None = None

    def parse(self, value: str) -> list[Any]:
        """The items of an allowed value, converted (ints for an `Integer` item)."""
        parts = [part.strip() for part in value.split(",")]
        if isinstance(self.item, Integer):
            return [int(part) for part in parts]
        return parts

    def check(self, name: str, value: Any) -> Any:
        if value is None and self.none:
            return None
        kind = "integers" if isinstance(self.item, Integer) else "names"
        allowed = f"a string of comma-separated {kind}, e.g. {self.good_values()[1]!r}"
        if self.none:
            allowed += ", or None"
        if not isinstance(value, str) or not value.strip():
            raise invalid(name, value, allowed)
        parts = [part.strip() for part in value.split(",")]
        if isinstance(self.item, Integer):
            if not all(part.isdigit() for part in parts):
                raise invalid(name, value, allowed)
            items: list[Any] = [int(part) for part in parts]
        else:
            items = parts
        for item in items:
            try:
                self.item.check(name, item)
            except ArgumentError as error:
                allowed_item = str(error).split("allowed: ")[-1]
                raise invalid(name, value, f"items each {allowed_item}") from None
        if len(set(items)) < len(items):
            raise invalid(name, value, "no item twice")
        if isinstance(self.item, Integer) and items != sorted(items):
            raise invalid(name, value, "integers in rising order")
        return value

    def bad_values(self) -> list[Any]:
        good = self.good_values()[0]
        first = good.split(",")[0]
        values: list[Any] = [3, "", " ", f"{first},{first}", f"{good},nonsense"]
        if isinstance(self.item, Integer):
            values += ["1.5", f"{self.item.low - 1}" if self.item.low else "-1", "2,1"]
        return values + ([] if self.none else [None])

    def good_values(self) -> list[Any]:
        if isinstance(self.item, Integer):
            low = self.item.low or 0
            values: list[Any] = [str(low), f"{low},{low + 1}"]
        else:
            options = [str(option) for option in self.item.options]
            values = [",".join(options), options[0]]
        return values + ([None] if self.none else [])


# The notebook's parameters cell, besides `profile`: what each value may be.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    objectives=CommaSeparated(Choice(OBJECTIVES), none="the profile's objectives"),
    budgets=CommaSeparated(Integer(low=1), none="the profile's label budgets"),
    pretrain_steps=Integer(low=1, none="the profile's pretrain_steps"),
)


def check_budgets(budgets: list[int], labelled_pool: int, num_dialects: int) -> None:
    """Refuse a label budget the labelled pool cannot give: k labelled sequences for
    tagging, k per dialect for the dialect; the pool holds labelled_pool / num_dialects
    sequences of each dialect."""
    largest = labelled_pool // num_dialects
    too_big = [k for k in budgets if k > largest]
    if too_big:
        raise invalid(
            "budgets",
            ",".join(map(str, budgets)),
            f"k <= {largest}: the labelled pool holds {labelled_pool} sequences, "
            f"{largest} of each of the {num_dialects} dialects, and the dialect task takes "
            "k of each",
        )


# fmt: off
@sizes_table
class KnownLanguageSizes:
    """09_known_language: every pretraining objective on a language whose optimum is known."""

    #                                   smoke       laptop      gpu
    # The language: hmm_language.make_language(num_words, ambiguity, successors), its other
    # knobs the module's defaults (20 classes, 4 dialects at distance 0.25, 32 tokens, seed
    # 0), the same at every size. The module's defaults (300 words, ambiguity 5, 5
    # successors) leave the bigram only 0.14 nats above the floor (4.950 against 5.091 on
    # 1,000 test sequences), so a causal LM's share of that way is a small, noisy ratio.
    # One successor per class in each grammar (two per dialect, as each mixes the shared
    # grammar with its own) makes the hidden state carry what the previous word does not
    # say. Exact, 1,000 test sequences, add-1 bigram on 40,000 (floor, bigram, gap, Bayes
    # tagger / most frequent class): 1 successor, 300 words, ambiguity 5: 3.998, 4.691,
    # 0.692, 0.996 / 0.609; 100 words: 3.205, 3.873, 0.668, 0.993 / 0.533; 100 words,
    # ambiguity 2: 2.551, 3.152, 0.601, 0.999 / 0.752; 2 successors, 300 words: gap 0.360.
    # The exact bigram (the true model's p(x_t | x_t-1)) is within 0.04 of the add-1 one:
    # the gap is the hidden state's, not the counts'.
    num_words: int = knob(              100,        100,        100)
    ambiguity: int = knob(              2,          2,          2)
    successors: int = knob(             1,          1,          1)
    # Sequences drawn from it, by split:
    train_sequences: int = knob(        2_000,      40_000,     400_000)  # unlabelled text
    labelled_pool: int = knob(          128,        1_024,      4_096)    # balanced by dialect
    test_sequences: int = knob(         200,        1_000,      5_000)
    val_sequences: int = knob(          64,         256,        1_000)    # the training curves
    # The encoders: recipes.EncoderRecipe at this shape, block 33 ([CLS] + 32 words), AdamW
    # at lr (warmup, cosine to lr / 10), dropout 0.1 (SimCSE's only augmentation). lr 1e-3
    # against 3e-3, laptop, 450 MLM steps' FLOPs, one seed: the 3e-3 probes were lower for
    # every objective (CLM tagging at k = 1: 0.225 against 0.302).
    n_layer: int = knob(                1,          2,          2)
    n_head: int = knob(                 2,          4,          4)
    n_embd: int = knob(                 16,         64,         128)
    intermediate_size: int = knob(      32,         256,        512)
    batch_size: int = knob(             16,         64,         64)
    lr: float = knob(                   1e-3,       1e-3,       1e-3)
    dropout: float = knob(              0.1,        0.1,        0.1)
    # The pretraining budget: the FLOPs of pretrain_steps MLM steps; every objective gets
    # the steps of its own that cost as much (recipes.steps_for_flops). On one thread of
    # the 2-core VM (the CPU time a laptop run is sized by), laptop: 37 ms per MLM step,
    # 42 CLM, 60 ELECTRA, 87 SimCSE, 97 VAE: one seed of all six is ~125 s at 450 steps.
    # At 300 (the stored run, this language): 111 s CPU for the 8 runs, 36 of them the 3
    # MLM seeds.
    pretrain_steps: int = knob(         4,          300,        3_000)
    # Seeds (pretraining and label draws): `seeds` for MLM and random init, the asserted
    # comparison; `other_seeds` for the other objectives. Cut at laptop: 3 seeds of every
    # objective (what issue 35 asks) would add 10 runs, about 160 s CPU with their probes,
    # to the stored run's 305 s, past the 5-minute budget; so the other objectives have
    # one seed each, paired with random init's first seed in their comparisons.
    seeds: int = knob(                  2,          3,          5)
    other_seeds: int = knob(            1,          1,          5)
    objectives: tuple[str, ...] = knob( OBJECTIVES, OBJECTIVES, OBJECTIVES)
    # Snapshots of each seed-0 run, as shares of its steps (0 and 1 are always there):
    # probe accuracy at sweep_budget against the pretraining done so far.
    snapshot_shares: tuple[float, ...] = knob((0.5,), (0.125, 0.25, 0.5), (0.0625, 0.125, 0.25, 0.5))
    sweep_budget: int = knob(           1,          4,          4)
    # The limits: a causal LM and an MLM trained curve_steps each, evaluated curve_evals
    # times on the val sequences against the exact optimum. On the module's default
    # language, at laptop shape a CLM needed 1,500 steps (lr 1e-3, no dropout) to reach
    # 5.056 nats against bigram 5.080 and floor 4.943 on 500 held-out sequences.
    curve_steps: int = knob(            6,          1_200,      10_000)
    # Dropout of the curve runs. The module's default language, laptop shape, CLM, lr
    # 1e-3, 1,000 steps, 500 val
    # sequences (floor 4.943, bigram 5.081), one thread of the loaded 2-core VM: without
    # dropout 5.064 (0.121 of the way from the bigram to the floor, 48 s CPU); lr 2e-3
    # 5.065, lr 3e-3 5.095; 128 wide, 600 steps, 5.063 (0.128, 73 s CPU). With dropout
    # 0.1, 1,051 steps reached 0.083 on the test sequences. Nothing tried at this budget
    # came near the floor.
    curve_dropout: float = knob(        0.0,        0.0,        0.0)
    # The curve runs' learning rate (the pretraining for the probes keeps `lr`). On this
    # language (1 successor, 100 words, ambiguity 5), laptop CLM, 1,147 steps, 1,000 test
    # sequences: lr 1e-3 closed 0.407 of the way from the bigram to the floor, 3e-3 0.503;
    # ambiguity 2 at 1e-3: 0.488; ambiguity 2 at 3e-3 (this profile, the stored run):
    # 0.629. One thread of the loaded 2-core VM, seed 0.
    curve_lr: float = knob(             3e-3,       3e-3,       3e-3)
    curve_evals: int = knob(            3,          12,         20)
    # Label budgets k: labelled sequences for tagging, sequences per dialect for the dialect
    budgets: tuple[int, ...] = knob(    (1, 4),     (1, 4, 16, 64), (1, 4, 16, 64))
    # Full fine-tuning (a token classifier, every weight trains): these k, seed 0 only
    finetune_budgets: tuple[int, ...] = knob((4,),  (4, 64),    (1, 4, 16, 64))
    finetune_steps: int = knob(         3,          80,         300)
    finetune_lr: float = knob(          1e-3,       1e-3,       5e-4)
    finetune_batch: int = knob(         4,          16,         32)
    # Sequences the language explorer computes its exact quantities on
    widget_sequences: int = knob(       200,        1_000,      2_000)
    # What must hold at this size (smoke only proves the code paths). Measured at laptop,
    # seed 0, one thread of the 2-core VM under load (6-9), 305 s CPU for the whole
    # notebook (838 s wall): the causal LM (1,147 steps, lr 3e-3, no dropout) closed 0.629
    # of the way from the bigram (3.152) to the floor (2.551) on 1,000 test sequences, at
    # 2.774 nats; an untrained network: -2.526. Asserted: 0.5, "most of the way" (a margin
    # of 0.129; one seed measured); lr 1e-3 on this language gave 0.488 and fails it, so
    # does a run cut short. gpu: not yet measured; the laptop's.
    min_clm_share: float | None = knob( None,       0.5,        0.5)
    # MLM features tag better than random init at the smallest k, the interval above 0.
    # laptop, this language: 0.320 against 0.181 at k = 1, +0.139 (95 % interval +0.136
    # to +0.142; 3 seeds x 1,000 test sequences): better (the default language: +0.044).
    mlm_beats_random: bool = knob(      False,      True,       True)
    # At least one objective beats bag of words on the dialect (asserted when True).
    # laptop, this language: none did (at k = 64 per dialect every probe 0.254-0.291, bag
    # of words 0.256-0.274, every interval across 0; the default language likewise); the
    # notebook says so and prints why.
    dialect_beats_bow: bool = knob(     False,      False,      False)
# fmt: on
