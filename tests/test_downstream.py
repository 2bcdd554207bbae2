"""The shared downstream number: 07's genre probe, for any pretraining notebook's encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sslm_lab import data
from sslm_lab.checks import ArgumentError
from sslm_lab.data.names import entity_f1
from sslm_lab.lab.downstream import (
    BASELINES,
    GENRES,
    f1_contributions,
    gap_features,
    genre_probe,
    genre_task,
    pronoun_baseline,
    pronoun_probe,
    pronoun_task,
)
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


# ------------------------------------------------------------------ the hidden pronoun


@pytest.fixture(scope="module")
def pronoun_lines():
    return pronoun_task(
        data.bpe_tokenizer(512), block_size=16, per_pair_and_case=8, train_per_pair_and_case=16
    )


def test_the_pronoun_task_is_balanced_and_hides_one_piece_per_line(pronoun_lines) -> None:
    tokenizer = data.bpe_tokenizer(512)
    for split in ("train", "val", "test"):
        encoded, labels = pronoun_lines.encoded[split], pronoun_lines.labels[split]
        assert encoded.ids.shape == (len(pronoun_lines.rows[split]), 16)
        assert labels.float().mean() == 0.5  # as many subjects as objects
        at_gap = encoded.ids[torch.arange(len(labels)), encoded.gap]
        assert (at_gap == tokenizer.mask_id).all()
        assert ((encoded.ids == tokenizer.mask_id).sum(1) == 1).all()
    assert len(pronoun_lines.rows["test"]) == 8 * 2 * 5


def test_gap_features_are_the_hidden_states_at_the_gap(pronoun_lines) -> None:
    encoder = body()
    encoded = pronoun_lines.encoded["val"]
    features = gap_features(encoder, encoded, batch_size=7)
    with torch.no_grad():
        hidden = encoder(encoded.ids, encoded.attention_mask)  # (rows, seq, n_embd)
    expected = hidden[torch.arange(len(hidden)), encoded.gap]
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


def test_the_pronoun_probe_and_baselines_score_every_line_once_per_seed(pronoun_lines) -> None:
    n = len(pronoun_lines.labels["val"])
    scores = pronoun_probe(body(), pronoun_lines, per_class=4, seeds=(0, 1), split="val")
    assert scores.correct.shape == (2, n) and 0 <= scores.accuracy <= 1
    again = pronoun_probe(body(), pronoun_lines, per_class=4, seeds=(0, 1), split="val")
    assert np.array_equal(scores.correct, again.correct)
    for baseline in BASELINES:
        words = pronoun_baseline(pronoun_lines, baseline, per_class=4, seeds=(0, 1, 2))
        assert words.correct.shape == (3, len(pronoun_lines.labels["test"]))
        assert set(np.unique(words.correct)) <= {0.0, 1.0}


def test_the_neighbours_baseline_reads_the_words_at_the_gap(pronoun_lines) -> None:
    # Fitted on every training line, "to [MASK]" and "[MASK] will" must come out right:
    # a baseline that ignored its features would stay near 0.5 on the training lines.
    many = len(pronoun_lines.labels["train"]) // 2
    scores = pronoun_baseline(pronoun_lines, "neighbours", per_class=many, seeds=(0,))
    assert scores.accuracy > 0.55


def test_bad_pronoun_input_is_refused(pronoun_lines) -> None:
    with pytest.raises(ArgumentError, match="baseline"):
        pronoun_baseline(pronoun_lines, "tf-idf")
    with pytest.raises(ArgumentError, match=r"type\(task\)"):
        pronoun_probe(body(), "lines")
    with pytest.raises(ValueError, match="block_size=8 is shorter"):
        pronoun_probe(body(block_size=8), pronoun_lines)
    with pytest.raises(ArgumentError, match="per_class"):
        pronoun_baseline(pronoun_lines, "bag of words", per_class=0)


# ------------------------------------------------------------------ names, speech by speech


def test_f1_contributions_average_to_seqeval_f1() -> None:
    generator = np.random.default_rng(0)
    tags = ("O", "O", "O", "B-PER", "I-PER")
    for _ in range(20):
        lengths = generator.integers(1, 9, size=30)
        truth = [[str(generator.choice(tags)) for _ in range(n)] for n in lengths]
        guess = [[str(generator.choice(tags)) for _ in range(n)] for n in lengths]
        contributions = f1_contributions(truth, guess)
        assert contributions.shape == (30,)
        assert contributions.mean() == pytest.approx(entity_f1(truth, guess)["f1"], abs=1e-12)


def test_f1_contributions_of_a_perfect_tagger_are_all_one_and_of_nothing_zero() -> None:
    truth = [["O", "B-PER", "I-PER"], ["B-PER", "O"], ["O"]]
    assert np.allclose(f1_contributions(truth, truth), 1.0)
    nothing = [["O"] * len(t) for t in truth]
    assert f1_contributions(truth, nothing).mean() == 0.0
    assert np.allclose(f1_contributions(nothing, nothing), 0.0)
    with pytest.raises(ValueError, match="one tag per token"):
        f1_contributions(truth, [["O"], ["O"], ["O"]])
