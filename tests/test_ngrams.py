import math
from collections import Counter

import numpy as np
import pytest

from sslm_lab.ngrams import (
    add_k_probabilities,
    bits_per_char,
    char_ids,
    ngram_baselines,
    ngram_bits_per_char,
)


def brute_force_bpc(train: str, evaluation: str, order: int, alphabet: str, k: float, start: int):
    """The textbook definition, one dictionary lookup at a time."""
    grams = Counter(train[i - order + 1 : i + 1] for i in range(order - 1, len(train)))
    contexts = Counter(train[i - order + 1 : i] for i in range(order - 1, len(train)))
    total = 0.0
    for i in range(start, len(evaluation)):
        gram = evaluation[i - order + 1 : i + 1]
        p = (grams[gram] + k) / (contexts[gram[:-1]] + k * len(alphabet))
        total -= math.log2(p)
    return total / (len(evaluation) - start)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_matches_brute_force_definition(order) -> None:
    alphabet = "abc d"
    train = "abc abd dab cab abc " * 5
    evaluation = "dab abc cad bad"
    ids = char_ids(train, alphabet), char_ids(evaluation, alphabet)
    fast = ngram_bits_per_char(*ids, order=order, vocab_size=len(alphabet), k=0.5, start=2)
    assert fast == pytest.approx(brute_force_bpc(train, evaluation, order, alphabet, 0.5, 2))


def test_more_context_helps_on_structured_text() -> None:
    rng = np.random.default_rng(0)
    words = ["thee", "thou", "hath", "doth", "love", "lord"]
    text = " ".join(rng.choice(words, size=3000))
    alphabet = sorted(set(text))
    bpc = ngram_baselines(text[:12000], text[12000:], alphabet, orders=(1, 2, 3), k=0.01)
    assert bpc[3] < bpc[2] < bpc[1] < math.log2(len(alphabet))


def test_uniform_when_nothing_was_seen() -> None:
    empty = np.array([], dtype=np.int64)
    value = ngram_bits_per_char(empty, np.array([0, 1, 2, 3]), order=1, vocab_size=4, start=0)
    assert value == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": 0}, "order=0"),
        ({"order": 2, "k": 0.0}, "k=0.0"),
        ({"order": 3, "start": 1}, "start=1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message) -> None:
    ids = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=message):
        ngram_bits_per_char(ids, ids, vocab_size=2, **kwargs)


def test_unknown_character_is_named() -> None:
    with pytest.raises(ValueError, match="'z'"):
        char_ids("abz", "ab")


def test_add_k_probabilities_sum_to_one_and_never_vanish() -> None:
    counts = np.array([[3, 0, 1], [0, 0, 0]])
    table = add_k_probabilities(counts, 0.5)
    np.testing.assert_allclose(table[0], [3.5 / 5.5, 0.5 / 5.5, 1.5 / 5.5])
    np.testing.assert_allclose(table[1], [1 / 3] * 3)  # an unseen context: uniform
    np.testing.assert_allclose(table.sum(axis=-1), 1.0)
    with pytest.raises(ValueError, match=r"k=0 \(int\) is not allowed"):
        add_k_probabilities(counts, 0)


def test_bits_per_char_is_the_mean_negative_log2() -> None:
    assert bits_per_char(np.array([0.5, 0.25])) == pytest.approx(1.5)
    for bad in (np.array([]), np.array([0.0, 0.5]), np.array([1.5])):
        with pytest.raises(ValueError, match="numbers in \\(0, 1\\]"):
            bits_per_char(bad)
