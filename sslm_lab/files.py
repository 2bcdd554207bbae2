"""Writing files so that a crash never leaves half of one, and checking weights before loading.

Caches, checkpoints, saved models and results tables are all written the same way: the
new content goes to a temporary name in the same folder and is renamed into place with
`os.replace`, which is atomic on POSIX. A reader sees the old file or the new one, never
a mixture, even if the writing process is killed halfway.

    atomic_write_text(path, text)        one file
    with staged_folder(final) as staging: write several files into `staging`; on
                                         success it replaces `final` whole
    file_digest(path)                    (size, sha256) of a file, read in large pieces
    weight_mismatches(path, model)       names and shapes a safetensors file does not
                                         share with a model, read from the header only

New files and folders get the mode the process umask gives them, as `open` and `mkdir`
would: `tempfile.mkstemp` and `mkdtemp` create owner-only ones, and that mode would
survive the rename into place.

Every fsync, rename, link, unlink, rmdir, mkdir and file write made here (and those the
checkpoint code announces with `disk_operation`) is reported to `disk_operation_hook`
first. Nothing is installed in normal use; the crash tests install a function that kills
the process at the N-th call, which is how they show that a kill at any of these calls
leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import safe_open
from torch import nn

# Called as hook(operation, path) before each disk operation; see the module docstring.
disk_operation_hook: Callable[[str, Path], None] | None = None

# Large enough that hashing, not the Python loop around it, sets the speed.
_DIGEST_CHUNK = 4 << 20


class CheckpointError(RuntimeError):
    """A checkpoint or saved model is missing, unreadable, or does not fit the model."""


def disk_operation(operation: str, path: str | os.PathLike) -> None:
    """Report an operation to `disk_operation_hook`, for writes this module does not make
    itself (safetensors and torch.save open their files on their own)."""
    hook = disk_operation_hook
    if hook is not None:
        hook(operation, Path(path))


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file to disk: the page cache survives a killed process, not a power cut."""
    disk_operation("fsync", path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(path: str | os.PathLike) -> None:
    """Flush a folder's entries, so that a rename or a new file in it survives a power cut."""
    disk_operation("fsync", path)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # folders cannot be opened on every platform (Windows)
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some filesystems refuse fsync on a folder; the rename is atomic anyway
        pass
    finally:
        os.close(descriptor)


def replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """`os.replace`, announced to the hook."""
    disk_operation("rename", target)
    os.replace(source, target)


def link_or_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A second name for a file (a hard link, no bytes copied), or a copy where the
    filesystem has no hard links."""
    disk_operation("link", target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        fsync_file(target)


def remove_file(path: str | os.PathLike) -> None:
    """Delete a file; one that is already gone is fine."""
    disk_operation("unlink", path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a folder and everything in it, deepest first, like `shutil.rmtree`, but with
    every unlink and rmdir announced to the hook. A folder that is already gone is fine."""
    path = Path(path)
    try:
        with os.scandir(path) as scan:
            entries = list(scan)
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            remove_file(entry.path)
    disk_operation("rmdir", path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def new_folder(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder `parent/<prefix><8 hex digits>`, with the mode the umask gives."""
    for _ in range(100):
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        disk_operation("mkdir", path)
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free name for a new folder {prefix}* in {parent}")


def new_file_mode() -> int:
    """The mode `open` gives a new file under this process's umask (0o644 under 022).

    Some writers create files owner-only whatever the umask (safetensors does); their
    files are set to this, so that a checkpoint's files all share one mode.
    """
    try:  # Linux reports the umask; setting it to read it would race with other threads
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_new_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to a file that must not exist yet, and fsync it. For files inside a
    folder that is itself renamed into place once complete."""
    path = Path(path)
    disk_operation("write", path)
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        disk_operation("fsync", path)
        os.fsync(handle.fileno())
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp = _new_file(path.parent, f".{path.name}-", ".tmp")
    try:
        disk_operation("write", tmp)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            disk_operation("fsync", tmp)
            os.fsync(handle.fileno())
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` exactly as given (no newline translation)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _new_file(parent: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """Create `parent/<prefix><random><suffix>` exclusively, with the mode the umask gives."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a temporary file {prefix}*{suffix} in {parent}")


@contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside `final`; when the block ends without an error, its
    files are flushed to disk and it replaces `final` (which may exist) as a whole. On an
    error `final` is left untouched.

        with staged_folder(folder) as staging:
            save_model(model, str(staging / "model.safetensors"))
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = new_folder(final.parent, f".{final.name}-")
    try:
        yield staging
        mode = new_file_mode()
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                os.chmod(path, mode)  # as if written with open(), whoever wrote it
                fsync_file(path)
        fsync_folder(staging)
        if final.exists():  # swap the old folder out first, then delete it
            old = new_folder(final.parent, f".{final.name}-old-")
            replace(final, old / final.name)
            replace(staging, final)
            fsync_folder(final.parent)
            remove_tree(old)
        else:
            replace(staging, final)
            fsync_folder(final.parent)
    finally:
        if staging.exists():  # only after an error
            with contextlib.suppress(OSError):
                remove_tree(staging)


def file_digest(path: str | os.PathLike, sync: bool = False) -> tuple[int, str]:
    """(size in bytes, sha256 as hex) of a file. With `sync`, the file is also flushed to
    disk in the same pass, so a freshly written file is opened once, not twice."""
    digest = hashlib.sha256()
    buffer = bytearray(_DIGEST_CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])  # hashlib releases the GIL for pieces this large
            size += count
        if sync:
            disk_operation("fsync", path)
            os.fsync(handle.fileno())
    return size, digest.hexdigest()


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
