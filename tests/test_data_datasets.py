"""LMBlocks, LinePairs (+ pad_batch) and LabelledPassages: shapes, determinism, validation."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader

from sslm_lab.checks import ArgumentError
from sslm_lab.data.datasets import LabelledPassages, LinePairs, LMBlocks, pad_batch
from sslm_lab.data.shakespeare import GENRES, Work, read_work, works_in_split
from sslm_lab.data.tokenizers import CharTokenizer, char_tokenizer

IDS = torch.arange(1000)


def test_lm_blocks_random_offsets_are_seeded_windows() -> None:
    blocks = LMBlocks(IDS, 16, random_offsets=True, num_blocks=50, seed=3)
    assert len(blocks) == 50
    item = blocks[7]
    assert item.shape == (17,) and item.dtype == torch.long
    # A window of consecutive ids: input item[:-1], target item[1:] is the next token.
    assert torch.equal(item[1:], item[:-1] + 1)
    again = LMBlocks(IDS, 16, random_offsets=True, num_blocks=50, seed=3)
    assert all(torch.equal(blocks[i], again[i]) for i in range(50))
    other = LMBlocks(IDS, 16, random_offsets=True, num_blocks=50, seed=4)
    assert not all(torch.equal(blocks[i], other[i]) for i in range(50))
    starts = torch.stack([blocks[i][0] for i in range(50)])
    assert starts.min() >= 0 and starts.max() <= 1000 - 17


def test_lm_blocks_reach_the_last_token() -> None:
    blocks = LMBlocks(torch.arange(10), 8, random_offsets=True, num_blocks=200)
    assert {int(blocks[i][-1]) for i in range(200)} == {8, 9}


def test_lm_blocks_evaluation_offsets_are_consecutive() -> None:
    blocks = LMBlocks(IDS, 100, random_offsets=False)
    assert len(blocks) == 9  # (1000 - 1) // 100
    assert [int(blocks[i][0]) for i in range(9)] == list(range(0, 900, 100))
    targets = torch.cat([blocks[i][1:] for i in range(9)])
    assert torch.equal(targets, torch.arange(1, 901))  # every target once, in order
    assert len(LMBlocks(IDS, 100, random_offsets=False, num_blocks=3)) == 3
    with pytest.raises(ValueError, match="num_blocks=10 is more than the 9 non-overlapping blocks"):
        LMBlocks(IDS, 100, random_offsets=False, num_blocks=10)


def test_lm_blocks_items_are_copies() -> None:
    ids = torch.arange(100)
    blocks = LMBlocks(ids, 10, random_offsets=False)
    blocks[0].zero_()
    assert torch.equal(ids, torch.arange(100))


@pytest.mark.parametrize("block_size", [0, -5, 1000, 5000, 2.5])
def test_lm_blocks_bad_block_size(block_size: object) -> None:
    with pytest.raises(
        ValueError, match=rf"block_size={block_size!r} \(.*\) is not allowed.*len\(ids\) = 1000"
    ):
        LMBlocks(IDS, block_size, random_offsets=True)  # type: ignore[arg-type]


def test_lm_blocks_index_and_shape_checks() -> None:
    blocks = LMBlocks(IDS, 10, random_offsets=False)
    assert torch.equal(blocks[-1], blocks[len(blocks) - 1])
    with pytest.raises(IndexError, match="out of range"):
        blocks[len(blocks)]
    with pytest.raises(ValueError, match="1-D"):
        LMBlocks(IDS.view(10, 100), 10, random_offsets=False)
    with pytest.raises(
        ValueError, match=r"num_blocks=0 \(int\) is not allowed; allowed: an integer >= 1"
    ):
        LMBlocks(IDS, 10, random_offsets=True, num_blocks=0)


def test_lm_blocks_batch_through_a_data_loader() -> None:
    loader = DataLoader(LMBlocks(IDS, 32, random_offsets=True, num_blocks=20), batch_size=8)
    batch = next(iter(loader))
    assert batch.shape == (8, 33)


TEXT = "First line\n\n  Second line  \nThird\nFourth\n\nFifth\nSixth\nSeventh\nEighth\n"


@pytest.fixture(scope="module")
def letters() -> CharTokenizer:
    return CharTokenizer.from_text(TEXT)


def test_line_pairs_are_consecutive_non_empty_lines(letters: CharTokenizer) -> None:
    pairs = LinePairs(TEXT, letters)
    assert len(pairs) == 7
    assert pairs.pair(0) == ("First line", "Second line", True)
    assert pairs.pair(1) == ("Second line", "Third", True)
    item = pairs[2]
    expected = [
        letters.cls_id,
        *letters.encode("Third"),
        letters.sep_id,
        *letters.encode("Fourth"),
        letters.sep_id,
    ]
    assert item["input_ids"].tolist() == expected
    assert item["token_type_ids"].tolist() == [0] * 7 + [1] * 7
    assert item["is_next"].item() == 1


def test_line_pairs_negatives_are_seeded_and_wrong(shakespeare_works: list[Work]) -> None:
    text = read_work(next(w for w in shakespeare_works if w.stem == "macbeth_gut"))
    tokenizer = char_tokenizer()
    pairs = LinePairs(text, tokenizer, negatives=True, seed=0)
    labels = pairs.is_next
    assert 0.45 < labels.float().mean().item() < 0.55
    for index in range(0, len(pairs), 37):
        first, second, is_next = pairs.pair(index)
        assert first == pairs.lines[index]
        assert (second == pairs.lines[index + 1]) == is_next
    again = LinePairs(text, tokenizer, negatives=True, seed=0)
    assert torch.equal(again.second_index, pairs.second_index)
    other = LinePairs(text, tokenizer, negatives=True, seed=1)
    assert not torch.equal(other.is_next, pairs.is_next)


def test_line_pairs_truncate_the_longer_line(letters: CharTokenizer) -> None:
    pairs = LinePairs(TEXT, letters, max_length=9)
    item = pairs[0]  # "First line" (10) + "Second line" (11) cut to 3 + 3
    assert len(item["input_ids"]) == 9
    assert letters.decode(item["input_ids"]) == "[CLS]Fir[SEP]Sec[SEP]"
    with pytest.raises(
        ValueError,
        match=r"max_length=4 \(int\) is not allowed; allowed: an integer >= 5\. 3 special",
    ):
        LinePairs(TEXT, letters, max_length=4)
    with pytest.raises(ValueError, match="a pair needs at least 2"):
        LinePairs("only one line\n\n", letters)


def test_pad_batch_pads_and_masks(letters: CharTokenizer) -> None:
    pairs = LinePairs(TEXT, letters)
    loader = DataLoader(pairs, batch_size=3, collate_fn=partial(pad_batch, pad_id=letters.pad_id))
    batch = next(iter(loader))
    lengths = [len(pairs[i]["input_ids"]) for i in range(3)]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert batch["is_next"].shape == (3,)
    shortest = lengths.index(min(lengths))
    assert (batch["input_ids"][shortest, min(lengths) :] == letters.pad_id).all()
    assert (batch["token_type_ids"][shortest, min(lengths) :] == 0).all()
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([], pad_id=0)


@pytest.fixture(scope="module")
def val_passages(shakespeare_works: list[Work]) -> LabelledPassages:
    return LabelledPassages("val", char_tokenizer(), 256, max_per_work=20)


def test_labelled_passages_shapes_and_labels(val_passages: LabelledPassages) -> None:
    ids, label = val_passages[0]
    assert ids.shape == (256,) and ids.dtype == torch.long
    assert label.dtype == torch.long and label.shape == ()
    assert len(val_passages) == 6 * 20  # every val work has at least 20 × 256 characters
    assert val_passages.class_counts() == {"comedy": 40, "history": 20, "tragedy": 40, "poetry": 20}
    for index in range(0, len(val_passages), 13):
        work = val_passages.work_of(index)
        assert work in works_in_split("val")
        assert int(val_passages[index][1]) == GENRES.index(work.genre)


def test_labelled_passages_in_chunks_keep_every_token_behind_a_cls(
    val_passages: LabelledPassages,
) -> None:
    chunked = val_passages.chunked(4, cls_id=-1)
    assert chunked.shape == (len(val_passages), 4, 1 + 64)
    assert (chunked[:, :, 0] == -1).all()
    assert torch.equal(chunked[:, :, 1:].reshape(len(val_passages), 256), val_passages.passages)
    with pytest.raises(ValueError, match="chunks: got 3; allowed: a divisor of the passages' 256"):
        val_passages.chunked(3, cls_id=-1)


def test_labelled_passages_are_cut_from_their_work(val_passages: LabelledPassages) -> None:
    tokenizer = char_tokenizer()
    for index in (0, 25, len(val_passages) - 1):
        text = tokenizer.decode(val_passages[index][0])
        assert text in read_work(val_passages.work_of(index))
    first_work = val_passages.works[0]
    assert tokenizer.decode(val_passages[0][0]) == read_work(first_work)[:256]


def test_labelled_passages_without_a_cap_keep_every_full_passage(
    shakespeare_works: list[Work],
) -> None:
    passages = LabelledPassages("test", char_tokenizer(), 4096, max_per_work=None)
    expected = sum(w.chars // 4096 for w in works_in_split("test"))
    assert len(passages) == expected


def test_labelled_passages_of_the_plays_only(shakespeare_works: list[Work]) -> None:
    plays = ("comedy", "history", "tragedy")
    passages = LabelledPassages("val", char_tokenizer(), 256, max_per_work=20, genres=plays)
    assert passages.class_counts() == {"comedy": 40, "history": 20, "tragedy": 40}
    assert all(work.genre != "poetry" for work in passages.works)
    for index in range(0, len(passages), 11):
        assert plays[int(passages[index][1])] == passages.work_of(index).genre
    for bad in ((), ("comedy", "comedy"), ("comedy", "epic")):
        with pytest.raises(ValueError, match="genres: got"):
            LabelledPassages("val", char_tokenizer(), 256, genres=bad)


def test_labelled_passages_validation(shakespeare_works: list[Work]) -> None:
    with pytest.raises(
        ValueError, match=r"n_tokens=0 \(int\) is not allowed; allowed: an integer >= 1"
    ):
        LabelledPassages("val", char_tokenizer(), 0)
    with pytest.raises(ValueError, match="split='dev' is not a known split"):
        LabelledPassages("dev", char_tokenizer(), 64)
    with pytest.raises(ValueError, match="no work in split 'val' is 1000000 tokens long"):
        LabelledPassages("val", char_tokenizer(), 1_000_000)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.timeout(20)
def test_negatives_need_two_different_lines_instead_of_drawing_forever(
    letters: CharTokenizer,
) -> None:
    with pytest.raises(ArgumentError, match=r"text=\"5 copies of 'Third'\".*2 different lines"):
        LinePairs("Third\n" * 5, letters, negatives=True)
    pairs = LinePairs("Third\n" * 5, letters)  # without negatives the pairs are fine
    assert len(pairs) == 4 and bool(pairs.is_next.all())


@pytest.mark.timeout(20)
def test_a_negative_is_found_even_when_one_line_fills_nearly_all_the_text(
    letters: CharTokenizer,
) -> None:
    # 300 copies of one line and one other: a random draw hits the other line 1 time in
    # 301, so most negatives run out of redraws and are drawn among the other lines.
    text = "Third\n" * 150 + "Fifth\n" + "Third\n" * 150
    pairs = LinePairs(text, letters, negatives=True, seed=0)
    replaced = (pairs.is_next == 0).nonzero().flatten().tolist()
    assert len(replaced) > 100
    for index in replaced:
        first, second, is_next = pairs.pair(index)
        assert not is_next and second != pairs.lines[index + 1]
    again = LinePairs(text, letters, negatives=True, seed=0)
    assert torch.equal(again.second_index, pairs.second_index)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: LinePairs(TEXT, t, negatives="yes"), r"negatives='yes' \(str\)"),
        (lambda t: LinePairs(TEXT, t, negatives="no"), r"negatives='no' \(str\)"),
        (lambda t: LinePairs(TEXT, t, negatives=1), r"negatives=1 \(int\)"),
        (lambda t: LinePairs(TEXT.encode(), t), r"type\(text\)=<class 'bytes'>"),
        (lambda t: LinePairs(TEXT.splitlines(), t), r"type\(text\)=<class 'list'>"),
        (lambda t: LinePairs(TEXT, "char"), r"type\(tokenizer\)=<class 'str'>"),
        (lambda t: LinePairs(TEXT, t, negatives=True, seed=-1), r"seed=-1 "),
        (lambda t: LinePairs(TEXT, t, negatives=True, seed=1.5), r"seed=1.5 "),
        (lambda t: LMBlocks(IDS, 10, random_offsets="no"), r"random_offsets='no' \(str\)"),
        (lambda t: LMBlocks(IDS, 10, random_offsets=1), r"random_offsets=1 \(int\)"),
        (lambda t: LMBlocks(IDS, 10, random_offsets=None), r"random_offsets=None "),
        (lambda t: LMBlocks(IDS + 0.5, 10, random_offsets=False), r"ids.dtype=torch.float32 "),
        (lambda t: LMBlocks(IDS > 5, 10, random_offsets=False), r"ids.dtype=torch.bool "),
        (lambda t: LMBlocks(IDS - 500, 10, random_offsets=False), r"min\(ids\)=-500 "),
        (lambda t: LMBlocks("some text", 3, random_offsets=False), r"type\(ids\)=<class 'str'>"),
        (lambda t: LMBlocks([], 3, random_offsets=False), r"ids.shape=\(0,\) "),
        (lambda t: LMBlocks(IDS, 10, random_offsets=True, seed="a"), r"seed='a' "),
        (lambda t: LMBlocks(IDS, 10, random_offsets=True, seed=2**70), r"seed=\d+ "),
        (lambda t: pad_batch([{"ids": torch.arange(3)}], 0), r"items\[0\].keys\(\)=\['ids'\]"),
        (lambda t: pad_batch([torch.arange(3)], 0), r"type\(items\[0\]\)="),
        (lambda t: pad_batch({"input_ids": torch.arange(3)}, 0), r"type\(items\)=<class 'dict'>"),
        (lambda t: pad_batch([{"input_ids": [1, 2]}], 0), r"type\(items\[0\]\['input_ids'\]\)"),
        (lambda t: pad_batch([{"input_ids": torch.arange(3)}], "0"), r"pad_id='0' \(str\)"),
        (lambda t: pad_batch([{"input_ids": torch.arange(3)}], None), r"pad_id=None "),
        (
            lambda t: pad_batch([{"input_ids": torch.ones(2, 3, dtype=torch.long)}], 0),
            r"items\[0\]\['input_ids'\].dtype, .shape=\(torch.int64, \(2, 3\)\)",
        ),
        (
            lambda t: pad_batch(
                [{"input_ids": torch.arange(3), "token_type_ids": torch.ones(2)}], 0
            ),
            r"items\[0\]\['token_type_ids'\].shape=\(2,\) .*\(3,\)",
        ),
        (
            lambda t: pad_batch(
                [
                    {"input_ids": torch.arange(3), "x": torch.ones(3)},
                    {"input_ids": torch.arange(2)},
                ],
                0,
            ),
            r"items\[1\].keys\(\)=\['input_ids'\] .*\['input_ids', 'x'\]",
        ),
        (lambda t: LabelledPassages("val", "char", 64), r"type\(tokenizer\)=<class 'str'>"),
        (lambda t: LabelledPassages("val", t, 64, genres="comedy"), r"genres='comedy' \(str\)"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(letters: CharTokenizer, call, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        call(letters)
