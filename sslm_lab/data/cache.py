"""Where cached data lives, and the two habits that keep a cache honest.

Every file the lab downloads or derives (the Shakespeare texts, trained tokenizers)
lands under `data_dir()`. Files are checked by sha256 before they are trusted, and
written through `sslm_lab.files.atomic_write_bytes`, so a crash or two processes
writing at once never leave a half-written file behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_DIR_ENV_VAR = "SSLM_DATA_DIR"

# sslm_lab/data/cache.py -> sslm_lab/ -> the folder that holds the package.
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def project_folder(env_var: str, name: str) -> Path:
    """A folder of the lab's own, created on demand: `$env_var` if set; else `name/` in the
    source checkout (the package's parent folder holds pyproject.toml); else
    `~/.cache/sslm_lab/name` for an installed package."""
    override = os.environ.get(env_var)
    if override:
        directory = Path(override).expanduser()
    elif (_PACKAGE_PARENT / "pyproject.toml").is_file():
        directory = _PACKAGE_PARENT / name
    else:
        directory = Path.home() / ".cache" / "sslm_lab" / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def data_dir() -> Path:
    """The folder for cached data: `$SSLM_DATA_DIR`, else the checkout's `data/`, else
    `~/.cache/sslm_lab/data` (see `project_folder`)."""
    return project_folder(DATA_DIR_ENV_VAR, "data")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
