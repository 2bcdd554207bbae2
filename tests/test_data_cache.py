"""data_dir() resolution and the sha256 helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sslm_lab import files
from sslm_lab.data import cache


def test_data_dir_follows_the_environment_variable_and_creates_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "nested" / "cache"
    monkeypatch.setenv(cache.DATA_DIR_ENV_VAR, str(target))
    assert cache.data_dir() == target
    assert target.is_dir()


def test_data_dir_is_the_checkout_data_folder_without_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(cache.DATA_DIR_ENV_VAR, raising=False)
    repo = Path(cache.__file__).resolve().parents[2]
    assert (repo / "pyproject.toml").is_file()
    assert cache.data_dir() == repo / "data"


def test_data_dir_falls_back_to_the_user_cache_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cache.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setattr(cache, "_PACKAGE_PARENT", tmp_path / "site-packages")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.data_dir() == tmp_path / "home" / ".cache" / "sslm_lab" / "data"


def test_sha256_helpers_agree_with_hashlib(tmp_path: Path) -> None:
    data = b"To be, or not to be\n" * 100_000  # larger than one 1 MiB read
    path = files.atomic_write_bytes(tmp_path / "sub" / "file.bin", data)
    expected = hashlib.sha256(data).hexdigest()
    assert cache.sha256_file(path) == expected
    assert cache.sha256_bytes(data) == expected
