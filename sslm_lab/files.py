"""Writing files so that a crash never leaves half of one, and checking weights before loading.

Caches, checkpoints, saved models and results tables are all written the same way: the
new content goes to a temporary name in the same folder and is renamed into place with
`os.replace`, which is atomic on POSIX. A reader sees the old file or the new one, never
a mixture, even if the writing process is killed halfway.

    atomic_write_text(path, text)        one file
    with staged_folder(final) as staging: write several files into `staging`; on
                                         success it replaces `final` whole
    weight_mismatches(path, model)       names and shapes a safetensors file does not
                                         share with a model, read from the header only
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import safe_open
from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint or saved model is missing, unreadable, or does not fit the model."""


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file to disk: the page cache survives a killed process, not a power cut."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates owner-only files; a written file is as readable as any other.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` exactly as given (no newline translation)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside `final`; when the block ends without an error, it
    replaces `final` (which may exist) as a whole. On an error `final` is left untouched.

        with staged_folder(folder) as staging:
            save_model(model, str(staging / "model.safetensors"))
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():  # swap the old folder out first, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only still there after an error


def weight_mismatches(path: str | os.PathLike, model: nn.Module) -> list[str]:
    """Differences in names and shapes between a safetensors file and `model` (empty: fits).

    Reads only the file's header, so a large checkpoint is checked without loading it.
    """
    model_state = model.state_dict()
    expected = {name: tuple(tensor.shape) for name, tensor in model_state.items()}
    with safe_open(str(path), framework="pt") as handle:
        stored = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    problems = [
        f"{name} has shape {stored[name]} in the checkpoint but {expected[name]} in the model"
        for name in stored
        if name in expected and stored[name] != expected[name]
    ]
    problems += [
        f"{name} is in the checkpoint but not in the model"
        for name in stored
        if name not in expected
    ]
    # Tied weights are stored once, so a missing name is only a problem if no stored
    # tensor shares its memory (e.g. a language-model head tied to the embedding).
    stored_memory = {model_state[name].data_ptr() for name in stored if name in expected}
    problems += [
        f"{name} is in the model but not in the checkpoint"
        for name, tensor in model_state.items()
        if name not in stored and tensor.data_ptr() not in stored_memory
    ]
    return problems
