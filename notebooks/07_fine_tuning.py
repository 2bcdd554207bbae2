# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,nbgrader,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Fine-tuning: what pretraining is worth with few labels
#
# Every earlier notebook trained an encoder without labels. This one asks what each of
# them is worth once labels arrive: the same small body, pretrained by a different
# objective (or not at all), gets a task head and is trained on a handful of labelled
# examples. Three tasks, all built from the plays themselves, none labelled by hand:
#
# - **genre** of a passage (comedy, history, tragedy): one label per sequence; the test
#   plays are never seen in training, so the model cannot remember a play's vocabulary;
# - **character names** in the dialogue, tagged word by word in the BIO scheme
#   (`sslm_lab.data.names`): one label per token;
# - **the case of a hidden pronoun**: a line with *I* or *me* (he/him, we/us, they/them,
#   thou/thee) replaced by `[MASK]`; does the gap need the subject or the object form?
#   (`sslm_lab.data.pronouns`). Here the order of the words decides, so a bag of words
#   is weak.
#
# Every comparison is made the suite's one way (`sslm_lab.lab.compare`): per-unit
# scores (each test passage, speech or line, for each of several seeds) in, a difference
# with a 95 % interval and a verdict out, **better**, **worse** or **not established**,
# and the sentence printed from that verdict. Settings and the "best method" are chosen
# on the val plays; the test plays are read once, for the numbers reported.
#
# This notebook:
#
# 1. shows the three tasks, their splits and **baselines**: the majority class and TF-IDF
#    with logistic regression for genre, a capitalisation rule and a gazetteer of the
#    training plays' names for tagging, a bag of words and the two words around the gap
#    for the pronoun;
# 2. gets the **encoders** from `sslm_lab.lab.recipes.pretrained_encoder`, all of one shape:
#    the ones notebooks 02, 05 and 06 saved, when they ran with this profile;
# 3. fine-tunes them by several **methods** (linear probe, LoRA, adapters, prefix tuning,
#    full fine-tuning) at several **label budgets**, each pretrained encoder against
#    random weights of the same shape;
# 4. races **ELECTRA against MLM at equal pretraining compute** (FLOPs);
# 5. watches a model **overfit** the smallest budget and measures what dropout, weight
#    decay, early stopping and adversarial training (FGM) do about it;
# 6. classifies with **zero or few labels** and no training: class prototypes, and
#    MiniLM's embeddings against a description of each genre;
# 7. gives you a **passage explorer**: each fine-tuned model's genre and the names it tags.
#
# Three exercises (nbgrader's format) ask you to align word tags to subword pieces, draw
# a few-shot sample and write LoRA's forward pass; later cells use the package.
#
# **What runs where.** The `laptop` profile runs a slice of the grid so that it fits a
# few minutes on two CPU cores: the encoders random, MLM, SimCSE and ELECTRA; the methods
# probe, LoRA and full fine-tuning; budgets 8 and 128 examples per class; the runs that
# are compared, over `seeds` seeds (each seed draws other labelled examples and another
# head). When notebooks 02, 05 and 06 ran with the same profile, their encoders are
# loaded (section 2 prints where each came from); an encoder with no fitting checkpoint
# is pretrained here for only `pretrain_steps` steps, far fewer than its own notebook
# uses. The `gpu` profile runs the full grid: six objectives, all five methods and
# layer-wise learning-rate decay, budgets 8, 32, 128 and all, over five seeds.
#
# The cell below holds every knob. `profile` picks the sizes from `sslm_lab.lab.profiles`
# (`None` reads `$SSLM_PROFILE`, else `laptop`); `pretrain_steps` and `finetune_steps`
# (`None`: the profile's) set the steps of pretraining done here and of each genre
# fine-tuning run; `passage` is what the explorer starts on.

# %% tags=["parameters"]
profile = None
seed = 0
pretrain_steps = None
finetune_steps = None
passage = "Good morrow, Benedick. Why, what news from Messina? Is Claudio come home?"

# %%
import copy
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import HTML, Markdown, display
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
from torch.testing import assert_close

from sslm_lab import data
from sslm_lab.data.names import (
    IGNORE,
    TAGS,
    TaggedSpeech,
    bio_tags,
    capitalisation_tags,
    character_names,
    encode_tagged,
    entity_f1,
    tagged_speeches,
    word_tags,
)
from sslm_lab.data.pronouns import CASES, PAIRS
from sslm_lab.eval_mode import evaluating
from sslm_lab.finetune import (
    few_shot_indices,
    fgm_step,
    fit_linear_probe,
    frozen_features,
    layerwise_lr_scale,
    with_head,
)
from sslm_lab.heads import pool
from sslm_lab.interop import load_minilm
from sslm_lab.lab import profiles
from sslm_lab.lab.compare import compare, markdown_table
from sslm_lab.lab.downstream import (
    BASELINES,
    f1_contributions,
    pronoun_baseline,
    pronoun_probe,
    pronoun_task,
)
from sslm_lab.lab.env import device_description
from sslm_lab.lab.recipes import EncoderRecipe, describe, pretrained_encoder, steps_for_flops
from sslm_lab.lab.results import record_results
from sslm_lab.lab.viz.finetune import (
    plot_accuracy_vs_labels,
    plot_accuracy_vs_parameters,
    plot_overfitting,
)
from sslm_lab.lab.widgets.finetune import passage_explorer, passage_report, report_html
from sslm_lab.peft import LoRALinear, merge_lora, prepare, unmerge_lora
from sslm_lab.training.batches import sample_rows
from sslm_lab.training.hardware import device_name, resolve_device
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import Dropout, MultiHeadAttention

notebook_started, notebook_cpu = time.perf_counter(), time.process_time()
P = profiles.get_profile(profile)
profiles.finetune.PARAMETERS.validate(
    seed=seed, pretrain_steps=pretrain_steps, finetune_steps=finetune_steps, passage=passage
)
C = P.finetune
steps_pretrain = C.pretrain_steps if pretrain_steps is None else pretrain_steps
steps_finetune = C.finetune_steps if finetune_steps is None else finetune_steps
seeds = tuple(seed + i for i in range(C.seeds))  # the runs that are compared
device = resolve_device("auto")
torch.manual_seed(seed)
print(f"profile: {P.name} — {P.description}")
print(f"models on {device_name(device)}, {torch.get_num_threads()} threads; seeds {seeds}")

# %% [markdown]
# ## 1 · Three tasks from the plays
#
# ### Genre
#
# `LabelledPassages` cuts each play into passages of `passage_chunks` × `passage_tokens`
# BPE pieces (about a hundred words at laptop size) and labels each with its play's
# genre. Whole plays are split into train, val and test, so the test passages come from
# plays the model never saw. A passage is longer than the encoders' block of 32, so it
# is stored as chunks, each with a [CLS] piece in front: `(passages, chunks, 32)`. A
# sequence classifier given chunks encodes and pools each on its own and averages the
# chunks' features before its linear layer (`SequenceClassifier`); the probe's
# `frozen_features` average the same way. (Earlier runs used one chunk, about 25
# words: then genre was at chance for every model here, TF-IDF included.)

# %%
GENRES = ("comedy", "history", "tragedy")
SPLITS = ("train", "val", "test")
recipe = EncoderRecipe(steps=steps_pretrain, seed=seed)
tokenizer = data.bpe_tokenizer(recipe.vocab_size)
passages = {
    split: data.LabelledPassages(
        split,
        tokenizer,
        C.passage_chunks * C.passage_tokens,
        max_per_work=C.max_per_work,
        genres=GENRES,
    )
    for split in SPLITS
}


genre_ids = {split: d.chunked(C.passage_chunks, tokenizer.cls_id) for split, d in passages.items()}
genre_labels = {split: d.labels for split, d in passages.items()}
assert genre_ids["test"].shape[1:] == (C.passage_chunks, recipe.block_size)
rows = ["| split | plays | " + " | ".join(GENRES) + " | passages |", "|---" * 6 + "|"]
for split, d in passages.items():
    counts = d.class_counts()
    rows.append(
        f"| {split} | {len(d.works)} | "
        + " | ".join(f"{counts[g]:,}" for g in GENRES)
        + f" | {len(d):,} |"
    )
display(Markdown("\n".join(rows)))
history_passages = torch.nonzero(genre_labels["test"] == GENRES.index("history"))[:, 0]
example = int(history_passages[len(history_passages) // 2])
print(f"a test passage, from {passages['test'].work_of(example).title} (history):")
print(repr(tokenizer.decode(passages["test"].passages[example].tolist())))

# %% [markdown]
# **Baselines.** Always answering the training set's most frequent genre, and a TF-IDF
# model: word unigrams and bigrams plus character 2- to 5-grams, weighted by inverse
# document frequency, and a logistic regression on them (scikit-learn). TF-IDF is
# trained on the same labelled passages as the networks at each budget and seed: each
# seed draws its own `k` passages per class (`few_shot_indices`; for one seed the budgets
# are nested, the 8 per class among the 128). What is kept is, per seed, whether each
# val and test passage was classified right: the units every comparison below pairs.

# %%
passage_texts = {
    split: [tokenizer.decode(row.tolist()) for row in d.passages] for split, d in passages.items()
}
majority_class = int(torch.bincount(genre_labels["train"]).argmax())
majority_accuracy = float((genre_labels["test"] == majority_class).float().mean())
# (seeds, test passages): the majority class is right on the same passages for every seed
majority_correct = np.tile((genre_labels["test"] == majority_class).numpy(), (len(seeds), 1))


def budget_name(per_class: int | None) -> str:
    return "all" if per_class is None else str(per_class)


def budget_indices(per_class: int | None, run_seed: int = seed) -> list[int]:
    """The training passages of a budget for one seed."""
    return few_shot_indices(genre_labels["train"], per_class, run_seed, num_classes=len(GENRES))


def tfidf_correct(indices: list[int]) -> dict[str, np.ndarray]:
    """TF-IDF fitted on these training passages: per val and test passage, right or not."""
    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000),
    )
    model.fit([passage_texts["train"][i] for i in indices], genre_labels["train"][indices].numpy())
    return {
        split: (model.predict(passage_texts[split]) == genre_labels[split].numpy()).astype(float)
        for split in ("val", "test")
    }


tfidf_runs = {(k, s): tfidf_correct(budget_indices(k, s)) for k in C.label_budgets for s in seeds}
tfidf = {  # budget -> split -> (seeds, passages)
    k: {split: np.stack([tfidf_runs[k, s][split] for s in seeds]) for split in ("val", "test")}
    for k in C.label_budgets
}
print(f"majority class ({GENRES[majority_class]}): test accuracy {majority_accuracy:.3f}")
for k, scores in tfidf.items():
    per_seed = ", ".join(f"{v:.3f}" for v in scores["test"].mean(1))
    print(
        f"TF-IDF + logistic regression, {budget_name(k)} per class: test accuracy "
        f"{scores['test'].mean():.3f} (seeds: {per_seed})"
    )

# %% [markdown]
# ### Character names
#
# `tagged_speeches(split)` tags every speech (its first 64 words) with the names its play's
# speaker headings give. A sample of speeches per split is cut into BPE pieces by
# `encode_tagged`, at most 32 pieces per speech ([CLS] included); only the words that fit
# are scored, by every method alike.

# %%
speeches_of = {split: tagged_speeches(split) for split in SPLITS}
wanted = {
    "train": C.names_train_speeches,
    "val": C.names_eval_speeches,
    "test": C.names_eval_speeches,
}


def some_speeches(rows: list[TaggedSpeech], count: int) -> list[TaggedSpeech]:
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    return [rows[i] for i in sorted(order[:count].tolist())]


name_rows = {split: some_speeches(speeches_of[split], wanted[split]) for split in SPLITS}
encoded = {
    split: encode_tagged(rows, tokenizer, recipe.block_size) for split, rows in name_rows.items()
}
true_tags = {
    split: [row.tags[:kept] for row, kept in zip(rows, encoded[split].words_kept, strict=True)]
    for split, rows in name_rows.items()
}
rows = ["| split | plays | speeches | names in them | speeches sampled | names in the sample |"]
rows.append("|---" * 6 + "|")
for split in SPLITS:
    everything = speeches_of[split]
    entities = sum(tag == "B-PER" for row in everything for tag in row.tags)
    sampled = sum(tag == "B-PER" for tags in true_tags[split] for tag in tags)
    plays = len({row.work for row in everything})
    rows.append(
        f"| {split} | {plays} | {len(everything):,} | {entities:,} | "
        f"{len(name_rows[split]):,} | {sampled:,} |"
    )
display(Markdown("\n".join(rows)))
name_share = sum(t != "O" for tags in true_tags["train"] for t in tags) / sum(
    len(tags) for tags in true_tags["train"]
)
print(f"names are {100 * name_share:.1f} % of the scored words of the training sample")
shown = next(
    row for row in speeches_of["test"] if row.tags.count("B-PER") >= 2 and len(row.tokens) < 30
)
print(f"a tagged test speech ({shown.work}, {shown.speaker}); names in [brackets]:")
print(" ".join(f"[{w}]" if t != "O" else w for w, t in zip(shown.tokens, shown.tags, strict=True)))

# %% [markdown]
# **Exercise 1 (2 points).** A tagger sees subword pieces, the labels belong to words.
# The usual alignment gives each word's tag to its *first* piece and the label `IGNORE`
# (-100, which `F.cross_entropy` skips) to every later piece and to [CLS]. Given how many
# pieces each word has and each word's tag id, return the labels of the whole row,
# [CLS] first.


# %% nbgrader={"grade": false, "grade_id": "first_piece_labels", "locked": false, "schema_version": 3, "solution": true, "task": false}
def first_piece_labels(pieces_per_word: list[int], tag_ids: list[int]) -> list[int]:
    """[CLS], then each word's pieces: its tag id at the first piece, IGNORE at the others."""
    ### BEGIN SOLUTION
    labels = [IGNORE]
    for count, tag in zip(pieces_per_word, tag_ids, strict=True):
        labels += [tag] + [IGNORE] * (count - 1)
    return labels
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "first_piece_labels_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def pieces_per_word(tokens: list[str]) -> list[int]:
    """How many BPE pieces each word takes, spelled as in running text (a space before it)."""
    spelled = [t if i == 0 or not t[0].isalnum() else " " + t for i, t in enumerate(tokens)]
    return [len(tokenizer.encode(word)) for word in spelled]


def check_alignment(row: TaggedSpeech) -> None:
    mine = first_piece_labels(pieces_per_word(row.tokens), [TAGS.index(t) for t in row.tags])
    theirs = encode_tagged([row], tokenizer, len(mine)).labels[0].tolist()
    assert mine == theirs, f"{row.tokens}: {mine} != {theirs}"


check_alignment(shown)
### BEGIN HIDDEN TESTS
for row in name_rows["val"][:20]:
    check_alignment(row)
### END HIDDEN TESTS

# %% [markdown]
# **Baselines for names.** The capitalisation rule tags every capitalised word that
# starts neither a sentence nor a verse line and is not a word always written with a
# capital ("I", "God", titles). The gazetteer tags exactly the names of the training
# plays' characters (`character_names` of each): it cannot know a test play's new
# characters. Both are scored entity by entity (seqeval, strict BIO) on the test sample.

# %%
gazetteer = set().union(
    *(
        character_names(data.read_work(work))
        for work in data.works_in_split("train")
        if work.genre in GENRES
    )
)
name_baselines, name_baseline_units = {}, {}
for method in ("capitalisation", "gazetteer"):
    predicted = []
    for row, kept in zip(name_rows["test"], encoded["test"].words_kept, strict=True):
        if method == "capitalisation":
            predicted.append(capitalisation_tags(row.tokens[:kept], row.line_starts[:kept]))
        else:
            predicted.append(bio_tags(row.tokens[:kept], gazetteer))
    name_baselines[method] = entity_f1(true_tags["test"], predicted)
    # each test speech's share of F1 (lab.downstream.f1_contributions), the same for every seed
    name_baseline_units[method] = np.tile(
        f1_contributions(true_tags["test"], predicted), (len(seeds), 1)
    )
print(f"gazetteer: {len(gazetteer)} names from the training plays")
for method, scores in name_baselines.items():
    print(
        f"{method:<15} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  "
        f"F1 {scores['f1']:.3f}"
    )

# %% [markdown]
# ### The case of a hidden pronoun
#
# `hidden_pronouns(split)` finds every *I*, *me*, *he*, *him*, *we*, *us*, *they*,
# *them*, *thou* and *thee* in the spoken lines of a split's plays; each occurrence is one
# example: the line, with that word replaced by one `[MASK]` piece, labelled with the
# form that stood there, subject (*I*, *he*, ...) or object (*me*, *him*, ...). *She*/*her*
# is left out, because *her* is also the possessive. The val and test lines are balanced
# (`pronouns.balanced`): as many subject as object forms of each pair, so answering
# always one case scores 0.5, and which pair it was says nothing about the case; the
# labelled lines are drawn from a balanced pool of the training plays.
#
# Notebook 02 asked its MLM head to fill such gaps with no labels at all. Here the
# question is 07's: a few labelled lines per case, and a linear probe on an encoder's
# frozen hidden state at the gap (`lab.downstream.pronoun_probe`).

# %%
pronoun = pronoun_task(
    tokenizer, recipe.block_size, C.pronoun_lines, C.pronoun_pool, seed
)  # lab.downstream: rows (the words) and encoded (the ids) per split
rows = ["| split | plays | lines | " + " | ".join("/".join(pair) for pair in PAIRS) + " |"]
rows.append("|---" * (3 + len(PAIRS)) + "|")
for split in SPLITS:
    found = pronoun.rows[split]
    per_pair = [sum(r.pair == p for r in found) for p in range(len(PAIRS))]
    rows.append(
        f"| {split} | {len({r.work for r in found})} | {len(found):,} | "
        + " | ".join(f"{n:,}" for n in per_pair)
        + " |"
    )
display(Markdown("\n".join(rows)))
print(
    "share of subject forms: "
    + ", ".join(f"{s} {1 - pronoun.labels[s].float().mean():.3f}" for s in SPLITS)
)
for row in pronoun.rows["test"][:: max(1, len(pronoun.rows["test"]) // 4)][:4]:
    shown_line = " ".join("[MASK]" if i == row.position else w for i, w in enumerate(row.words))
    print(f"{CASES[row.label]:<8} ({row.pronoun}): {shown_line}")

# %% [markdown]
# **Baselines, and a first look on val.** Before any encoder, is the task learnable from
# a few lines, and is it more than counting words? Two logistic regressions, fitted on
# the same labelled lines the probes will get (`pronoun_baseline`): one on the **bag of
# words** of the rest of the line (which words occur, not where), one on the **neighbours**,
# the word just before and just after the gap. Measured on the val lines, over the seeds:

# %%
pronoun_baselines = {
    (name, k, split): pronoun_baseline(pronoun, name, k, seeds, split)
    for name in BASELINES
    for k in C.label_budgets
    for split in ("val", "test")
}
rows = ["| baseline (val) | " + " | ".join(f"{budget_name(k)} per class" for k in C.label_budgets)]
rows[0] += " |"
rows.append("|---" * (1 + len(C.label_budgets)) + "|")
for name in BASELINES:
    values = [pronoun_baselines[name, k, "val"].accuracy for k in C.label_budgets]
    rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
display(Markdown("\n".join(rows)))
print(f"val lines: {len(pronoun.labels['val'])}; always one case: 0.500")

# %% [markdown]
# Read the table against the 0.5 of always answering one case. The bag of words gains
# little over it, even with 128 labelled lines per case: which words a line holds says
# little about the form its gap needs. The two words around the gap gain much more, most
# of all with 128 lines per case: the task is learnable from the context, and what
# carries it is where the words stand. (The closing cell checks both on val.)
#
# ## 2 · The encoders
#
# One `EncoderRecipe` for all: the recipe's default shape (BPE vocabulary 2048, 2 layers,
# 4 heads, 128 wide, feed-forward 512, block 32), the shape 02, 05 and 06 train at laptop
# size. `pretrained_encoder` reuses a notebook's checkpoint when it has exactly this shape
# and records its training FLOPs (run the notebooks in order: 02, 05 and 06 before this
# one); otherwise it pretrains the objective here, on the training plays only, for the
# recipe's `steps` (this run's `pretrain_steps`, far fewer than the objective's own
# notebook trains). The table says which happened and what each cost; below it, what
# each checkpoint's own notebook measured on its val text, as it saved it.

# %%
started = time.perf_counter()
encoders = {
    objective: pretrained_encoder(objective, recipe, profile=P.name, device=str(device))
    for objective in C.objectives
}
pretrain_seconds = time.perf_counter() - started
display(Markdown(describe(list(encoders.values()))))
for objective, encoder in encoders.items():
    measured = {k: v for k, v in encoder.metadata.items() if k.startswith("val_")}
    if measured:
        print(f"{objective}: " + ", ".join(f"{k} {v:.3f}" for k, v in measured.items()))
print(f"{len(encoders)} encoders ready in {pretrain_seconds:.0f} s")

# %% [markdown]
# ## 3 · Methods and label budgets
#
# Each run puts a new head on a copy of an encoder and trains on `k` labelled training
# passages per class (`few_shot_indices`: the same seed gives nested budgets):
#
# - **probe**: the body frozen; its mean-pooled features computed once
#   (`frozen_features`) and a logistic regression fitted on them (`fit_linear_probe`);
# - **LoRA**: the attention's query and value projections get a trained low-rank update
#   $W x + \frac{\alpha}{r} B A x$, the rest frozen (`peft.apply_lora`);
# - **adapters**, **prefix**: bottleneck layers after each sublayer, or learned keys and
#   values every query may attend to (gpu profile only);
# - **full**: every weight trains; **full_llrd** the same with layer-wise learning-rate
#   decay, lower layers slower (`layerwise_lr_scale`; gpu profile only).
#
# `peft.prepare(model, method)` freezes and wraps; the head (`head.*`) always trains.
#
# **Exercise 2 (1 point).** Draw the few-shot sample yourself: for each class in sorted
# order, list its examples' indices in order, shuffle them with one `torch.Generator`
# seeded by `seed` (one `torch.randperm` per class, in class order) and keep the first
# `k`; return all chosen indices sorted.


# %% nbgrader={"grade": false, "grade_id": "few_shot", "locked": false, "schema_version": 3, "solution": true, "task": false}
def few_shot_by_hand(labels: list[int], k: int, seed: int) -> list[int]:
    """k indices of each class, drawn as `few_shot_indices` draws them; sorted."""
    ### BEGIN SOLUTION
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == c]
        order = torch.randperm(len(members), generator=generator).tolist()
        chosen += [members[i] for i in order[:k]]
    return sorted(chosen)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "few_shot_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
train_labels = genre_labels["train"].tolist()
assert few_shot_by_hand(train_labels, 2, 0) == few_shot_indices(train_labels, 2, 0)
### BEGIN HIDDEN TESTS
for k, s in ((1, 0), (3, 5), (4, 17)):
    assert few_shot_by_hand(train_labels, k, s) == few_shot_indices(train_labels, k, s)
assert set(few_shot_by_hand(train_labels, 1, 3)) <= set(few_shot_by_hand(train_labels, 4, 3))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** LoRA's forward pass: a frozen linear layer ($W$, $b$) plus
# $\frac{\alpha}{r} B A x$, with $A$ of shape (r, in) and $B$ of shape (out, r). Write it
# for `x` of shape (..., in).


# %% nbgrader={"grade": false, "grade_id": "lora_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lora_forward_by_hand(x, weight, bias, lora_A, lora_B, alpha: float, rank: int):
    """W x + b + (alpha / rank) · B A x for x (..., in): (..., out)."""
    ### BEGIN SOLUTION
    return x @ weight.T + bias + (alpha / rank) * (x @ lora_A.T) @ lora_B.T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lora_forward_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def check_lora(in_features: int, out_features: int, rank: int, alpha: float) -> None:
    generator = torch.Generator().manual_seed(rank)
    layer = LoRALinear(torch.nn.Linear(in_features, out_features), rank, alpha)
    with torch.no_grad():  # B starts at zero; give it values so the update shows
        layer.lora_B.weight.normal_(generator=generator)
    x = torch.randn(3, 5, in_features, generator=generator)
    mine = lora_forward_by_hand(
        x,
        layer.base.weight,
        layer.base.bias,
        layer.lora_A.weight,
        layer.lora_B.weight,
        alpha,
        rank,
    )
    assert_close(mine, layer(x))


check_lora(16, 8, 4, 8.0)
### BEGIN HIDDEN TESTS
check_lora(32, 32, 1, 1.0)
check_lora(7, 13, 8, 16.0)
### END HIDDEN TESTS

# %% [markdown]
# The runs. Every trained method uses the trainer (`Phase`, `Trainer`) for
# `finetune_steps` steps with batches drawn from the budget's passages; the probe
# needs no steps. Each run is scored on the val plays, which choose, and on the test
# plays, which report: per passage, right or wrong.


# %%
def sequence_loss(module, batch, step):
    ids, labels = batch
    logits = module(ids)
    return F.cross_entropy(logits.float(), labels), {}


def fine_tune(
    model, loss_fn, batch_fn, steps, lr, lr_scale=None, weight_decay=0.01, run_seed=seed, **config
):
    """Train `model`'s trainable parameters with AdamW: warmup, cosine to lr / 10."""
    phase = Phase(
        "finetune",
        model,
        loss_fn,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=max(1, steps // 10),
        min_lr=lr / 10,
        lr_scale=lr_scale,
    )
    eval_fn = config.pop("eval_fn", None)
    settings = TrainerConfig(
        max_steps=steps, device=str(device), seed=run_seed, progress=False, **config
    )
    trainer = Trainer(model, phase, batch_fn, settings, eval_fn=eval_fn)
    return trainer.fit(), trainer


def predict(model, ids, mask=None, batch_size=256):
    with evaluating(model):
        outputs = []
        for start in range(0, len(ids), batch_size):
            chunk_mask = None if mask is None else mask[start : start + batch_size].to(device)
            outputs.append(model(ids[start : start + batch_size].to(device), chunk_mask).cpu())
    return torch.cat(outputs)


def correct(model, split: str) -> np.ndarray:
    """Per passage of `split`, whether the genre model was right: (passages,) of 0 / 1."""
    predicted = predict(model, genre_ids[split]).argmax(-1)
    return (predicted == genre_labels[split]).numpy().astype(float)


def accuracy(model, split_ids, split_labels) -> float:
    return float((predict(model, split_ids).argmax(-1) == split_labels).float().mean())


OPTIONS = {
    "lora": {"rank": C.lora_rank, "alpha": 2.0 * C.lora_rank},
    "adapters": {"bottleneck": C.adapter_bottleneck},
    "prefix": {"length": C.prefix_length},
}


def genre_model(encoder, method: str, indices: list[int], run_seed: int = seed):
    """A fine-tuned genre classifier and its parameter counts."""
    torch.manual_seed(run_seed)  # every run of one seed starts its head from the same draw
    model = with_head(copy.deepcopy(encoder.body), "sequence", len(GENRES), pooling="mean")
    model.to(device)
    counts = prepare(model, "full" if method == "full_llrd" else method, **OPTIONS.get(method, {}))
    full = method in ("full", "full_llrd")
    lr_scale = (
        layerwise_lr_scale(recipe.n_layer, C.layerwise_decay) if method == "full_llrd" else None
    )
    batches = sample_rows(
        genre_ids["train"][indices].to(device),
        genre_labels["train"][indices].to(device),
        batch_size=min(C.batch_size, len(indices)),
    )
    fine_tune(
        model,
        sequence_loss,
        batches,
        steps_finetune,
        C.full_lr if full else C.peft_lr,
        lr_scale,
        run_seed=run_seed,
    )
    return model, counts


probe_features = {}  # id(encoder) -> split -> the body's frozen features, computed once


def genre_run(encoder, method: str, k: int | None, run_seed: int):
    """One run: (val correct, test correct, parameters trained, the model or None)."""
    indices = budget_indices(k, run_seed)
    if method == "probe":
        if id(encoder) not in probe_features:
            reader = with_head(encoder.body, "sequence", len(GENRES)).to(device)
            probe_features[id(encoder)] = {
                s: frozen_features(reader, genre_ids[s].to(device)) for s in SPLITS
            }
        features = probe_features[id(encoder)]
        probe = fit_linear_probe(
            features["train"][indices], genre_labels["train"][indices].to(device), len(GENRES)
        )
        right = {
            s: (probe(features[s]).argmax(-1).cpu() == genre_labels[s]).numpy().astype(float)
            for s in ("val", "test")
        }
        return right["val"], right["test"], sum(p.numel() for p in probe.parameters()), None
    model, counts = genre_model(encoder, method, indices, run_seed)
    return correct(model, "val"), correct(model, "test"), counts.trainable, model


started = time.perf_counter()
grid = {}  # (objective, method, budget) -> {"val", "test" (per passage), "trained"}; seed `seed`
kept_models = {}  # (objective, method) -> the model of the largest budget
largest = C.label_budgets[-1]
for objective, encoder in encoders.items():
    for method in C.methods:
        for k in C.label_budgets:
            val, test, trained, model = genre_run(encoder, method, k, seed)
            grid[objective, method, k] = {"val": val, "test": test, "trained": trained}
            if model is not None and k == largest:
                kept_models[objective, method] = model
grid_seconds = time.perf_counter() - started


def grid_cell(key) -> str:
    return f"{grid[key]['val'].mean():.3f} | {grid[key]['test'].mean():.3f}"


header = "| encoder · method | trained parameters | " + " | ".join(
    f"{budget_name(k)}/class val | {budget_name(k)}/class test" for k in C.label_budgets
)
rows = [header + " |", "|---" * (2 + 2 * len(C.label_budgets)) + "|"]
rows.append(
    "| majority class | 0 | "
    + " | ".join(
        f"{(genre_labels['val'] == majority_class).float().mean():.3f} | {majority_accuracy:.3f}"
        for _ in C.label_budgets
    )
    + " |"
)
rows.append(
    "| TF-IDF + logistic regression (seed "
    + str(seed)
    + ") | — | "
    + " | ".join(
        f"{tfidf_runs[k, seed]['val'].mean():.3f} | {tfidf_runs[k, seed]['test'].mean():.3f}"
        for k in C.label_budgets
    )
    + " |"
)
for objective in encoders:
    for method in C.methods:
        trained = grid[objective, method, C.label_budgets[0]]["trained"]
        values = " | ".join(grid_cell((objective, method, k)) for k in C.label_budgets)
        rows.append(f"| {objective} · {method} | {trained:,} | {values} |")
grid_markdown = "\n".join(rows)
display(Markdown(grid_markdown))
print(
    f"{len(grid)} runs (seed {seed}) in {grid_seconds:.0f} s; genre accuracy on "
    f"{len(genre_labels['val'])} val passages of {len(passages['val'].works)} plays and "
    f"{len(genre_labels['test'])} test passages of {len(passages['test'].works)} other plays"
)

# %% [markdown]
# **Choosing on val, reporting on test.** For each encoder and budget, the method with
# the highest val accuracy above is that encoder's method there; only then are its test
# passages read, over all `seeds` (the chosen run again with other labelled passages and
# another head). Then, per budget, each pretrained encoder against random weights of the
# same shape, each by its own chosen method, paired passage by passage and seed by seed;
# and the network with the highest val accuracy of all against TF-IDF and the majority
# class, with TF-IDF against the majority class beside them.

# %%
started = time.perf_counter()
pretrained_objectives = [o for o in encoders if o != "random"]
chosen = {
    (o, k): max(C.methods, key=lambda m: grid[o, m, k]["val"].mean())
    for o in encoders
    for k in C.label_budgets
}
genre_correct = {}  # (objective, budget) -> (seeds, test passages) of its chosen method
for (objective, k), method in chosen.items():
    runs = [grid[objective, method, k]["test"]]
    runs += [genre_run(encoders[objective], method, k, s)[1] for s in seeds[1:]]
    genre_correct[objective, k] = np.stack(runs)
best_genre = {  # budget -> the encoder whose chosen method had the highest val accuracy
    k: max(encoders, key=lambda o: grid[o, chosen[o, k], k]["val"].mean()) for k in C.label_budgets
}
genre_vs_random, genre_vs_baselines = {}, {}
for k in C.label_budgets:
    metric = f"genre accuracy, {budget_name(k)}/class"
    for objective in pretrained_objectives:
        genre_vs_random[objective, k] = compare(
            genre_correct[objective, k],
            genre_correct["random", k],
            names=(f"{objective} · {chosen[objective, k]}", f"random · {chosen['random', k]}"),
            metric=metric,
            unit="test passages",
        )
    network = f"{best_genre[k]} · {chosen[best_genre[k], k]}"
    genre_vs_baselines["best network vs TF-IDF", k] = compare(
        genre_correct[best_genre[k], k],
        tfidf[k]["test"],
        names=(network, "TF-IDF"),
        metric=metric,
        unit="test passages",
    )
    genre_vs_baselines["best network vs majority", k] = compare(
        genre_correct[best_genre[k], k],
        majority_correct,
        names=(network, "majority class"),
        metric=metric,
        unit="test passages",
    )
    genre_vs_baselines["TF-IDF vs majority", k] = compare(
        tfidf[k]["test"],
        majority_correct,
        names=("TF-IDF", "majority class"),
        metric=metric,
        unit="test passages",
    )
genre_comparisons = [*genre_vs_random.values(), *genre_vs_baselines.values()]
display(Markdown("\n".join(f"- {c.sentence()}" for c in genre_comparisons)))
choice_seconds = time.perf_counter() - started
print(
    "chosen on val: "
    + "; ".join(
        f"{budget_name(k)}/class " + ", ".join(f"{o} · {chosen[o, k]}" for o in encoders)
        for k in C.label_budgets
    )
    + f" ({choice_seconds:.0f} s)"
)

# %%
fig = plot_accuracy_vs_labels(
    [budget_name(k) for k in C.label_budgets],
    {
        f"{objective} (chosen method)": [
            genre_correct[objective, k].mean() for k in C.label_budgets
        ]
        for objective in encoders
    }
    | {"TF-IDF": [tfidf[k]["test"].mean() for k in C.label_budgets]},
    {"majority": majority_accuracy},
    f"genre of a passage, unseen plays (mean of {len(seeds)} seeds)",
)

# %%
fig = plot_accuracy_vs_parameters(
    [
        (
            f"{objective} · {method}",
            grid[objective, method, largest]["trained"],
            grid[objective, method, largest]["test"].mean(),
        )
        for objective in encoders
        for method in C.methods
    ],
    f"genre, {budget_name(largest)} labels per class (seed {seed})",
)
total_parameters = sum(p.numel() for p in kept_models[C.objectives[0], "full"].parameters())
print(f"a genre model has {total_parameters:,} parameters in all")

# %% [markdown]
# **Reading the grid.** The sentences above are the findings, each with its interval; a
# difference whose interval includes 0 is not one, however large its point estimate.
# The intervals resample the test passages, averaging over the seeds inside each
# resample: they say how far these seeds' mean could move on another draw of passages
# like these. They do not know that the passages come from only five plays, and passages
# of one play are not independent draws, so they are, if anything, too narrow.
#
# Nobody knows the best genre accuracy possible on these passages, so the numbers here
# stand beside baselines, not beside an optimum.
# [09_known_language](09_known_language.ipynb) runs the same few-label protocol (a linear
# probe and full fine-tuning, every pretraining objective against random init) on a
# language whose Bayes-optimal accuracy is computed exactly.

# %% [markdown]
# **LoRA merges away.** After training, $\frac{\alpha}{r} B A$ can be added into $W$:
# one matrix again, no extra cost at inference, and the same outputs. `merge_lora` does
# it and `unmerge_lora` takes it out again; the cell compares the three.

# %%
lora_objective = next(o for o in C.objectives if o != "random")
lora_model = kept_models[lora_objective, "lora"]
before = predict(lora_model, genre_ids["test"][:64])
merge_lora(lora_model)
merged = predict(lora_model, genre_ids["test"][:64])
unmerge_lora(lora_model)
after = predict(lora_model, genre_ids["test"][:64])
lora_merge_error = float((merged - before).abs().max())
lora_unmerge_error = float((after - before).abs().max())
lora_fraction = grid[lora_objective, "lora", largest]["trained"] / total_parameters
print(
    f"LoRA ({lora_objective}): merged vs unmerged logits, max |difference| {lora_merge_error:.2e}"
)
print(f"unmerged again vs before: {lora_unmerge_error:.2e}")
print(f"LoRA trains {100 * lora_fraction:.2f} % of the parameters")

# %% [markdown]
# ### Names: a token classifier per encoder
#
# The same encoders, each fully fine-tuned as a tagger (`with_head(..., "token", 3)`) on
# the training sample of speeches for `names_steps` steps at learning rate `names_lr`,
# once per seed (the seed draws the head and the batches; the speeches are the same).
# Names are a few per cent of the words, so their two tags weigh `name_class_weight`
# times more in the loss, which keeps "O everywhere" from being a cheap answer (the
# profile's comment lists the settings tried on the val speeches before these).
#
# Entity F1 is not a mean over speeches, so to pair two taggers speech by speech each
# speech gets its share of F1 (`lab.downstream.f1_contributions`: the shares average to
# F1 exactly). The tagger with the best val F1 is compared with the capitalisation rule.


# %%
name_weights = torch.tensor([1.0, C.name_class_weight, C.name_class_weight], device=device)


def token_loss(module, batch, step):
    ids, mask, labels = batch
    logits = module(ids, mask)  # (batch, seq, tags)
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), weight=name_weights, ignore_index=IGNORE
    ), {}


def predicted_tags(tagger, split: str) -> list[list[str]]:
    logits = predict(tagger, encoded[split].ids, encoded[split].attention_mask)
    return word_tags(logits.argmax(-1), encoded[split].labels, encoded[split].words_kept)


def name_scores(tagger, split: str) -> dict[str, float]:
    return entity_f1(true_tags[split], predicted_tags(tagger, split))


def train_tagger(encoder, run_seed: int = seed):
    """A copy of `encoder`'s body with a token head, fully fine-tuned on the names sample."""
    torch.manual_seed(run_seed)
    tagger = with_head(copy.deepcopy(encoder.body), "token", len(TAGS)).to(device)
    prepare(tagger, "full")
    train_set = encoded["train"]
    batches = sample_rows(
        train_set.ids.to(device),
        train_set.attention_mask.to(device),
        train_set.labels.to(device),
        batch_size=min(C.batch_size, len(train_set.ids)),
    )
    fine_tune(tagger, token_loss, batches, C.names_steps, C.names_lr, run_seed=run_seed)
    return tagger


started = time.perf_counter()
taggers, names, name_units, names_val = {}, {}, {}, {}
for objective, encoder in encoders.items():
    runs = []
    for s in seeds:
        tagger = train_tagger(encoder, s)
        if s == seed:
            taggers[objective] = tagger
            names_val[objective] = name_scores(tagger, "val")["f1"]
        runs.append(predicted_tags(tagger, "test"))
    scores = [entity_f1(true_tags["test"], run) for run in runs]
    names[objective] = {m: float(np.mean([x[m] for x in scores])) for m in scores[0]}
    name_units[objective] = np.stack([f1_contributions(true_tags["test"], run) for run in runs])
names_seconds = time.perf_counter() - started
rows = ["| tagger | precision | recall | F1 |", "|---|---|---|---|"]
for label, scores in [*name_baselines.items(), *((f"{o} · full", s) for o, s in names.items())]:
    rows.append(
        f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} |"
    )
display(Markdown("\n".join(rows)))
best_tagger = max(encoders, key=lambda o: names_val[o])
names_vs_random = {
    o: compare(
        name_units[o],
        name_units["random"],
        names=(f"{o} · full", "random · full"),
        metric="names F1",
        unit="test speeches",
    )
    for o in pretrained_objectives
}
names_vs_capitalisation = compare(
    name_units[best_tagger],
    name_baseline_units["capitalisation"],
    names=(f"{best_tagger} · full (best val F1)", "capitalisation rule"),
    metric="names F1",
    unit="test speeches",
)
names_comparisons = [*names_vs_random.values(), names_vs_capitalisation]
display(Markdown("\n".join(f"- {c.sentence()}" for c in names_comparisons)))
print(
    f"{len(taggers) * len(seeds)} taggers in {names_seconds:.0f} s; val F1 (seed {seed}): "
    + ", ".join(f"{o} {v:.3f}" for o, v in names_val.items())
    + f"; scored on {len(name_rows['test'])} test speeches; taggers' F1 is the mean of the seeds"
)

# %% [markdown]
# The last sentence above says where the tagger chosen on val stands against the
# capitalisation rule, which reads capital letters and needs no training at all; the
# sentences before it, which pretrained taggers beat random weights of the same shape.
# The val speeches choose by one seed's F1, and the tagger they choose need not be the
# best one on test (compare the val F1 printed last with the table): choosing on val
# costs a little, choosing on test would have flattered. A few dozen steps on a few
# hundred speeches, in which about one word in a hundred is a name, is little to learn
# what a name looks like from.
#
# ### The hidden pronoun: a probe per encoder
#
# Now the task where the order of the words decides. Each encoder reads every line with
# its gap; the probe (a logistic regression) is fitted on its hidden state at the
# `[MASK]` position for `k` labelled lines per case, once per seed, and scored line by
# line on val (to choose) and on test (to report).

# %%
started = time.perf_counter()
pronoun_scores = {  # (objective, budget, split) -> ProbeScores (seeds, lines)
    (o, k, split): pronoun_probe(e.body, pronoun, k, seeds, split)
    for o, e in encoders.items()
    for k in C.label_budgets
    for split in ("val", "test")
}
pronoun_seconds = time.perf_counter() - started
every_row = {(f"{n} (baseline)", k, s): v for (n, k, s), v in pronoun_baselines.items()}
every_row |= {(f"{o} · probe at the gap", k, s): v for (o, k, s), v in pronoun_scores.items()}
rows = ["| features | " + " | ".join(f"{budget_name(k)}/class val | test" for k in C.label_budgets)]
rows[0] += " |"
rows.append("|---" * (1 + 2 * len(C.label_budgets)) + "|")
for label in dict.fromkeys(key[0] for key in every_row):
    cells = " | ".join(
        f"{every_row[label, k, 'val'].accuracy:.3f} | {every_row[label, k, 'test'].accuracy:.3f}"
        for k in C.label_budgets
    )
    rows.append(f"| {label} | {cells} |")
display(Markdown("\n".join(rows)))
best_pronoun = {  # budget -> the pretrained encoder with the best val accuracy
    k: max(pretrained_objectives, key=lambda o: pronoun_scores[o, k, "val"].accuracy)
    for k in C.label_budgets
}
pronoun_vs_random, pronoun_vs_baselines = {}, {}
for k in C.label_budgets:
    metric = f"pronoun case accuracy, {budget_name(k)}/class"
    for objective in pretrained_objectives:
        pronoun_vs_random[objective, k] = compare(
            pronoun_scores[objective, k, "test"].correct,
            pronoun_scores["random", k, "test"].correct,
            names=(f"{objective} · probe", "random · probe"),
            metric=metric,
            unit="test lines",
        )
    for name in BASELINES:
        pronoun_vs_baselines[name, k] = compare(
            pronoun_scores[best_pronoun[k], k, "test"].correct,
            pronoun_baselines[name, k, "test"].correct,
            names=(f"{best_pronoun[k]} · probe (best val)", name),
            metric=metric,
            unit="test lines",
        )
pronoun_comparisons = [*pronoun_vs_random.values(), *pronoun_vs_baselines.values()]
display(Markdown("\n".join(f"- {c.sentence()}" for c in pronoun_comparisons)))
print(
    f"{len(pronoun_scores)} probes over {len(seeds)} seeds in {pronoun_seconds:.0f} s; "
    f"{len(pronoun.labels['test'])} test lines of {len({r.work for r in pronoun.rows['test']})} plays"
)

# %% [markdown]
# **Reading the pronoun table.** Here pretraining shows. A random encoder's hidden state
# at the gap is a fixed mixture of the pieces around it, and a probe on a few labelled
# lines gets little more out of it than the bag of words does. An encoder that learned
# to fill gaps (MLM, 02's checkpoint) was trained on exactly this question, which piece
# fits the hole, and the sentences above say, with their intervals, that its hidden state
# at `[MASK]` carries the answer: better than random weights and than both baselines at
# both budgets, by a wide margin except against the two neighbours at 128 lines per
# case, where the interval sits only just above 0. ELECTRA's discriminator and SimCSE never read a `[MASK]` piece in
# pretraining (ELECTRA's generator does, and is thrown away), so for them the gap is a
# piece they never learned anything about; their sentences say whether they beat random
# weights here (at this size they do not).

# %% [markdown]
# ## 4 · ELECTRA against MLM at equal compute
#
# ELECTRA learns from every position (was this token replaced?), MLM only from the
# masked 15 %; Clark et al. (2020) found ELECTRA better **at equal compute**. One step
# of ELECTRA costs more than one of MLM, because ELECTRA also trains its generator, so
# the same number of steps is not a fair race. `steps_for_flops` gives the number of MLM
# steps whose training FLOPs come closest to ELECTRA's (from the recipe alone, before
# anything runs). Both are trained here from the same seed, on windows drawn from the
# same training text, for `pretrain_steps` ELECTRA steps; a checkpoint from 02 or 05 is
# not used: each had its own, different training. Both are then read by the probes of
# this notebook, on genre and on the hidden pronoun, at each budget over the seeds,
# paired line by line and passage by passage. (Fine-tuning, as Clark et al. measured,
# could rank them otherwise; at laptop size the probes are what the budget allows with
# seeds.)

# %%
started = time.perf_counter()
electra_here = encoders.get("electra")
if electra_here is None or not electra_here.source.startswith("trained here"):
    electra_here = pretrained_encoder("electra", recipe, device=str(device))
mlm_steps = steps_for_flops("mlm", electra_here.train_flops, recipe)
equal_compute = {
    "electra": electra_here,
    "mlm": pretrained_encoder("mlm", replace(recipe, steps=mlm_steps), device=str(device)),
}
equal_genre = {
    (o, k): np.stack([genre_run(e, "probe", k, s)[1] for s in seeds])
    for o, e in equal_compute.items()
    for k in C.label_budgets
}
equal_pronoun = {
    (o, k): pronoun_probe(e.body, pronoun, k, seeds, "test").correct
    for o, e in equal_compute.items()
    for k in C.label_budgets
}
equal_seconds = time.perf_counter() - started
flops_ratio = equal_compute["mlm"].train_flops / electra_here.train_flops
race = {  # (task, budget) -> ELECTRA against MLM
    (task, k): compare(
        scores["electra", k],
        scores["mlm", k],
        names=(f"ELECTRA ({electra_here.steps} steps)", f"MLM ({mlm_steps} steps)"),
        metric=f"{task} accuracy, probe, {budget_name(k)}/class",
        unit=unit,
    )
    for k in C.label_budgets
    for task, scores, unit in (
        ("genre", equal_genre, "test passages"),
        ("pronoun", equal_pronoun, "test lines"),
    )
}
display(Markdown("\n".join(f"- {c.sentence()}" for c in race.values())))
print(
    f"MLM {mlm_steps} steps against ELECTRA's {electra_here.steps}: "
    f"{flops_ratio:.3f}× its FLOPs ({equal_compute['mlm'].train_flops:.3e} against "
    f"{electra_here.train_flops:.3e}); {equal_seconds:.0f} s"
)

# %% [markdown]
# **Reading the race.** The two encoders cost the same FLOPs to within one MLM step. The
# verdicts above are the result, each with its interval; one pretraining seed each, one
# short pretraining, so they say how these two encoders compare, not yet how the two
# objectives do: the gpu profile runs the race three times longer, over five seeds.

# %% [markdown]
# ## 5 · Overfitting the smallest budget
#
# With a few labelled passages per class a network can learn them by heart. The cell
# below fine-tunes one encoder fully on the smallest budget and measures train and val
# accuracy (val plays: unseen, and not the test plays) every `overfit_eval_every` steps,
# once without any regularisation and once with each of: dropout 0.3, weight decay 0.1,
# early stopping on val accuracy (patience 2) and FGM (Miyato et al. 2017: one more
# forward and backward at embeddings pushed by ε along their gradient, `fgm_step`).


# %%
overfit_objective = lora_objective
smallest = C.label_budgets[0]
small = budget_indices(smallest)
small_ids, small_labels = genre_ids["train"][small], genre_labels["train"][small]


def set_dropout(model, p: float) -> None:
    for module in model.modules():
        if isinstance(module, Dropout):
            module.p = p
        if isinstance(module, MultiHeadAttention):
            module.attention_dropout = p


def curves_eval(model):
    def eval_fn(step):
        return {
            "train/accuracy": accuracy(model, small_ids, small_labels),
            "val/accuracy": accuracy(model, genre_ids["val"], genre_labels["val"]),
        }

    return eval_fn


def overfit_run(dropout: float, weight_decay: float, early_stopping: bool, fgm: bool):
    torch.manual_seed(seed)  # the same head for every variant
    model = with_head(
        copy.deepcopy(encoders[overfit_objective].body), "sequence", len(GENRES), pooling="mean"
    ).to(device)
    set_dropout(model, dropout)
    prepare(model, "full")
    eval_fn = curves_eval(model)
    batches = sample_rows(
        small_ids.to(device), small_labels.to(device), batch_size=min(C.batch_size, len(small))
    )
    if not fgm:
        extra = (
            {
                "early_stopping_metric": "val/accuracy",
                "early_stopping_mode": "max",
                "early_stopping_patience": 2,
            }
            if early_stopping
            else {}
        )
        history, _ = fine_tune(
            model,
            sequence_loss,
            batches,
            C.overfit_steps,
            C.full_lr,
            weight_decay=weight_decay,
            eval_every=C.overfit_eval_every,
            eval_fn=eval_fn,
            **extra,
        )
        rows = [row for row in history if "val/accuracy" in row]
        return (
            [int(r["step"]) for r in rows],
            [r["train/accuracy"] for r in rows],
            [r["val/accuracy"] for r in rows],
        )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=C.full_lr, weight_decay=weight_decay
    )
    generator = torch.Generator(device=device).manual_seed(seed)  # sample_rows draws on it
    steps, train, val = [], [], []
    for step in range(1, C.overfit_steps + 1):
        model.train()
        ids, labels = batches(step, generator)
        fgm_step(
            model,
            lambda m, batch: F.cross_entropy(m(batch[0]).float(), batch[1]),
            (ids, labels),
            optimizer,
            model.transformer.token_embedding,
            C.fgm_epsilon,
        )
        if step % C.overfit_eval_every == 0 or step == C.overfit_steps:
            measured = eval_fn(step)
            steps.append(step)
            train.append(measured["train/accuracy"])
            val.append(measured["val/accuracy"])
    return steps, train, val


VARIANTS = {
    "none": (0.0, 0.0, False, False),
    "dropout 0.3": (0.3, 0.0, False, False),
    "weight decay 0.1": (0.0, 0.1, False, False),
    "early stopping": (0.0, 0.0, True, False),
    f"FGM ε={C.fgm_epsilon:g}": (0.0, 0.0, False, True),
}
started = time.perf_counter()
overfit = {name: overfit_run(*settings) for name, settings in VARIANTS.items()}
overfit_seconds = time.perf_counter() - started
rows = ["| regularisation | steps run | train accuracy | val accuracy | best val |"]
rows.append("|---|---|---|---|---|")
for name, (steps, train, val) in overfit.items():
    rows.append(f"| {name} | {steps[-1]} | {train[-1]:.3f} | {val[-1]:.3f} | {max(val):.3f} |")
overfit_markdown = "\n".join(rows)
display(Markdown(overfit_markdown))
print(
    f"{overfit_objective}, full fine-tuning, {budget_name(smallest)} passages per class "
    f"({len(small)} in all); val: {len(genre_labels['val'])} passages; {overfit_seconds:.0f} s"
)
fig = plot_overfitting(overfit)

# %% [markdown]
# The gap between the train and val curves is the overfitting. Read the table with its
# noise in mind: one seed, one draw of the labelled passages and a few hundred val
# passages from a handful of plays, so a difference of a few points between two rows is
# within what another seed would move.
#
# ## 6 · Zero and few labels, no training at all
#
# Two ways to classify without a single gradient step. **Class prototypes**: average the
# (normalised, mean-pooled) embeddings of `k` labelled passages per class and give a
# passage the class of its nearest prototype by cosine similarity. **Class
# descriptions**: embed one sentence per genre with the real all-MiniLM-L6-v2 (a
# sentence encoder trained contrastively on a billion sentence pairs, loaded from local
# files as in 06) and give each passage the genre whose description is nearest, with no
# labelled passage at all. MiniLM's prototypes are shown too.

# %%
DESCRIPTIONS = {
    "comedy": "A comedy: lovers, wit, disguises and mistaken identities, ending in marriages.",
    "history": "A history play: English kings, nobles, battles and the fight for the crown.",
    "tragedy": "A tragedy: ambition, jealousy, revenge, madness, murder and death.",
}
minilm_tokenizer, minilm = load_minilm()


def minilm_embeddings(texts: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2's sentence embeddings: its last hidden states averaged (its recipe)."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = minilm_tokenizer(
                texts[start : start + 64],
                padding=True,
                truncation=True,
                max_length=256,  # a laptop passage is at most 119 WordPiece pieces (08 prints it)
                return_tensors="pt",
            )
            rows.append(pool(minilm(**batch).last_hidden_state, batch["attention_mask"], "mean"))
    return torch.cat(rows)


def nearest_class(embeddings: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    return (F.normalize(embeddings, dim=1) @ F.normalize(centres, dim=1).T).argmax(-1)


def prototype_accuracy(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    indices = budget_indices(k)
    unit, labels = F.normalize(train[indices], dim=1), genre_labels["train"][indices]
    prototypes = torch.stack([unit[labels == c].mean(0) for c in range(len(GENRES))])
    return float((nearest_class(test, prototypes) == genre_labels["test"]).float().mean())


prototype_ks = sorted({1, smallest})
# the probes' features of the small encoders (section 3); MiniLM reads only the passages
# the prototypes use, and the test passages
embedded = {
    objective: {s: probe_features[id(encoder)][s].cpu() for s in ("train", "test")}
    for objective, encoder in encoders.items()
}
labelled = sorted(set().union(*(budget_indices(k) for k in prototype_ks)))
minilm_train = minilm_embeddings([passage_texts["train"][i] for i in labelled])
embedded["MiniLM"] = {
    "train": torch.zeros(len(genre_labels["train"]), minilm_train.shape[1]).index_copy(
        0, torch.tensor(labelled), minilm_train
    ),
    "test": minilm_embeddings(passage_texts["test"]),
}
described = nearest_class(
    embedded["MiniLM"]["test"], minilm_embeddings(list(DESCRIPTIONS.values()))
)
zero_shot_accuracy = float((described == genre_labels["test"]).float().mean())
prototypes = {
    (name, k): prototype_accuracy(sets["train"], sets["test"], k)
    for name, sets in embedded.items()
    for k in prototype_ks
}
rows = ["| embeddings | " + " | ".join(f"{k} per class" for k in prototype_ks) + " |"]
rows.append("|---" * (1 + len(prototype_ks)) + "|")
for name in embedded:
    rows.append(
        f"| {name} prototypes | "
        + " | ".join(f"{prototypes[name, k]:.3f}" for k in prototype_ks)
        + " |"
    )
display(Markdown("\n".join(rows)))
print(f"MiniLM against the genre descriptions, no labels: {zero_shot_accuracy:.3f}")
print(f"majority class: {majority_accuracy:.3f}")

# %% [markdown]
# ## 7 · Try it: the passage explorer
#
# Type a passage: each encoder's fully fine-tuned genre model (the largest budget) gives
# its genre probabilities, and its name tagger marks the names it finds. The widget is a
# view over `sslm_lab.lab.widgets.finetune.passage_report(passage, tokenizer, models,
# genres, max_tokens, max_chunks)`, which the next cell also calls for this notebook's
# `passage`. The classifier reads up to `passage_chunks` chunks of the text, as in
# training; the tagger its first 32 pieces.

# %%
best_method = "full" if "full" in C.methods else C.methods[-1]
explorer_models = {
    objective: (kept_models[objective, best_method], taggers[objective]) for objective in encoders
}
report = passage_report(
    passage, tokenizer, explorer_models, GENRES, recipe.block_size, C.passage_chunks
)
for entry in report:
    chances = ", ".join(f"{g} {p:.2f}" for g, p in entry["probabilities"].items())
    print(f"{entry['model']:<8} {chances}; names: {', '.join(entry['names']) or '(none)'}")
display(HTML(report_html(report)))
passage_explorer(tokenizer, explorer_models, GENRES, recipe.block_size, passage, C.passage_chunks)

# %% [markdown]
# ## What this notebook established
#
# The closing cell checks what must hold at this size: LoRA merged and unmerged give the
# same outputs and train under `max_lora_fraction` of the parameters, and the race is at
# equal compute. Where the profile is long enough to learn (`learns`), it checks that
# the pronoun task is what section 1 says it is (on val, the bag of words stays below
# `max_bag_of_words_val`, the neighbours reach `min_neighbours_val`) and the comparisons
# the profile measured to hold, by their verdicts. Then it says, from the verdicts alone,
# on which task and budget each pretrained encoder beats random init and where it does
# not: with the short pretraining of these small encoders that is a finding, not a
# failure, and it is printed, not hidden.

# %% tags=["asserts-learning"]
wall_seconds = time.perf_counter() - notebook_started
cpu_seconds = time.process_time() - notebook_cpu  # every thread of this kernel
verdicts = {  # task -> (objective, budget) -> the verdict against random init
    "genre": {key: c.verdict for key, c in genre_vs_random.items()},
    "names": {(o, None): c.verdict for o, c in names_vs_random.items()},
    "pronoun case": {key: c.verdict for key, c in pronoun_vs_random.items()},
}
assert lora_merge_error < 1e-4 and lora_unmerge_error < 1e-4, "LoRA merge changed the outputs"
assert lora_fraction < C.max_lora_fraction, f"LoRA trains {lora_fraction:.3f} of the parameters"
assert len(grid) == len(encoders) * len(C.methods) * len(C.label_budgets)
assert abs(flops_ratio - 1) < 1 / mlm_steps, "the race is not at equal compute"
if C.learns:
    bag_val = max(pronoun_baselines["bag of words", k, "val"].accuracy for k in C.label_budgets)
    neighbours_val = pronoun_baselines["neighbours", largest, "val"].accuracy
    # A bag of words near 0.5 and neighbours well above: the gap is hidden and the
    # context decides. If the pronoun leaked into the line, both would be near 1.
    assert bag_val < C.max_bag_of_words_val, f"bag of words {bag_val:.3f} on val"
    assert neighbours_val > C.min_neighbours_val, f"neighbours {neighbours_val:.3f} on val"
    for objective, k in C.beats_random_on_pronouns:
        assert pronoun_vs_random[objective, k].verdict == "better", pronoun_vs_random[
            objective, k
        ].sentence()
    for k in C.tfidf_beats_majority_at:
        assert genre_vs_baselines["TF-IDF vs majority", k].verdict == "better", genre_vs_baselines[
            "TF-IDF vs majority", k
        ].sentence()
beats = [
    f"{task} ({o}{'' if k is None else f', {budget_name(k)}/class'})"
    for task, found in verdicts.items()
    for (o, k), v in found.items()
    if v == "better"
]
not_beating = [
    f"{task} ({o}{'' if k is None else f', {budget_name(k)}/class'}: {v})"
    for task, found in verdicts.items()
    for (o, k), v in found.items()
    if v != "better"
]
if beats:
    summary = (
        f"At {P.name} size, pretraining beats random init of the same shape on: "
        + "; ".join(beats)
        + ". It does not on: "
        + ("; ".join(not_beating) or "none")
        + "."
    )
else:
    summary = (
        f"At {P.name} size, pretraining does not beat random init of the same shape on any of "
        "these three real-text tasks; where it does: the known language of "
        "09_known_language, and MiniLM against its own random init in 08."
    )
print(summary)

# %% [markdown]
# **The lesson, as the verdicts above give it.** The summary is printed from the
# verdicts, not written by hand. Where the order of the words decides (the hidden
# pronoun), the masked-LM encoder that 02 saved is worth much more than random weights of
# the same shape; on names, a little; on genre, where a bag of word and character n-grams
# (TF-IDF) is the strongest system here, none of these small encoders beats random init.
# SimCSE and ELECTRA, pretrained briefly and never shown a `[MASK]`, beat random init on
# none of the three tasks at this size. Where pretraining is measured at a larger scale
# or against a known answer: 08 probes the real MiniLM against random weights of its
# shape, and 09_known_language pretrains these objectives on a language whose rules are
# known.

# %%
machine = f"{device_description(torch.device('cpu'))}, {os.cpu_count()} cores"
every_comparison = [*genre_comparisons, *names_comparisons, *pronoun_comparisons, *race.values()]
closing = "\n\n".join(
    [
        f"**Closing note.** {P.name} profile, seeds {list(seeds)}, on {machine}; models on "
        f"{device_name(device)}. Encoders: "
        + ", ".join(f"{o} ({e.source.split(' (')[0]})" for o, e in encoders.items())
        + f"; the whole notebook ran {wall_seconds:.0f} s ({cpu_seconds:.0f} s of CPU time, "
        f"{torch.get_num_threads()} threads).",
        f"Genre at seed {seed}, val and test accuracy ({steps_finetune} fine-tuning steps):",
        grid_markdown,
        "Every comparison this notebook states (test units × seeds; interval 95 %):",
        markdown_table(every_comparison),
        summary,
        "Overfitting at the smallest budget (val):",
        overfit_markdown,
    ]
)
display(Markdown(closing))
results_file = record_results(
    "07_fine_tuning",
    {
        "seed": seed,
        "seeds": len(seeds),
        "device": device_name(device),
        "pretrain_steps": steps_pretrain,
        "finetune_steps": steps_finetune,
        "objectives": ",".join(encoders),
        "budgets": ",".join(budget_name(k) for k in C.label_budgets),
        "majority_accuracy": majority_accuracy,
        **{f"tfidf_{budget_name(k)}": float(v["test"].mean()) for k, v in tfidf.items()},
        **{f"names_{m}_f1": s["f1"] for m, s in name_baselines.items()},
        **{
            f"genre_{o}_{m}_{budget_name(k)}": float(v["test"].mean())
            for (o, m, k), v in grid.items()
        },
        **{
            f"val_genre_{o}_{m}_{budget_name(k)}": float(v["val"].mean())
            for (o, m, k), v in grid.items()
        },
        **{f"chosen_{o}_{budget_name(k)}": m for (o, k), m in chosen.items()},
        **{
            f"genre_chosen_{o}_{budget_name(k)}": float(v.mean())
            for (o, k), v in genre_correct.items()
        },
        **{
            f"genre_vs_random_{o}_{budget_name(k)}": c.verdict
            for (o, k), c in genre_vs_random.items()
        },
        **{
            f"genre_{name.replace(' ', '_').replace('-', '').lower()}_{budget_name(k)}": c.verdict
            for (name, k), c in genre_vs_baselines.items()
        },
        **{f"names_{o}_f1": s["f1"] for o, s in names.items()},
        **{f"names_val_{o}_f1": v for o, v in names_val.items()},
        **{f"names_vs_random_{o}": c.verdict for o, c in names_vs_random.items()},
        "names_best_vs_capitalisation": names_vs_capitalisation.verdict,
        **{
            f"pronoun_{name.replace(' ', '_')}_{budget_name(k)}{'' if s == 'test' else '_val'}": v.accuracy
            for (name, k, s), v in pronoun_baselines.items()
        },
        **{
            f"pronoun_{o}_{budget_name(k)}{'' if s == 'test' else '_val'}": v.accuracy
            for (o, k, s), v in pronoun_scores.items()
        },
        **{
            f"pronoun_vs_random_{o}_{budget_name(k)}": c.verdict
            for (o, k), c in pronoun_vs_random.items()
        },
        **{
            f"pronoun_best_vs_{name.replace(' ', '_')}_{budget_name(k)}": c.verdict
            for (name, k), c in pronoun_vs_baselines.items()
        },
        **{f"train_flops_{o}": e.train_flops for o, e in encoders.items()},
        **{f"train_tokens_{o}": e.train_tokens for o, e in encoders.items()},
        **{f"from_checkpoint_{o}": e.source.startswith("checkpoint") for o, e in encoders.items()},
        "equal_compute_mlm_steps": mlm_steps,
        "equal_compute_electra_steps": electra_here.steps,
        "equal_compute_flops_ratio": flops_ratio,
        **{
            f"equal_genre_{o}_{budget_name(k)}": float(v.mean())
            for (o, k), v in equal_genre.items()
        },
        **{
            f"equal_pronoun_{o}_{budget_name(k)}": float(v.mean())
            for (o, k), v in equal_pronoun.items()
        },
        **{f"race_{task}_{budget_name(k)}": c.verdict for (task, k), c in race.items()},
        "minilm_zero_shot_accuracy": zero_shot_accuracy,
        **{f"prototypes_{name.lower()}_{k}": v for (name, k), v in prototypes.items()},
        "beats_random": "; ".join(beats),
        "not_beating_random": ",".join(
            o
            for o in pretrained_objectives
            if not any(
                v == "better"
                for found in verdicts.values()
                for (p, _), v in found.items()
                if p == o
            )
        ),
        "lora_fraction": lora_fraction,
        "lora_merge_max_abs_error": lora_merge_error,
        **{
            f"overfit_{name.split()[0].lower()}_val": val[-1]
            for name, (_, _, val) in overfit.items()
        },
        "pretrain_seconds": pretrain_seconds,
        "grid_seconds": grid_seconds,
        "names_seconds": names_seconds,
        "pronoun_seconds": pronoun_seconds,
        "equal_seconds": equal_seconds,
        "wall_seconds": wall_seconds,
        "cpu_seconds": cpu_seconds,
    },
    profile=P.name,
)
print(f"recorded in {results_file.name}; notebook ran {wall_seconds:.0f} s")
