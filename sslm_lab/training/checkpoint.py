"""Checkpoints that survive a crash, prove they are intact, and resume training exactly.

This module owns a checkpoint's folders and files, and the random number generators a
resume must put back (`rng_states`, `restore_rng_states`). What the training state holds
is the trainer's own business (`Trainer.state_dict` / `load_state_dict`); the trainer also
decides when to write one.

A checkpoint is one folder per step, next to a `latest` pointer:

    checkpoint_dir/
        step_0000500/
            model.safetensors   the weights: plain tensors, safe to load from anywhere
            state.pt            the trainer's state_dict() (optimizers, schedules, loss
                                scales, step, data position, history, callback states)
                                and every process's RNG states
            manifest.json       written last: the size and sha256 of both files, the step,
                                the format, whether the weights were finite, and the
                                model's class and configuration
        step_0001000/ ...
        latest                  a text file holding the newest folder's name

Four rules keep it trustworthy:

- Old or new, never half. A folder is filled under a hidden name (`.step_0000500-1f2e3d4c`),
  manifest last, and renamed into place with `os.replace` (atomic on POSIX); `latest` is
  replaced the same way. When the step being written is the very folder `latest` names
  (a run resumed from an earlier step reaches it again), `latest` first moves to the
  complete hidden folder and the step folder is rebuilt from hard links to it, so at
  every moment, whatever system call a SIGKILL lands on, `latest` names a complete folder.
- Nothing is used before it is verified. Loading compares every file's size and sha256
  with the manifest, the step with the folder's name and with the state, and the stored
  configuration with the model's, before a tensor is read. Safetensors and `torch.load`
  check no checksum: a flipped bit would otherwise train on silently. `state.pt` is
  loaded with `torch.load(weights_only=True)`, which refuses to run pickled code, so RNG
  states are stored as tensors, not NumPy arrays.
- A crash leaves no litter. Hidden staging folders and temporary pointers of a killed
  save are removed at the next save or resume; pruning first renames a folder to a
  hidden name, so a half-deleted folder never looks like a checkpoint.
- Every refusal names the path, says what is wrong, and points to the newest checkpoint
  that verifies. The one folder a message ever advises deleting is the failing
  checkpoint's own.

Checkpoints written before manifests existed still load, with a warning that they
cannot be verified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import random
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from sslm_lab.files import (
    CheckpointError,
    atomic_write_text,
    disk_operation,
    file_digest,
    fsync_folder,
    link_or_copy,
    new_file_mode,
    new_folder,
    remove_file,
    remove_tree,
    replace,
    weight_mismatches,
    write_new_file,
)

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "latest"
STEP_PREFIX = "step_"
# The layout of manifest.json; a newer one is refused rather than half understood.
MANIFEST_FORMAT = 1
# Stored in the safetensors header of every checkpoint written with a manifest, so that a
# folder whose manifest went missing is not mistaken for one written before manifests.
MANIFEST_MARKER = "sslm_lab.manifest"

_STEP_NAME = re.compile(r"step_(\d+)")
_STAGING_NAME = re.compile(r"\.step_(\d+)-[0-9a-f]+")  # a complete one may be `latest`'s target
_LEFTOVER_FOLDER = re.compile(r"\.step_\d+-.+")  # staging, swapped-out and pruned folders
_LEFTOVER_POINTER = re.compile(rf"\.{LATEST_FILE}-.+\.tmp")


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint written before manifests: its files have no checksums to compare."""


def step_folder_name(step: int) -> str:
    """`step_0000500` for step 500: zero-padded so names sort in step order."""
    return f"{STEP_PREFIX}{step:07d}"


def folder_step(folder: str | os.PathLike) -> int | None:
    """The step a checkpoint folder's name gives (also for a hidden staging folder), or None."""
    name = Path(folder).name
    match = _STEP_NAME.fullmatch(name) or _STAGING_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders in `directory`, oldest first.

    Complete: it has a manifest (written last), or, from before manifests, both files.
    Complete is not verified: `verify_checkpoint` reads every byte to say that.
    """
    return [folder for folder in _step_folders(directory) if _is_complete(folder)]


def _step_folders(directory: str | os.PathLike) -> list[Path]:
    """Every `step_NNNNNNN` folder, complete or not, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    folders = [p for p in directory.iterdir() if p.is_dir() and _STEP_NAME.fullmatch(p.name)]
    return sorted(folders, key=lambda p: (int(p.name[len(STEP_PREFIX) :]), p.name))


def _is_complete(folder: Path) -> bool:
    if (folder / MANIFEST_FILE).is_file():
        return True
    return (folder / WEIGHTS_FILE).is_file() and (folder / STATE_FILE).is_file()


# ------------------------------------------------------------------------ the pointer


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The folder `latest` points to, or None if no checkpoint was ever written here.

    A pointer that is empty, holds something other than a folder's name, or names a
    folder that is gone is refused (CheckpointError), never read as the directory itself:
    the message says which and names the newest checkpoint that verifies.
    """
    directory = Path(directory)
    pointer = directory / LATEST_FILE
    if not pointer.exists() and not pointer.is_symlink():
        return None
    try:
        name = _read_pointer(pointer)
    except OSError as error:
        raise CheckpointError(
            f"{pointer} cannot be read ({type(error).__name__}: {error}). {_instead(directory)}"
        ) from error
    if not name:
        raise CheckpointError(
            f"{pointer} is empty, so it names no checkpoint (a save writes it whole or not "
            f"at all, so something else emptied it). {_instead(directory)}"
        )
    if not _is_pointer_target(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise CheckpointError(
            f"{pointer} does not hold a checkpoint folder's name: it holds {shown!r}, where "
            f"a name like 'step_0000500' belongs. {_instead(directory)}"
        )
    folder = directory / name
    if not folder.is_dir():
        present = [p.name for p in list_checkpoints(directory)] or "none"
        message = (
            f"{pointer} points to {name!r}, which does not exist; checkpoints present: {present}."
        )
        for copy in _swapped_out_copies(directory, name):
            message += (
                f" A complete copy of {name} was left at {copy} by a save that was killed "
                f"(before this version of sslm_lab): move it back to {folder} to resume from it."
            )
        raise CheckpointError(f"{message} {_instead(directory)}")
    return folder


def resume_folder(request: str | os.PathLike, directory: str | os.PathLike | None) -> Path | None:
    """The folder `TrainerConfig.resume` names: "latest" in `directory`, or a folder path.

    None when "latest" finds no checkpoint yet (a first run that may be resumed later).
    """
    if str(request) == "latest":
        return latest_checkpoint(directory)
    folder = Path(request)
    if not folder.is_dir():
        raise CheckpointError(f"TrainerConfig.resume: {folder} is not a checkpoint folder")
    inside = list_checkpoints(folder)
    if inside or (folder / LATEST_FILE).exists():
        raise CheckpointError(
            f"TrainerConfig.resume: {folder} is not a checkpoint folder but a folder of "
            f"checkpoints ({[p.name for p in inside] or 'none complete'}): set "
            f"checkpoint_dir={str(folder)!r} and resume='latest', or name one of its folders"
        )
    return folder


def resume_hint(folder: str | os.PathLike) -> str:
    """How to resume from `folder`: "resume='latest'" when `latest` names it, else its path."""
    folder = Path(folder)
    if _pointed_name(folder.parent) == folder.name:
        return "resume='latest'"
    return f"resume='{folder}'"


def _read_pointer(pointer: Path) -> str:
    with open(pointer, "rb") as handle:
        raw = handle.read(4096)  # a name is ~12 bytes; garbage need not be read whole
    return raw.decode("utf-8", errors="replace").strip()


def _is_pointer_target(name: str) -> bool:
    return bool(_STEP_NAME.fullmatch(name) or _STAGING_NAME.fullmatch(name))


def _pointed_name(directory: Path) -> str | None:
    """The folder name `latest` holds, if it holds one; None instead of any error."""
    try:
        name = _read_pointer(directory / LATEST_FILE)
    except OSError:
        return None
    return name if _is_pointer_target(name) else None


def _point_latest(directory: Path, name: str) -> None:
    atomic_write_text(directory / LATEST_FILE, name + "\n")


def _swapped_out_copies(directory: Path, name: str) -> list[Path]:
    """Complete copies of `name` that a save killed mid-swap left hidden (sslm_lab before
    manifests could leave `latest` naming a folder that only existed there)."""
    copies = sorted(directory.glob(f".{name}-old-*/{name}"))
    return [copy for copy in copies if copy.is_dir() and _is_complete(copy)]


# -------------------------------------------------------------------------- verifying


class _Damage(Exception):
    """A checkpoint's files are not what was written; the message says how (no advice)."""


def has_manifest(folder: str | os.PathLike) -> bool:
    """True for checkpoints written with a manifest, False for those from before."""
    return (Path(folder) / MANIFEST_FILE).is_file()


def verify_checkpoint(folder: str | os.PathLike) -> str | None:
    """What is wrong with a checkpoint folder, or None when it verifies: both files are
    there, their sizes and sha256 match the manifest, the manifest's step matches the
    folder's name, and the weights were finite. A folder from before manifests has
    nothing to compare and gives None when both files are there (see `has_manifest`).
    Reads every byte: sha256 takes about 0.65 CPU seconds per GB on a recent x86 core
    (benchmarks/bench_checkpoint.py), and the two files are hashed at once.
    """
    try:
        _verified_manifest(Path(folder))
    except (_Damage, CheckpointError) as error:
        return str(error)
    return None


def newest_good_checkpoint(
    directory: str | os.PathLike,
    before_step: int | None = None,
    exclude: str | os.PathLike | None = None,
) -> Path | None:
    """The newest checkpoint in `directory` that verifies, other than `exclude` and of a
    step below `before_step`; None if there is none. A folder from before manifests counts
    (it cannot be checked; see `has_manifest`)."""
    for folder in reversed(list_checkpoints(directory)):
        if exclude is not None and _same_path(folder, Path(exclude)):
            continue
        step = folder_step(folder)
        if before_step is not None and step is not None and step >= before_step:
            continue
        if verify_checkpoint(folder) is None:
            return folder
    return None


def _verified_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest once every file has been checked against it; None for a
    checkpoint from before manifests. Raises _Damage for files that are not as written."""
    for name in (WEIGHTS_FILE, STATE_FILE):
        if not (folder / name).is_file():
            raise _Damage(f"checkpoint {folder} is incomplete: {name} is missing.")
    manifest = _read_manifest(folder)
    if manifest is None:
        if _has_marker(folder / WEIGHTS_FILE):
            raise _Damage(
                f"checkpoint {folder} is incomplete: {MANIFEST_FILE} is missing, though its "
                "weights were written together with one."
            )
        return None
    manifest_path = folder / MANIFEST_FILE
    named = folder_step(folder)
    if named is not None and named != manifest["step"]:
        raise _Damage(
            f"checkpoint {folder} holds the files of step {manifest['step']} (its manifest "
            f"says so), not of step {named}: it was renamed or put together by hand."
        )
    listed = manifest["files"]
    for name in (WEIGHTS_FILE, STATE_FILE):
        if name not in listed:
            raise _Damage(f"{manifest_path} is corrupt or truncated: it does not list {name}.")
    # Sizes first: a truncated file is found without reading a byte of it.
    for name, expected in listed.items():
        path = folder / name
        if not path.is_file():
            raise _Damage(f"checkpoint {folder} is incomplete: {name} is missing.")
        size = path.stat().st_size
        if size != expected["size"]:
            raise _Damage(
                f"{path} is corrupt or truncated: it has {size} bytes, but {expected['size']} "
                f"were written ({manifest_path})."
            )
    digests = _digests([folder / name for name in listed])
    for (name, expected), (_, digest) in zip(listed.items(), digests, strict=True):
        path = folder / name
        if digest != expected["sha256"]:
            raise _Damage(
                f"{path} is corrupt: its sha256 differs from the one recorded when it was "
                f"written ({manifest_path}), so its bytes have changed since."
            )
    if not manifest["weights_finite"]:
        raise _Damage(
            f"checkpoint {folder} holds NaN or infinite weights: training had already "
            "diverged when it was saved."
        )
    return manifest


def _digests(paths: list[Path], sync: bool = False) -> list[tuple[int, str]]:
    """`file_digest` of each file, all at once in threads: hashlib and file reads release
    the GIL, so the weights and the state take about the time of the larger alone."""
    with ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
        return list(pool.map(functools.partial(file_digest, sync=sync), paths))


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Damage(
            f"{path} is corrupt or truncated ({type(error).__name__}: {error})."
        ) from None
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if _is_int(version) and version > MANIFEST_FORMAT:
        raise CheckpointError(
            f"{path} has format {version}, newer than this sslm_lab reads "
            f"({MANIFEST_FORMAT}): update sslm_lab to resume from this checkpoint"
        )
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise _Damage(f"{path} is corrupt or truncated ({problem}).")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What makes `manifest` not one this module wrote, or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    if not _is_int(manifest.get("format")) or not _is_int(manifest.get("step")):
        return "no integer format or step"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "no file list"
    for name, entry in files.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            return f"a file name {name!r} outside the folder"
        if not isinstance(entry, dict) or not _is_int(entry.get("size")):
            return f"no size for {name}"
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            return f"no sha256 for {name}"
    if not isinstance(manifest.get("weights_finite"), bool):
        return "no weights_finite flag"
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("configs"), dict):
        return "no model description"
    for config in model["configs"].values():
        if not isinstance(config, dict) or not isinstance(config.get("fields"), dict):
            return "a model configuration without fields"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_marker(weights: Path) -> bool:
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return MANIFEST_MARKER in (handle.metadata() or {})
    except Exception:  # an unreadable header is reported when the weights are loaded
        return False


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _instead(directory: Path, failed: Path | None = None) -> str:
    """Where to resume from instead of a checkpoint or pointer that failed."""
    good = newest_good_checkpoint(directory, exclude=failed)
    if good is None:
        return f"No checkpoint in {directory} verifies, so start without resume (resume=None)."
    return (
        f"The newest checkpoint that verifies is {_named(good)}: resume with {resume_hint(good)}."
    )


def _recovery(folder: Path) -> str:
    """What to do about a damaged checkpoint folder. Only a folder named like a checkpoint
    (step_0000500) is ever called deletable: any other may hold far more than one."""
    if folder_step(folder) is None:
        return (
            f"{folder} is not a folder the trainer names (those are like step_0000500). "
            + _instead(folder.parent, folder)
        )
    good = newest_good_checkpoint(folder.parent, exclude=folder)
    if good is None:
        return (
            f"Delete this folder ({folder}); no other checkpoint beside it verifies, so "
            "start without resume (resume=None)."
        )
    return (
        f"Delete this folder ({folder}) and resume from the newest checkpoint beside it that "
        f"verifies, {_named(good)}: resume with {resume_hint(good)}."
    )


def _named(good: Path) -> str:
    return f"{good}" if has_manifest(good) else f"{good} (from before manifests: not verified)"


# ------------------------------------------------------------- the model's configuration


def model_description(model: nn.Module) -> dict[str, Any]:
    """The model's class and every dataclass `config` its modules carry (sslm_lab's models
    carry their TransformerConfig), as JSON values by module path ("" for the model).

    Shapes cannot tell n_head=2 from n_head=4, a pre-LN from a post-LN block, or dropout
    0.1 from 0; the configuration can. A model without such a config is described by its
    class alone, and its names and shapes are still checked.
    """
    configs: dict[str, Any] = {}
    for path, module in model.named_modules():
        config = getattr(module, "config", None)
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            fields = {
                field.name: getattr(config, field.name) for field in dataclasses.fields(config)
            }
            configs[path] = {"class": type(config).__name__, "fields": _json_values(fields)}
    return {"class": type(model).__name__, "configs": configs}


def config_differences(saved: dict[str, Any], model: nn.Module) -> list[str]:
    """How a manifest's model description differs from `model`'s (empty: the same).

    A field that differs in several modules (a model and its body share one config) is
    named once, followed by where.
    """
    now = model_description(model)
    problems = []
    if saved.get("class") != now["class"]:
        problems.append(
            f"the checkpoint holds a {saved.get('class')}, the model is a {now['class']}"
        )
    saved_configs, now_configs = saved.get("configs", {}), now["configs"]
    where_by_difference: dict[str, list[str]] = {}
    for path in sorted(set(saved_configs) | set(now_configs)):
        where = ".".join(["model", *([path] if path else []), "config"])
        if path not in now_configs or path not in saved_configs:
            side = "checkpoint" if path in saved_configs else "model"
            other = "model" if side == "checkpoint" else "checkpoint"
            problems.append(f"{where} is in the {side} but not in the {other}")
            continue
        before, after = saved_configs[path], now_configs[path]
        if before.get("class") != after["class"]:
            problems.append(
                f"{where} is a {before.get('class')} in the checkpoint but a {after['class']} "
                "in the model"
            )
            continue
        old_fields, new_fields = before.get("fields", {}), after["fields"]
        for name in sorted(set(old_fields) | set(new_fields)):
            old, new = old_fields.get(name, _ABSENT), new_fields.get(name, _ABSENT)
            if _canonical(old) != _canonical(new):
                difference = (
                    f"{name} is {_shown(old)} in the checkpoint but {_shown(new)} in the model"
                )
                where_by_difference.setdefault(difference, []).append(where)
    problems += [f"{text} ({', '.join(wheres)})" for text, wheres in where_by_difference.items()]
    return problems


_ABSENT = object()
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _json_values(value: Any) -> Any:
    """`value` as JSON would give it back: tuples become lists, and anything JSON lacks
    becomes a stable string (never one holding a memory address, which differs by run)."""
    return json.loads(json.dumps(value, default=_plain, sort_keys=True))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return _ADDRESS.sub("", repr(value))


def _canonical(value: Any) -> str:
    # json.dumps, not ==: NaN equals itself here, and 1 and 1.0 and True stay apart.
    return "absent" if value is _ABSENT else json.dumps(value, sort_keys=True)


def _shown(value: Any) -> str:
    return "absent" if value is _ABSENT else repr(value)


def _parameters_finite(model: nn.Module) -> bool:
    """Whether every parameter is finite (buffers may hold -inf by design, e.g. masks).

    A sum is NaN or inf whenever an entry is, and costs a sixth of isfinite().all(); only
    a sum that overflows with every entry finite needs the full check.
    """
    parameters = [p.detach() for p in model.parameters() if p.numel() and p.is_floating_point()]
    # fp16 and bf16 sums are kept in fp32: a large fp16 tensor's sum may pass 65504.
    sums = [p.sum(dtype=torch.float32 if p.element_size() < 4 else None) for p in parameters]
    return all(
        bool(torch.isfinite(total)) or bool(torch.isfinite(p).all())
        for p, total in zip(parameters, sums, strict=True)
    )


# ------------------------------------------------------------------ saving and loading


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    model: nn.Module,
    state: dict[str, Any],
    keep_last_n: int | None = None,
) -> Path:
    """Write `model`'s weights and the training `state` as `directory/step_NNNNNNN`.

    Returns the new folder. Older folders beyond the newest `keep_last_n` are deleted
    (folders of later steps, left by a run this one was resumed before, are kept until
    this run writes those steps again), and so is what killed saves left behind.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    remove_leftovers(directory)  # before writing, so a killed save's files free their space
    final = directory / step_folder_name(step)
    staging = new_folder(directory, f".{final.name}-")
    try:
        _write_files(staging, step, model, state)
    except BaseException:
        with contextlib.suppress(OSError):  # the error that stopped the write matters more
            remove_tree(staging)
        raise
    if final.exists() and _pointed_name(directory) == final.name:
        # The swap below takes `final` away for a moment, and `latest` names it: `latest`
        # moves to the complete staging folder first, which stays whole because `final`
        # is rebuilt from hard links to its files rather than from the folder itself.
        _point_latest(directory, staging.name)
        _swap_in(final, _linked_copy(staging, directory, final.name))
        _point_latest(directory, final.name)
        remove_tree(staging)
    else:
        _swap_in(final, staging)
        _point_latest(directory, final.name)
    if keep_last_n is not None:
        _prune(directory, step, keep_last_n)
    remove_leftovers(directory)  # the staging folder `latest` named during a swap
    return final


def _write_files(staging: Path, step: int, model: nn.Module, state: dict[str, Any]) -> None:
    """Weights, state, then the manifest that vouches for both, each flushed to disk."""
    weights, state_path = staging / WEIGHTS_FILE, staging / STATE_FILE
    disk_operation("write", weights)
    # save_model (not save_file) copes with tied weights, e.g. a shared embedding and head.
    save_model(model, str(weights), metadata={MANIFEST_MARKER: MANIFEST_FILE})
    os.chmod(weights, new_file_mode())  # safetensors makes it owner-only, whatever the umask
    disk_operation("write", state_path)
    torch.save(state, state_path)
    # Hashed while flushed, and still in the page cache: no second read from disk.
    digests = _digests([weights, state_path], sync=True)
    files = {
        path.name: {"size": size, "sha256": digest}
        for path, (size, digest) in zip((weights, state_path), digests, strict=True)
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "step": step,
        "files": files,
        "weights_finite": _parameters_finite(model),
        "model": model_description(model),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_new_file(staging / MANIFEST_FILE, text.encode("utf-8"))
    fsync_folder(staging)


def _swap_in(final: Path, source: Path) -> None:
    """Put the complete folder `source` at `final`, which may exist (it is swapped out
    first, then deleted)."""
    if final.exists():
        old = new_folder(final.parent, f".{final.name}-old-")
        replace(final, old / final.name)
        replace(source, final)
        fsync_folder(final.parent)
        remove_tree(old)
    else:
        replace(source, final)
        fsync_folder(final.parent)


def _linked_copy(folder: Path, directory: Path, name: str) -> Path:
    """A hidden copy of `folder` made of hard links (no bytes copied), manifest last."""
    copy = new_folder(directory, f".{name}-")
    paths = sorted(folder.iterdir(), key=lambda p: p.name == MANIFEST_FILE)
    for path in paths:
        link_or_copy(path, copy / path.name)
    fsync_folder(copy)
    return copy


def _prune(directory: Path, step: int, keep_last_n: int) -> None:
    """Delete folders of steps before `step` beyond the newest keep_last_n - 1 complete
    ones (incomplete ones are never kept). Each is first renamed to a hidden name, so a
    kill halfway through deleting it leaves a leftover, not a broken checkpoint."""
    older = [folder for folder in _step_folders(directory) if folder_step(folder) < step]
    complete = [folder for folder in older if _is_complete(folder)]
    keep = set(complete[max(0, len(complete) - (keep_last_n - 1)) :]) if keep_last_n > 1 else set()
    for folder in older:
        if folder in keep:
            continue
        trash = new_folder(directory, f".{folder.name}-pruned-")
        replace(folder, trash / folder.name)
        fsync_folder(directory)
        remove_tree(trash)


def remove_leftovers(
    directory: str | os.PathLike, keep: str | os.PathLike | None = None
) -> list[Path]:
    """Delete what killed saves and prunings left in `directory`: hidden staging, swapped-out
    and half-pruned folders, and temporary pointer files. Returns what was deleted.

    Spared: the folder `latest` names (a complete staging folder, during a swap), a
    hidden complete copy of a folder `latest` names that is gone, and `keep` (a folder
    being resumed from) with anything holding it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    target = _pointed_name(directory)
    dangling = target is not None and not (directory / target).exists()
    kept = Path(keep).resolve() if keep is not None else None
    removed = []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name == target or (dangling and name.startswith(f".{target}-old-")):
            continue
        if kept is not None and (entry.resolve() == kept or entry.resolve() in kept.parents):
            continue
        if _LEFTOVER_FOLDER.fullmatch(name) and entry.is_dir() and not entry.is_symlink():
            remove_tree(entry)
        elif _LEFTOVER_POINTER.fullmatch(name) and not entry.is_dir():
            remove_file(entry)
        else:
            continue
        removed.append(entry)
    return removed


def load_checkpoint(folder: str | os.PathLike, model: nn.Module) -> dict[str, Any]:
    """Load weights from `folder` into `model` and return the training state saved beside.

    Before a byte is used, every file is checked against the manifest (size, sha256), the
    manifest's step against the folder's name, and the stored configuration against the
    model's. Raises CheckpointError, naming the file and the newest checkpoint that
    verifies, if a file is missing, truncated or corrupt; and naming what differs, if the
    configuration, the weights' names or shapes, or the state's step do not match.
    A checkpoint from before manifests loads with an UnverifiedCheckpointWarning.
    """
    folder = Path(folder)
    try:
        manifest = _verified_manifest(folder)
    except _Damage as damage:
        raise CheckpointError(f"{damage} {_recovery(folder)}") from None
    weights, state_path = folder / WEIGHTS_FILE, folder / STATE_FILE
    if manifest is None:
        warnings.warn(
            f"{folder} was written before checkpoints had a manifest: its files cannot be "
            "verified (there are no checksums to compare), so it is loaded as it is",
            UnverifiedCheckpointWarning,
            stacklevel=2,
        )
    problems = [] if manifest is None else config_differences(manifest["model"], model)
    try:
        problems += weight_mismatches(weights, model)
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise CheckpointError(
            f"{weights} is corrupt or truncated ({type(error).__name__}: {error}). "
            f"{_recovery(folder)}"
        ) from error
    if problems:
        listed = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        stored = (
            f" (stored in {folder / MANIFEST_FILE})"
            if manifest and manifest["model"]["configs"]
            else ""
        )
        raise CheckpointError(
            f"checkpoint {folder} does not fit the model: {listed}. "
            f"Build the model with the same configuration as the run that saved it{stored}."
        )
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{state_path} is corrupt or truncated ({type(error).__name__}: {error}). "
            f"{_recovery(folder)}"
        ) from error
    expected = manifest["step"] if manifest is not None else folder_step(folder)
    saved = state.get("step") if isinstance(state, dict) else None
    if expected is not None and _is_int(saved) and saved != expected:
        raise CheckpointError(
            f"{state_path} holds the training state of step {saved}, but {folder} is step "
            f"{expected}: the two files come from different checkpoints. {_recovery(folder)}"
        )
    parameter = next(model.parameters(), None)
    device = str(parameter.device) if parameter is not None else "cpu"
    try:
        load_model(model, str(weights), strict=True, device=device)
    except Exception as error:
        raise CheckpointError(f"{weights} could not be loaded ({error})") from error
    if manifest is None and not _parameters_finite(model):
        raise CheckpointError(
            f"checkpoint {folder} holds NaN or infinite weights (the model now holds them "
            f"too). {_recovery(folder)}"
        )
    return state


# ----------------------------------------------------------------- random generators


def rng_states(world_size: int) -> list[dict[str, Any]]:
    """Every process's random number generators, one entry per rank (rank 0 first).

    Each rank's dropout stream differs, so under torchrun every rank must call this: it
    gathers them all, for rank 0 to save.
    """
    if world_size == 1:
        return [capture_rng_state()]
    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, capture_rng_state())
    return states


def restore_rng_states(
    states: list[dict[str, Any]], rank: int, world_size: int, reseed: int, folder: Path
) -> None:
    """Put this rank's generators back from `rng_states`' result, loaded from `folder`.

    Resumed by a different number of processes, the states cannot be matched to ranks:
    every generator is seeded with `reseed` instead, with a warning that the run is no
    longer exact.
    """
    if len(states) == world_size:
        restore_rng_state(states[rank])
        return
    warnings.warn(
        f"{folder} was saved by {len(states)} processes and is resumed by "
        f"{world_size}: random streams are reseeded, so the run is not exact",
        stacklevel=3,  # the trainer's fit()
    )
    seed_everything(reseed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """Every random number generator training touches, as tensors and plain values."""
    version, mt_state, gauss_next = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {
            "version": version,
            "state": torch.tensor(mt_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put every generator back exactly as `capture_rng_state` found it."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])
