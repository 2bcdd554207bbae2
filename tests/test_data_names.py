"""Tests for sslm_lab.data.names: the character-name tagging task and its scoring."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.data import names
from sslm_lab.data.names import (
    bio_tags,
    capitalisation_tags,
    character_names,
    entity_f1,
    proper_nouns,
    tagged_speeches,
    words,
)
from sslm_lab.data.shakespeare import works_in_split

PLAY = """THE TRAGEDY OF NOTHING

ACT I. SCENE I.

HAMLET.
Good Horatio, a word with my lord.
Where is the king? Ask Horatio.

Hor.
My lord Hamlet, the King is gone.
I saw Horatio's horse, and Hamlet's.

FIRST CITIZEN.
Sir Toby Belch is here, and the citizen too.
I told Sir Toby Belch so, and Hamlet.

KING HENRY.
Ho, Henry calls. Where is good Henry? The king, Henry.

[Enter Horatio and Toby Belch]
"""


def test_words_keeps_apostrophes_and_hyphens_and_splits_off_marks() -> None:
    assert words("Horatio's ague-cheek, o'er!") == ["Horatio's", "ague-cheek", ",", "o'er", "!"]


def test_proper_nouns_are_always_capitalised_inside_a_sentence() -> None:
    dialogue = ["Good Horatio, a word with my Lord.\nMy lord, Horatio went.", "Ask Horatio."]
    found = proper_nouns(dialogue, min_uses=1)
    assert found == {"Horatio": 3}  # "Good" and "Ask" start sentences; "Lord" is also "lord"
    assert proper_nouns(dialogue, min_uses=4) == {}
    with pytest.raises(ValueError, match="min_uses"):
        proper_nouns(dialogue, min_uses=0)


def test_character_names_keep_names_drop_roles_and_expand_abbreviations() -> None:
    found = character_names(PLAY)
    # HAMLET; "Hor" abbreviates Horatio; FIRST CITIZEN is a role; KING HENRY gives Henry;
    # Sir Toby Belch never speaks, so is no character here
    assert found == {"Hamlet", "Horatio", "Henry"}


def test_bio_tags_join_consecutive_names_and_count_possessives() -> None:
    tokens = words("Sir Toby Belch met Hamlet's friend Horatio")
    tags = bio_tags(tokens, {"Toby", "Belch", "Hamlet", "Horatio"})
    assert tags == ["O", "B-PER", "I-PER", "O", "B-PER", "O", "B-PER"]


def test_capitalisation_baseline_skips_sentence_and_line_starts() -> None:
    tokens = words("Then Horatio came . Now Toby went") + words("And Maria")
    starts = [False] * 7 + [True, False]
    starts[0] = True
    assert capitalisation_tags(tokens, starts) == [
        "O", "B-PER", "O", "O", "O", "B-PER", "O", "O", "B-PER"
    ]  # fmt: skip
    assert capitalisation_tags(words("I saw God and Toby")) == ["O", "O", "O", "O", "B-PER"]
    with pytest.raises(ValueError, match="line_starts"):
        capitalisation_tags(tokens, starts[:3])


def test_entity_f1_scores_whole_spans() -> None:
    true = [["B-PER", "I-PER", "O", "B-PER"], ["O", "B-PER"]]
    assert entity_f1(true, true) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    # half a span is no span: 1 of 3 predicted spans right, 1 of 3 true spans found
    guess = [["B-PER", "O", "O", "O"], ["B-PER", "B-PER"]]
    scores = entity_f1(true, guess)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one tag per token"):
        entity_f1(true, [["O"], ["O", "O"]])


def test_tagged_speeches_of_unseen_plays_use_their_own_names() -> None:
    test_works = [w for w in works_in_split("test") if w.genre != "poetry"]
    rows = tagged_speeches("test", max_words=40)
    assert {row.work for row in rows} == {w.title for w in test_works}  # poems give none
    assert all(len(row.tokens) == len(row.tags) == len(row.line_starts) <= 40 for row in rows)
    assert all(row.line_starts[0] for row in rows)
    macbeth = [row for row in rows if row.work == "Macbeth"]
    tagged = {
        t for row in macbeth for t, tag in zip(row.tokens, row.tags, strict=True) if tag != "O"
    }
    assert {"Banquo", "Macduff", "Duncan"} <= {t.removesuffix("'s") for t in tagged}
    assert "Othello" not in tagged  # another play's hero is not Macbeth's character
    share = sum(tag == "B-PER" for row in rows for tag in row.tags) / sum(
        len(row.tokens) for row in rows
    )
    assert 0.003 < share < 0.03  # names are rare: about 1 word in 110 on this split
    train_titles = {w.title for w in works_in_split("train")}
    assert not train_titles & {row.work for row in rows}
    with pytest.raises(ValueError, match="max_words"):
        tagged_speeches("test", max_words=0)


def test_the_tags_are_the_bio_scheme_of_one_type() -> None:
    assert names.TAGS == ("O", "B-PER", "I-PER")


def test_encode_tagged_labels_each_words_first_piece_and_reads_back() -> None:
    from sslm_lab.data import bpe_tokenizer
    from sslm_lab.data.names import IGNORE, encode_tagged, word_tags

    tokenizer = bpe_tokenizer(512)
    rows = [r for r in tagged_speeches("test", max_words=30) if "B-PER" in r.tags][:20]
    encoded = encode_tagged(rows, tokenizer, max_tokens=48)
    assert encoded.ids.shape == encoded.labels.shape == (20, 48)
    assert (encoded.ids[:, 0] == tokenizer.cls_id).all() and (encoded.labels[:, 0] == IGNORE).all()
    assert ((encoded.ids == tokenizer.pad_id) == (encoded.attention_mask == 0)).all()
    back = word_tags(encoded.labels.clamp(min=0), encoded.labels, encoded.words_kept)
    for index, (row, tags, kept) in enumerate(zip(rows, back, encoded.words_kept, strict=True)):
        assert tags == row.tags[:kept]  # the labels are the tags, one per word kept
        pieces = encoded.ids[index][encoded.attention_mask[index] == 1][1:]  # after [CLS]
        spaced = "".join(
            t if i == 0 or not t[0].isalnum() else " " + t for i, t in enumerate(row.tokens[:kept])
        )
        assert tokenizer.decode(pieces) == spaced  # the words, spaced as in running text
    assert sum(encoded.words_kept) < sum(len(r.tokens) for r in rows)  # 48 pieces cut some
    short = encode_tagged(rows[:1], tokenizer, max_tokens=4)
    assert 1 <= short.words_kept[0] <= 3 and int(short.attention_mask.sum()) <= 4
    with pytest.raises(ValueError, match="max_tokens"):
        encode_tagged(rows, tokenizer, max_tokens=1)
    predicted = torch.zeros_like(encoded.labels)
    predicted[0, 1] = 2  # I-PER after nothing: read as the start of an entity
    assert word_tags(predicted, encoded.labels, encoded.words_kept)[0][0] == "B-PER"
    with pytest.raises(ValueError, match="must match"):
        word_tags(predicted[:, :5], encoded.labels, encoded.words_kept)
