"""sslm_lab.data.names.encode_tagged_wordpiece: word tags on MiniLM's WordPiece pieces."""

from __future__ import annotations

import pytest

from sslm_lab.data import bpe_tokenizer
from sslm_lab.data.names import (
    IGNORE,
    TAGS,
    TaggedSpeech,
    encode_tagged_wordpiece,
    tagged_speeches,
    word_tags,
)
from sslm_lab.interop import load_minilm


@pytest.fixture(scope="module")
def wordpiece():
    return load_minilm()[0]


def speech(tokens: list[str], tags: list[str]) -> TaggedSpeech:
    return TaggedSpeech("a play", "A", tokens, tags, [i == 0 for i in range(len(tokens))])


def test_a_names_first_piece_carries_its_tag_and_later_pieces_are_ignored(wordpiece) -> None:
    row = speech(["Good", "Benedick", ",", "hail"], ["O", "B-PER", "O", "O"])
    pieces = wordpiece.tokenize("Benedick")
    assert len(pieces) >= 2, pieces  # the test needs a name cut into several pieces
    encoded = encode_tagged_wordpiece([row], wordpiece, max_tokens=16)
    n = 2 + len(wordpiece.tokenize("Good Benedick , hail"))  # [CLS] pieces [SEP]
    ids = encoded.ids[0, :n].tolist()
    assert ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
    assert int(encoded.attention_mask[0].sum()) == n
    expected = [IGNORE, TAGS.index("O"), TAGS.index("B-PER")]
    expected += [IGNORE] * (len(pieces) - 1) + [TAGS.index("O"), TAGS.index("O"), IGNORE]
    assert encoded.labels[0, :n].tolist() == expected
    assert (encoded.labels[0, n:] == IGNORE).all() and encoded.words_kept == [4]


def test_a_cut_word_is_dropped_whole_and_tags_read_back(wordpiece) -> None:
    rows = [r for r in tagged_speeches("test", max_words=40) if "B-PER" in r.tags][:30]
    encoded = encode_tagged_wordpiece(rows, wordpiece, max_tokens=24)
    assert encoded.ids.shape == (30, 24)
    assert sum(encoded.words_kept) < sum(len(r.tokens) for r in rows)  # 24 pieces cut some
    back = word_tags(encoded.labels.clamp(min=0), encoded.labels, encoded.words_kept)
    for index, (row, tags, kept) in enumerate(zip(rows, back, encoded.words_kept, strict=True)):
        assert tags == row.tags[:kept]
        real = encoded.ids[index][encoded.attention_mask[index] == 1].tolist()
        assert real[-1] == wordpiece.sep_token_id and len(real) <= 24
        text = wordpiece.decode(real[1:-1]).replace(" ", "")
        assert text == "".join(row.tokens[:kept]).lower().replace(" ", "")  # uncased, whole words


def test_bad_input_is_refused_with_its_name(wordpiece) -> None:
    row = speech(["Hail"], ["O"])
    with pytest.raises(ValueError, match="max_tokens"):
        encode_tagged_wordpiece([row], wordpiece, max_tokens=2)
    with pytest.raises(ValueError, match="fast tokenizer"):
        encode_tagged_wordpiece([row], bpe_tokenizer(512), max_tokens=8)
