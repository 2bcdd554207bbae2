"""One downstream number every pretraining notebook reports: genre from a few labels.

Each pretraining notebook ends with an encoder; whether its pretraining helps a task is
only worth saying beside a random-init encoder of the same shape, under the same
protocol. The protocol is 07's linear probe on the genre of a passage:

    task = genre_task(tokenizer, block_size=32)           passages of unseen plays
    scores = genre_probe(body, task, per_class=8, seeds=(0, 1, 2))
    control = genre_probe(random_body, task, per_class=8, seeds=(0, 1, 2))
    compare(scores.correct, control.correct, names=(...), metric="genre accuracy",
            unit="test passages")                          lab.compare: a verdict

A passage is `chunks` chunks of `block_size - 1` BPE pieces, each with [CLS] in front,
from the plays of one split (plays are split whole, so test passages come from plays no
encoder and no probe saw). The body's hidden states, mean-pooled per chunk and averaged
over the chunks, are the features (`finetune.frozen_features`); a logistic regression
on `per_class` labelled training passages per genre, drawn by each seed
(`finetune.few_shot_indices`), predicts the test passages. The features are computed
once per body; each seed changes only which passages are labelled.

A second task, where the order of the words matters (07): the case of a hidden pronoun
(`data.pronouns`). A line of a play with one of I/me, he/him, we/us, they/them,
thou/thee replaced by [MASK]; is the missing form the subject or the object one?

    task = pronoun_task(tokenizer, block_size=32)          lines of unseen plays
    scores = pronoun_probe(body, task, per_class=8, seeds=(0, 1, 2))
    words = pronoun_baseline(task, "bag of words", per_class=8, seeds=(0, 1, 2))

The probe reads the body's hidden state at the [MASK] position (the gap) and fits the
same logistic regression on `per_class` labelled lines per case. The baselines fit a
logistic regression on the line's other words as a bag ("bag of words": which words,
not where), or on the word just before and just after the gap ("neighbours").

Names are scored by entity F1, which is not a mean over speeches; `f1_contributions`
writes it as one (each speech's share of F1, by linearising F1 = 2·TP / (P + T)), so two
taggers can be compared speech by speech with lab.compare.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from sslm_lab import data
from sslm_lab.checks import check_choice, check_int, check_type, invalid
from sslm_lab.data import pronouns
from sslm_lab.eval_mode import evaluating
from sslm_lab.finetune import few_shot_indices, fit_linear_probe, frozen_features
from sslm_lab.transformer import Transformer

GENRES = ("comedy", "history", "tragedy")
SPLITS = ("train", "val", "test")
BASELINES = ("bag of words", "neighbours")  # pronoun_baseline's two


@dataclass(frozen=True)
class GenreTask:
    """Labelled passages of every split: ids (passages, chunks, block_size), labels."""

    ids: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    block_size: int

    @property
    def majority_accuracy(self) -> float:
        """Always the training split's most frequent genre, on the test passages."""
        majority = int(torch.bincount(self.labels["train"]).argmax())
        return float((self.labels["test"] == majority).float().mean())


@dataclass(frozen=True)
class ProbeScores:
    """Per seed, whether each passage of the split was classified right: (seeds, passages)."""

    correct: np.ndarray
    seeds: tuple[int, ...]
    per_class: int

    @property
    def accuracy(self) -> float:
        """Mean over seeds and passages."""
        return float(self.correct.mean())


@functools.lru_cache(maxsize=4)
def genre_task(
    tokenizer: data.BPETokenizer, block_size: int = 32, chunks: int = 4, max_per_work: int = 64
) -> GenreTask:
    """07's genre passages for an encoder of `block_size` positions, encoded with the
    tokenizer it was pretrained with (cached: encoding the plays takes seconds)."""
    check_int("block_size", block_size, low=2)
    check_int("chunks", chunks, low=1)
    check_int("max_per_work", max_per_work, low=1)
    pieces = block_size - 1  # [CLS] takes the first position of every chunk
    ids, labels = {}, {}
    for split in SPLITS:
        passages = data.LabelledPassages(
            split, tokenizer, chunks * pieces, max_per_work=max_per_work, genres=GENRES
        )
        ids[split] = passages.chunked(chunks, tokenizer.cls_id)
        labels[split] = passages.labels
    return GenreTask(ids, labels, block_size)


def genre_probe(
    body: Transformer,
    task: GenreTask,
    per_class: int = 8,
    seeds: tuple[int, ...] = (0, 1, 2),
    split: str = "test",
) -> ProbeScores:
    """The linear probe of 07 on `body`'s frozen features, once per seed (see the module
    docstring). `split` is "val" for choosing settings, "test" for the number reported."""
    check_type("task", task, GenreTask, "a GenreTask, from genre_task(tokenizer, block_size)")
    _check_probe(body, task.block_size, per_class, seeds, split, "genre_task")
    body = body.cpu()
    features = {s: frozen_features(body, task.ids[s]) for s in ("train", split)}
    return _probe_scores(features, task.labels, per_class, seeds, split)


def _check_probe(
    body: Transformer, block_size: int, per_class: int, seeds: tuple, split: str, task: str
) -> None:
    check_type("body", body, Transformer, "an sslm_lab Transformer body (model.transformer)")
    _check_budget(per_class, seeds, split)
    if body.config.block_size < block_size:
        raise ValueError(
            f"body.config.block_size={body.config.block_size} is shorter than the task's "
            f"rows of {block_size}: build the task with {task}(tokenizer, "
            f"block_size={body.config.block_size})"
        )


def _check_budget(per_class: int, seeds: tuple, split: str) -> None:
    check_int("per_class", per_class, low=1)
    check_choice("split", split, ("val", "test"))
    if not isinstance(seeds, tuple) or not seeds or len(set(seeds)) != len(seeds):
        raise invalid("seeds", seeds, "a tuple of distinct integer seeds, at least one")
    for seed in seeds:
        check_int("seeds[i]", seed, low=0)


def _probe_scores(
    features: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    per_class: int,
    seeds: tuple[int, ...],
    split: str,
) -> ProbeScores:
    """A linear probe per seed on `per_class` labelled training rows per class."""
    classes = int(labels["train"].max()) + 1
    correct = []
    for seed in seeds:
        chosen = few_shot_indices(labels["train"], per_class, seed, num_classes=classes)
        probe = fit_linear_probe(features["train"][chosen], labels["train"][chosen], classes)
        with torch.no_grad():
            predicted = probe(features[split]).argmax(-1)
        correct.append((predicted == labels[split]).numpy())
    return ProbeScores(np.stack(correct).astype(float), tuple(seeds), per_class)


# ------------------------------------------------------------------ the hidden pronoun


@dataclass(frozen=True)
class PronounTask:
    """Lines of every split with one pronoun hidden: as words (`rows`) and as ids."""

    rows: dict[str, list[pronouns.HiddenPronoun]]
    encoded: dict[str, pronouns.EncodedGaps]
    block_size: int

    @property
    def labels(self) -> dict[str, torch.Tensor]:
        """0 subject, 1 object, per split."""
        return {split: encoded.labels for split, encoded in self.encoded.items()}


@functools.lru_cache(maxsize=4)
def pronoun_task(
    tokenizer: data.BPETokenizer,
    block_size: int = 32,
    per_pair_and_case: int = 128,
    train_per_pair_and_case: int = 400,
    seed: int = 0,
) -> PronounTask:
    """The lines of each split, balanced (`pronouns.balanced`): `per_pair_and_case` lines
    of each form of each pair in val and test, `train_per_pair_and_case` in the pool the
    labelled lines are drawn from; encoded for an encoder of `block_size` positions
    (cached: reading the plays takes a second)."""
    check_int("block_size", block_size, low=3)
    check_int("per_pair_and_case", per_pair_and_case, low=1)
    check_int("train_per_pair_and_case", train_per_pair_and_case, low=1)
    sizes = {"train": train_per_pair_and_case, "val": per_pair_and_case, "test": per_pair_and_case}
    rows = {
        split: pronouns.balanced(pronouns.hidden_pronouns(split), sizes[split], seed)
        for split in SPLITS
    }
    encoded = {
        split: pronouns.encode_gaps(found, tokenizer, block_size) for split, found in rows.items()
    }
    return PronounTask(rows, encoded, block_size)


def gap_features(body: Transformer, encoded: pronouns.EncodedGaps, batch_size: int = 256):
    """The body's last hidden state at each row's gap, (rows, n_embd), in eval mode."""
    check_type("body", body, Transformer, "an sslm_lab Transformer body (model.transformer)")
    check_int("batch_size", batch_size, low=1)
    features = []
    device = next(body.parameters()).device
    with evaluating(body), torch.no_grad():
        for start in range(0, len(encoded.ids), batch_size):
            rows = slice(start, start + batch_size)
            ids, mask = encoded.ids[rows].to(device), encoded.attention_mask[rows].to(device)
            at_gap = torch.zeros_like(ids, dtype=torch.bool)
            at_gap[torch.arange(len(ids)), encoded.gap[rows]] = True
            features.append(body(ids, mask, positions=at_gap).float().cpu())  # (rows, n_embd)
    return torch.cat(features)


def pronoun_probe(
    body: Transformer,
    task: PronounTask,
    per_class: int = 8,
    seeds: tuple[int, ...] = (0, 1, 2),
    split: str = "test",
) -> ProbeScores:
    """The linear probe on the body's frozen hidden state at the gap, once per seed: per
    line of `split`, whether the case was predicted right, (seeds, lines)."""
    check_type("task", task, PronounTask, "a PronounTask, from pronoun_task(tokenizer)")
    _check_probe(body, task.block_size, per_class, seeds, split, "pronoun_task")
    # Only the labelled lines of the training pool are read (the same draws as the probes')
    train = task.encoded["train"]
    labelled = sorted(
        {
            i
            for seed in seeds
            for i in few_shot_indices(train.labels, per_class, seed, num_classes=2)
        }
    )
    some = pronouns.EncodedGaps(
        *(getattr(train, field.name)[labelled] for field in dataclasses.fields(train))
    )
    features = torch.zeros(len(train.labels), body.config.n_embd)
    features[labelled] = gap_features(body, some)
    features = {"train": features, split: gap_features(body, task.encoded[split])}
    return _probe_scores(features, task.labels, per_class, seeds, split)


def _baseline_words(row: pronouns.HiddenPronoun, baseline: str) -> list[str]:
    if baseline == "bag of words":
        return sorted({word.lower() for word in row.context()})
    before, after = row.neighbours()
    return [f"before:{before.lower()}", f"after:{after.lower()}"]


def pronoun_baseline(
    task: PronounTask,
    baseline: str,
    per_class: int = 8,
    seeds: tuple[int, ...] = (0, 1, 2),
    split: str = "test",
) -> ProbeScores:
    """A logistic regression (scikit-learn) on word features, fitted on the same labelled
    lines as `pronoun_probe` draws for each seed: "bag of words" reads which words the
    rest of the line holds, "neighbours" the words just before and after the gap."""
    check_type("task", task, PronounTask, "a PronounTask, from pronoun_task(tokenizer)")
    check_choice("baseline", baseline, BASELINES)
    _check_budget(per_class, seeds, split)
    texts = {s: [_baseline_words(row, baseline) for row in task.rows[s]] for s in ("train", split)}
    labels = task.labels
    correct = []
    for seed in seeds:
        chosen = few_shot_indices(labels["train"], per_class, seed, num_classes=len(pronouns.CASES))
        vectorizer = CountVectorizer(analyzer=lambda features: features, binary=True)
        model = LogisticRegression(max_iter=2000)
        model.fit(
            vectorizer.fit_transform([texts["train"][i] for i in chosen]),
            labels["train"][chosen].numpy(),
        )
        predicted = model.predict(vectorizer.transform(texts[split]))
        correct.append(predicted == labels[split].numpy())
    return ProbeScores(np.stack(correct).astype(float), tuple(seeds), per_class)


# ------------------------------------------------------------------ names, speech by speech


def _entities(tags: list[str]) -> set[tuple[int, int]]:
    """Strict BIO spans (start, end): a B- tag and the I- tags that follow it."""
    spans, start = set(), None
    for index, tag in enumerate([*tags, "O"]):
        if start is not None and not tag.startswith("I-"):
            spans.add((start, index))
            start = None
        if tag.startswith("B-"):
            start = index
    return spans


def f1_contributions(true_tags: list[list[str]], predicted_tags: list[list[str]]) -> np.ndarray:
    """Each speech's share of entity F1, (speeches,): its mean over the speeches is F1.

    F1 = 2·TP / (P + T) over all speeches (TP entities found, P predicted, T true) is a
    ratio of sums, not a mean. Its linearisation around the total, speech i's
    F1 + (2·TP_i - F1·(P_i + T_i)) / mean(P + T), averages to F1 exactly and moves with
    each speech as F1 does to first order (the delta method), so a paired bootstrap of
    these values (lab.compare) gives an interval for a difference of two F1s. Entities
    are strict BIO spans of one type, as `names.entity_f1` (seqeval, strict) counts them.
    """
    if [len(t) for t in true_tags] != [len(p) for p in predicted_tags]:
        raise ValueError("true_tags and predicted_tags: each sequence needs one tag per token")
    counts = []
    for truth, predicted in zip(true_tags, predicted_tags, strict=True):
        true_spans, found = _entities(truth), _entities(predicted)
        counts.append((len(true_spans & found), len(found) + len(true_spans)))
    hits, sizes = np.array(counts, dtype=float).T.reshape(2, -1)
    if sizes.sum() == 0:
        return np.zeros(len(true_tags))
    f1 = 2 * hits.sum() / sizes.sum()
    return f1 + (2 * hits - f1 * sizes) / sizes.mean()
