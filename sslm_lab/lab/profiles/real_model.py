"""08_real_pretrained_model: all-MiniLM-L6-v2 fine-tuned on 07's two tasks."""

from __future__ import annotations

from sslm_lab.lab.profiles.parameters import Integer, Parameters, Text
from sslm_lab.lab.profiles.table import knob, sizes_table

# The notebook's parameters cell, besides `profile`: what each value may be.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    finetune_steps=Integer(low=1, none="the profile's finetune_steps"),
    # MiniLM reads at most 512 WordPiece pieces, [CLS] and [SEP] among them, and a piece
    # holds at least one character (510 full stops are 510 pieces).
    line=Text(max_length=510),
)


# fmt: off
@sizes_table
class RealModelSizes:
    """08_real_pretrained_model: all-MiniLM-L6-v2 fine-tuned on 07's two tasks."""

    # The data are 07's (its profile's passage_tokens, max_per_work and speech samples),
    # so every number here sits on the same test plays as 07's table.
    #                                   smoke       laptop      gpu
    label_budgets: tuple[int, ...] = knob((4,),     (8, 128),   (8, 32, 128))  # per class
    # seed, seed + 1, ...: laptop runs one. The stored laptop run took 529 s of CPU time
    # at one thread (1,697 s wall on the 2-core VM under a load of about 6-10; MiniLM's
    # six genre runs and two random-init probes 1,321 s of it, the four taggers 306 s), so
    # three seeds would pass the 5-minute budget several times over. Its comparisons are
    # paired over the test passages and speeches of that one seed: they say nothing about
    # another draw of labelled passages. gpu: 3.
    seeds: int = knob(                  1,          1,          3)
    # MiniLM's input: a whole passage of 07's chunks, as text: 91.6 WordPiece pieces on
    # average, 119 at most (laptop's training passages), so 256 never truncates one (the
    # notebook asserts it); a speech is cut at names_max_tokens.
    max_tokens: int = knob(             256,        256,        256)
    names_max_tokens: int = knob(       32,         32,         48)
    # Fine-tuning. One step of full fine-tuning, batch 16 of these passages, costs about
    # 0.9 s on the 2-core VM's two threads (LoRA about 0.4 s): the laptop steps are what
    # 5 minutes allow. LoRA and full start from the probe's head (LP-FT), chosen on the
    # val plays (128 per class, full, 40 steps, seed 0): val accuracy 0.684 from the
    # probe's head against 0.634 from a random one. 120 steps from a random head reached
    # 0.747 on val but cost three times the laptop's budget.
    finetune_steps: int = knob(         2,          40,         300)
    names_steps: int = knob(            2,          40,         400)
    batch_size: int = knob(             8,          16,         32)
    full_lr: float = knob(              5e-5,       5e-5,       5e-5)   # genre
    lora_lr: float = knob(              1e-3,       1e-3,       1e-3)   # genre
    lora_rank: int = knob(              4,          8,          8)
    # Names: the settings the notebook chooses between on the val speeches, each
    # (weight of the two name tags in the loss, full fine-tuning's rate, LoRA's rate);
    # names are about one word in a hundred. The first is what the first laptop run
    # used (07's weight then, the genre rates), the second what was tried after it; that
    # run judged them on the test speeches, so the choice now reads val F1 only.
    names_settings: tuple[tuple[float, float, float], ...] = knob(
                                        ((20.0, 2e-4, 5e-3),),
                                        ((5.0, 5e-5, 1e-3), (20.0, 2e-4, 5e-3)),
                                        ((5.0, 5e-5, 1e-3), (20.0, 2e-4, 5e-3)))
    # Long enough to assert what was learned? A smoke run only proves the code paths.
    learns: bool = knob(                False,      True,       True)
    max_parity_error: float = knob(     1e-4,       1e-4,       1e-4)  # as in 01 and the tests
    max_lora_fraction: float = knob(    0.05,       0.05,       0.05)  # trained / all parameters
    # The comparisons the closing cell asserts by their verdict ("better", lab.compare:
    # the whole 95 % interval of the paired difference above 0); every other comparison
    # is printed and recorded, whatever its verdict. Fine-tuned MiniLM (LoRA or full,
    # chosen on val) against TF-IDF on genre, at these budgets. laptop, seed 0, the stored
    # run: at 8 per class LoRA 0.575 against 0.428, interval +0.075 to +0.216 (its low end
    # 0.075 above 0); at 128 0.575 against 0.550, -0.044 to +0.088: not established, not
    # asserted. gpu: not yet measured, the laptop's.
    beats_tfidf_at: tuple[int, ...] = knob((),      (8,),       (8,))
    # MiniLM's probe against the probe on random weights of MiniLM's shape, at these
    # budgets. laptop, the stored run: 0.531 against 0.422 at 8 per class, interval
    # +0.034 to +0.182; 0.556 against 0.438 at 128, +0.047 to +0.191. Random weights that
    # learned nothing are the control itself: a MiniLM whose pretraining added nothing
    # would fail. gpu: not yet measured, the laptop's.
    beats_random_init_at: tuple[int, ...] = knob((), (8, 128),  (8, 128))
    # Names: fully fine-tuned MiniLM against the capitalisation rule, by the verdict.
    # laptop, the stored run: F1 0.573 against 0.451, interval +0.020 to +0.227 ("better",
    # printed), its low end too close to 0 to assert from one seed.
    names_beats_capitalisation: bool = knob(False,  False,      False)
# fmt: on
