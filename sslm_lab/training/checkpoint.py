"""Checkpoints that survive a crash and resume training exactly.

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
        step_0001000/ ...
        latest                  a text file holding the newest folder's name

Three rules keep it trustworthy:

- Nothing is ever half-written. The folder is filled under a temporary name and
  renamed into place with `os.replace` (atomic on POSIX), and `latest` is replaced
  the same way, so a SIGKILL leaves either the old checkpoint or the new one.
- `state.pt` is loaded with `torch.load(weights_only=True)`, which refuses to run
  pickled code. So everything in it is a tensor or a plain Python value: RNG states
  are converted to tensors here rather than stored as NumPy arrays.
- A file that cannot be read is reported with its path (`CheckpointError`) and a
  checkpoint whose shapes don't match the model is refused before loading, never
  silently skipped.
"""

from __future__ import annotations

import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_model, save_model
from torch import nn

from sslm_lab.files import (
    CheckpointError,
    atomic_write_text,
    fsync_file,
    staged_folder,
    weight_mismatches,
)

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
LATEST_FILE = "latest"
STEP_PREFIX = "step_"


def step_folder_name(step: int) -> str:
    """`step_0000500` for step 500: zero-padded so names sort in step order."""
    return f"{STEP_PREFIX}{step:07d}"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    folders = [p for p in directory.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX)]
    return sorted(folders, key=lambda p: p.name)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The folder `latest` points to, or None if no checkpoint was ever written here."""
    directory = Path(directory)
    pointer = directory / LATEST_FILE
    if not pointer.exists():
        return None
    folder = directory / pointer.read_text().strip()
    if not folder.is_dir():
        raise CheckpointError(
            f"{pointer} points to {folder.name!r}, which does not exist; "
            f"checkpoints present: {[p.name for p in list_checkpoints(directory)] or 'none'}"
        )
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
    return folder


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    model: nn.Module,
    state: dict[str, Any],
    keep_last_n: int | None = None,
) -> Path:
    """Write `model`'s weights and the training `state` as `directory/step_NNNNNNN`.

    Returns the new folder. Older folders beyond the newest `keep_last_n` are deleted.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / step_folder_name(step)
    with staged_folder(final) as staging:  # a rerun writing the same step again replaces it
        # save_model (not save_file) copes with tied weights, e.g. a shared embedding and head.
        save_model(model, str(staging / WEIGHTS_FILE))
        torch.save(state, staging / STATE_FILE)
        for name in (WEIGHTS_FILE, STATE_FILE):
            fsync_file(staging / name)
    atomic_write_text(directory / LATEST_FILE, final.name + "\n")
    if keep_last_n is not None:
        for stale in list_checkpoints(directory)[:-keep_last_n]:
            shutil.rmtree(stale)
    return final


def load_checkpoint(folder: str | os.PathLike, model: nn.Module) -> dict[str, Any]:
    """Load weights from `folder` into `model` and return the training state saved beside.

    Raises CheckpointError, naming the file, if a file is missing, truncated or
    corrupt, or if the weights' names or shapes do not match `model`.
    """
    folder = Path(folder)
    weights, state_path = folder / WEIGHTS_FILE, folder / STATE_FILE
    for path in (weights, state_path):
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint {folder} is incomplete: {path.name} is missing. Delete this folder "
                "and resume from an earlier checkpoint beside it (or start without resume)"
            )
    try:
        problems = weight_mismatches(weights, model)
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise CheckpointError(
            f"{weights} is corrupt or truncated ({type(error).__name__}: {error}); "
            "delete this checkpoint folder and resume from an earlier one"
        ) from error
    if problems:
        listed = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(
            f"checkpoint {folder} does not fit the model: {listed}. "
            "Build the model with the same configuration as the run that saved it."
        )
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{state_path} is corrupt or truncated ({type(error).__name__}: {error}); "
            "delete this checkpoint folder and resume from an earlier one"
        ) from error
    try:
        load_model(model, str(weights), strict=True, device=str(next(model.parameters()).device))
    except Exception as error:
        raise CheckpointError(f"{weights} could not be loaded ({error})") from error
    return state


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
