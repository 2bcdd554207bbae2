"""Character and byte-level BPE tokenizers: exact round trips, specials, validation, cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sslm_lab.data import shakespeare, tokenizers
from sslm_lab.data.shakespeare import Work, corpus_text, read_work, works_in_split
from sslm_lab.data.tokenizers import (
    SPECIAL_TOKENS,
    BPETokenizer,
    CharTokenizer,
    bpe_tokenizer,
    char_tokenizer,
    check_bpe_vocab_size,
)

TEST_BPE_VOCAB_SIZE = 512  # small: trains in well under a second, cached in data/tokenizers


@pytest.fixture(scope="module")
def chars(shakespeare_works: list[Work]) -> CharTokenizer:
    return char_tokenizer()


@pytest.fixture(scope="module")
def bpe(shakespeare_works: list[Work]) -> BPETokenizer:
    return bpe_tokenizer(TEST_BPE_VOCAB_SIZE)


def test_char_round_trip_is_exact_on_the_whole_corpus(chars: CharTokenizer) -> None:
    text = corpus_text()
    ids = chars.encode(text)
    assert len(ids) == len(text)
    assert chars.decode(ids) == text
    assert chars.decode(torch.tensor(ids[:1000])) == text[:1000]


def test_char_vocabulary_is_sorted_characters_then_specials(chars: CharTokenizer) -> None:
    assert chars.characters == sorted(set(corpus_text()))
    assert len(chars.characters) == 84
    assert chars.vocab_size == 84 + len(SPECIAL_TOKENS)
    assert chars.special_ids == {token: 84 + k for k, token in enumerate(SPECIAL_TOKENS)}
    assert (chars.pad_id, chars.mask_id) == (84, 85)
    assert chars.id_to_token(chars.mask_id) == "[MASK]"
    assert chars.id_to_token(0) == "\n"
    assert chars.tokens("Ay.") == ["A", "y", "."]


def test_char_unknown_character_is_named_with_its_position(chars: CharTokenizer) -> None:
    with pytest.raises(ValueError, match=r"character 'é' \(U\+00E9\) at position 3 .*errors='unk'"):
        chars.encode("caf\u00e9")
    assert chars.encode("caf\u00e9", errors="unk")[-1] == chars.unk_id
    with pytest.raises(
        ValueError, match=r"errors='ignore' \(str\) is not allowed; allowed: one of strict, unk"
    ):
        chars.encode("x", errors="ignore")


def test_char_decode_specials_and_bad_ids(chars: CharTokenizer) -> None:
    ids = [chars.cls_id, *chars.encode("O!"), chars.sep_id]
    assert chars.decode(ids) == "[CLS]O![SEP]"
    assert chars.decode(ids, skip_special_tokens=True) == "O!"
    with pytest.raises(ValueError, match="token id 89 is out of range; ids run from 0 to 88"):
        chars.decode([0, 89])
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        chars.id_to_token(-1)


def test_char_save_and_load(chars: CharTokenizer, tmp_path: Path) -> None:
    path = chars.save(tmp_path / "chars.json")
    loaded = CharTokenizer.load(path)
    assert loaded.characters == chars.characters
    assert loaded.special_ids == chars.special_ids
    path.write_text('{"type": "bpe"}')
    with pytest.raises(ValueError, match="is not a character tokenizer"):
        CharTokenizer.load(path)


def test_bpe_round_trip_is_exact_on_every_work(
    bpe: BPETokenizer, shakespeare_works: list[Work]
) -> None:
    texts = [read_work(work) for work in shakespeare_works]
    encoded = bpe.encode_batch(texts)
    for work, text, ids in zip(shakespeare_works, texts, encoded, strict=True):
        assert bpe.decode(ids) == text, work.file
    assert sum(map(len, encoded)) < 0.6 * sum(map(len, texts))  # it does compress


def test_bpe_specials_and_readable_pieces(bpe: BPETokenizer) -> None:
    assert bpe.vocab_size == TEST_BPE_VOCAB_SIZE
    assert set(bpe.special_ids) == set(SPECIAL_TOKENS)
    assert len(set(bpe.special_ids.values())) == len(SPECIAL_TOKENS)
    assert bpe.id_to_token(bpe.mask_id) == "[MASK]"
    text = "To be, or not to be:\n  that is the question."
    pieces = bpe.tokens(text)
    assert "".join(pieces) == text
    assert " the" in pieces  # the space shows as a space, not as the byte alias "Ġ"
    assert bpe.encode("[MASK]") == [bpe.mask_id]
    assert bpe.decode([bpe.cls_id, *bpe.encode("Ay")], skip_special_tokens=True) == "Ay"
    with pytest.raises(ValueError, match=f"token id {TEST_BPE_VOCAB_SIZE} is out of range"):
        bpe.decode([TEST_BPE_VOCAB_SIZE])


def test_bpe_encodes_text_it_never_saw(bpe: BPETokenizer) -> None:
    text = "Ünïcödé ✓ and tabs\tand\r\nCRLF"
    assert bpe.decode(bpe.encode(text)) == text


@pytest.mark.parametrize("bad", [100, 261, 65537, 512.0, "512", True])
def test_bad_bpe_vocab_size_is_rejected(bad: object) -> None:
    with pytest.raises(
        ValueError,
        match=rf"vocab_size={bad!r} \(.*\) is not allowed; allowed: an integer in \[262, 65536\]",
    ):
        bpe_tokenizer(bad)  # type: ignore[arg-type]


def test_bpe_vocab_size_bounds_are_allowed() -> None:
    assert check_bpe_vocab_size(262) == 262
    assert check_bpe_vocab_size(65536) == 65536


def test_bpe_cache_is_reused_without_training(
    bpe: BPETokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached tokenizer should have been loaded")

    monkeypatch.setattr(tokenizers, "train_bpe", no_training)
    again = bpe_tokenizer(TEST_BPE_VOCAB_SIZE)
    assert again.backend.to_str() == bpe.backend.to_str()
    path = tokenizers.bpe_cache_path(TEST_BPE_VOCAB_SIZE)
    assert path.parent == shakespeare.data_dir() / "tokenizers"
    assert path.name.startswith("bpe-") and path.name.endswith(f"-v{TEST_BPE_VOCAB_SIZE}.json")


def test_bpe_trains_on_the_training_works_only(
    copied_data_dir: Path, offline: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_train = tokenizers.train_bpe

    def recording_train(texts: list[str], vocab_size: int):
        seen.append(list(texts))
        return real_train(texts, vocab_size)

    monkeypatch.setattr(tokenizers, "train_bpe", recording_train)
    tokenizer = bpe_tokenizer(300)
    assert seen == [[read_work(work) for work in works_in_split("train")]]
    assert tokenizer.vocab_size == 300
    assert tokenizers.bpe_cache_path(300).is_file()
    assert bpe_tokenizer(300).vocab_size == 300  # second call: from the cache
    assert len(seen) == 1


def test_a_corrupt_cached_bpe_file_is_retrained(copied_data_dir: Path, offline: list[Path]) -> None:
    path = tokenizers.bpe_cache_path(300)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ truncated")
    with pytest.warns(UserWarning, match="cannot load the cached tokenizer"):
        tokenizer = bpe_tokenizer(300)
    assert tokenizer.vocab_size == 300
    assert BPETokenizer.load(path).vocab_size == 300


def test_hf_wrapper_matches(bpe: BPETokenizer) -> None:
    text = "Friends, Romans, countrymen,\nlend me your ears;"
    fast = bpe.hf
    assert fast(text)["input_ids"] == bpe.encode(text)
    assert fast.decode(bpe.encode(text)) == text
    assert (fast.mask_token_id, fast.pad_token_id) == (bpe.mask_id, bpe.pad_id)
    assert len(fast) == bpe.vocab_size
