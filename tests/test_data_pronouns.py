"""Tests for sslm_lab.data.pronouns: the case of a hidden pronoun, labelled by the text."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from sslm_lab import data
from sslm_lab.checks import ArgumentError
from sslm_lab.data import pronouns
from sslm_lab.data.pronouns import (
    CASES,
    PAIRS,
    HiddenPronoun,
    balanced,
    encode_gaps,
    hidden_pronouns,
)
from sslm_lab.data.shakespeare import Work

PLAY = """THE TRAGEDY OF NOTHING

ACT I. SCENE I.

HAMLET.
Give me thy hand; I will tell him.
They know us, and we know them.

HORATIO.
Thou art he that taught thee so; i am not.
Her father saw her. You and I.
"""
WORK = Work("nothing", "nothing.txt", "The Tragedy of Nothing", "tragedy", len(PLAY), "0" * 64)


@pytest.fixture
def rows(monkeypatch) -> list[HiddenPronoun]:
    monkeypatch.setattr(pronouns, "read_work", lambda work: PLAY)
    return hidden_pronouns("test", works=[WORK])


def test_every_pronoun_of_the_pairs_in_the_spoken_lines_is_one_example(rows) -> None:
    found = [(row.pronoun, CASES[row.label], PAIRS[row.pair][0]) for row in rows]
    assert found == [
        ("me", "object", "I"),
        ("I", "subject", "I"),
        ("him", "object", "he"),
        ("They", "subject", "they"),
        ("us", "object", "we"),
        ("we", "subject", "we"),
        ("them", "object", "they"),
        ("Thou", "subject", "thou"),
        ("he", "subject", "he"),
        ("thee", "object", "thou"),
        # "i" in lower case is not the pronoun; "her" and "You" are in no pair
        ("I", "subject", "I"),
    ]
    assert all(row.work == WORK.title for row in rows)


def test_a_row_hides_one_word_and_keeps_the_rest_of_its_line(rows) -> None:
    row = rows[1]  # "I" in "Give me thy hand; I will tell him."
    assert row.words == ("Give", "me", "thy", "hand", ";", "I", "will", "tell", "him", ".")
    assert row.context() == ["Give", "me", "thy", "hand", ";", "will", "tell", "him", "."]
    assert row.neighbours() == (";", "will")
    assert rows[0].neighbours() == ("Give", "thy")
    assert rows[-1].neighbours() == ("and", ".")
    first = HiddenPronoun("w", ("I", "go"), 0, 0, 0)
    assert first.neighbours() == ("", "go")


def test_balanced_keeps_as_many_subjects_as_objects_of_each_pair(rows) -> None:
    kept = balanced(rows, per_pair_and_case=5, seed=0)
    counts = Counter((row.pair, row.label) for row in kept)
    for pair in range(len(PAIRS)):
        assert counts[pair, 0] == counts[pair, 1]
    # he/him: one of each; I/me: one "me" against two "I"; thou/thee: one of each
    assert counts[0, 0] == 1 and counts[1, 0] == 1 and counts[4, 0] == 1
    assert [rows.index(row) for row in kept] == sorted(rows.index(row) for row in kept)
    assert balanced(rows, 5, seed=0) == kept
    with pytest.raises(ArgumentError, match="per_pair_and_case"):
        balanced(rows, 0)
    with pytest.raises(ArgumentError, match=r"type\(rows\)"):
        balanced(["a line"], 3)


def test_the_gap_is_one_mask_piece_between_the_pieces_around_it(rows) -> None:
    tokenizer = data.bpe_tokenizer(512)
    encoded = encode_gaps(rows, tokenizer, 32)
    gap = int(encoded.gap[1])
    ids = encoded.ids[1][: int(encoded.attention_mask[1].sum())].tolist()
    assert ids[0] == tokenizer.cls_id and ids[gap] == tokenizer.mask_id
    assert ids.count(tokenizer.mask_id) == 1
    assert tokenizer.decode(ids[1:gap]) == "Give me thy hand;"
    assert tokenizer.decode(ids[gap + 1 :]) == " will tell him."
    assert encoded.labels.tolist() == [row.label for row in rows]
    assert (encoded.ids[encoded.attention_mask == 0] == tokenizer.pad_id).all()


def test_a_long_line_is_cut_around_the_gap(rows) -> None:
    tokenizer = data.bpe_tokenizer(512)
    long = HiddenPronoun("w", tuple(["word"] * 40 + ["me"] + ["word"] * 40), 40, 0, 1)
    encoded = encode_gaps([long], tokenizer, 12)
    assert encoded.attention_mask.sum() == 12
    gap = int(encoded.gap[0])
    assert encoded.ids[0, gap] == tokenizer.mask_id
    assert gap - 1 == 5 and 12 - gap - 1 == 5  # the room shared on both sides
    at_end = HiddenPronoun("w", tuple(["word"] * 40 + ["me"]), 40, 0, 1)
    encoded = encode_gaps([at_end], tokenizer, 12)
    assert int(encoded.gap[0]) == 11  # nothing after: all the room before it


def test_the_real_plays_give_thousands_of_lines_of_every_form() -> None:
    found = hidden_pronouns("val")
    counts = Counter((row.pair, row.label) for row in found)
    assert len(counts) == 2 * len(PAIRS) and min(counts.values()) > 200
    assert {row.pronoun.lower() for row in found} == {
        form.lower() for pair in PAIRS for form in pair
    }
    assert all(row.words[row.position] == row.pronoun for row in found[:100])
    assert isinstance(encode_gaps(found[:4], data.bpe_tokenizer(512), 32).ids, torch.Tensor)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ArgumentError, match="max_tokens"):
        encode_gaps([], data.bpe_tokenizer(512), 2)
    with pytest.raises(ArgumentError, match=r"type\(tokenizer\)"):
        encode_gaps([], "a tokenizer", 8)
