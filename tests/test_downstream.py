"""The shared downstream number: 07's genre probe, for any pretraining notebook's encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sslm_lab import data
from sslm_lab.checks import ArgumentError
from sslm_lab.lab.downstream import GENRES, genre_probe, genre_task
from sslm_lab.transformer import Transformer, TransformerConfig


@pytest.fixture(scope="module")
def task():
    return genre_task(data.bpe_tokenizer(512), block_size=16, chunks=2, max_per_work=8)


def body(block_size: int = 16, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = TransformerConfig(
        vocab_size=512, block_size=block_size, n_layer=1, n_head=2, n_embd=16, causal=False
    )
    return Transformer(config).eval()


def test_the_task_holds_unseen_plays_of_three_genres_as_chunks(task) -> None:
    assert task.ids["test"].shape[1:] == (2, 16)
    assert (task.ids["test"][:, :, 0] == data.bpe_tokenizer(512).cls_id).all()
    assert set(task.labels["train"].tolist()) == set(range(len(GENRES)))
    assert 0 < task.majority_accuracy < 1


def test_the_probe_scores_every_test_passage_once_per_seed_and_repeats(task) -> None:
    scores = genre_probe(body(), task, per_class=4, seeds=(0, 1))
    assert scores.correct.shape == (2, len(task.labels["test"]))
    assert set(np.unique(scores.correct)) <= {0.0, 1.0}
    again = genre_probe(body(), task, per_class=4, seeds=(0, 1))
    assert np.array_equal(scores.correct, again.correct)
    # other labelled passages, another probe: the seeds are not ignored
    other = genre_probe(body(), task, per_class=4, seeds=(5, 6))
    assert not np.array_equal(scores.correct, other.correct)


def test_bad_input_is_refused_before_any_work(task) -> None:
    with pytest.raises(ValueError, match="block_size=8 is shorter"):
        genre_probe(body(block_size=8), task)
    with pytest.raises(ArgumentError, match="seeds"):
        genre_probe(body(), task, seeds=(1, 1))
    with pytest.raises(ArgumentError, match="split"):
        genre_probe(body(), task, split="train")
    with pytest.raises(ArgumentError, match=r"type\(body\)"):
        genre_probe("an encoder", task)
