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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from sslm_lab import data
from sslm_lab.checks import check_choice, check_int, check_type, invalid
from sslm_lab.finetune import few_shot_indices, fit_linear_probe, frozen_features
from sslm_lab.transformer import Transformer

GENRES = ("comedy", "history", "tragedy")
SPLITS = ("train", "val", "test")


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
    check_type("body", body, Transformer, "an sslm_lab Transformer body (model.transformer)")
    check_type("task", task, GenreTask, "a GenreTask, from genre_task(tokenizer, block_size)")
    check_int("per_class", per_class, low=1)
    check_choice("split", split, ("val", "test"))
    if not isinstance(seeds, tuple) or not seeds or len(set(seeds)) != len(seeds):
        raise invalid("seeds", seeds, "a tuple of distinct integer seeds, at least one")
    for seed in seeds:
        check_int("seeds[i]", seed, low=0)
    if body.config.block_size < task.block_size:
        raise ValueError(
            f"body.config.block_size={body.config.block_size} is shorter than the task's "
            f"chunks of {task.block_size}: build the task with genre_task(tokenizer, "
            f"block_size={body.config.block_size})"
        )
    body = body.cpu()
    features = {s: frozen_features(body, task.ids[s]) for s in ("train", split)}
    correct = []
    for seed in seeds:
        chosen = few_shot_indices(task.labels["train"], per_class, seed, num_classes=len(GENRES))
        probe = fit_linear_probe(features["train"][chosen], task.labels["train"][chosen], 3)
        with torch.no_grad():
            predicted = probe(features[split]).argmax(-1)
        correct.append((predicted == task.labels[split]).numpy())
    return ProbeScores(np.stack(correct).astype(float), tuple(seeds), per_class)
