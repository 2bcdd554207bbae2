"""Checkpoints that survive a crash and resume training exactly.

This module owns everything a checkpoint is: its folders and files, what the trainer
puts in it (`training_state`) and how a resumed trainer gets it back
(`restore_training_state`), random number generators included. The trainer only
decides when to write one.

A checkpoint is one folder per step, next to a `latest` pointer:

    checkpoint_dir/
        step_0000500/
            model.safetensors   the weights: plain tensors, safe to load from anywhere
            state.pt            optimizer(s), scheduler(s), scaler(s), step, RNG states,
                                data position, metrics history, callback states
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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # the trainer imports this module, so only type checkers import it back
    from sslm_lab.training.trainer import Trainer

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
LATEST_FILE = "latest"
STEP_PREFIX = "step_"
# 2: callback states under "callbacks" (format 1 had early stopping's at the top level).
STATE_FORMAT = 2


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


def training_state(trainer: Trainer) -> dict[str, Any]:
    """Everything besides the weights that a resumed `trainer` needs to go on exactly.

    Every rank must call it under torchrun (it gathers each rank's RNG state); rank 0
    saves the result.
    """
    rng = [capture_rng_state()]
    if trainer.dist.enabled:  # each rank's dropout stream differs: keep them all
        rng = [None] * trainer.dist.world_size
        dist.all_gather_object(rng, capture_rng_state())
    return {
        "format": STATE_FORMAT,
        "step": trainer.step,
        "phases": {
            s.phase.name: {
                "optimizer": s.optimizer.state_dict(),
                "scheduler": s.scheduler.state_dict(),
                "scaler": s.scaler.state_dict(),
                "updates": s.updates,
            }
            for s in trainer._states
        },
        "data": trainer.stream.state_dict(),
        "rng": rng,
        "history": trainer.history,
        "skipped_steps": trainer.skipped_steps,
        "callbacks": {c.state_key: c.state_dict() for c in trainer.callbacks if c.state_key},
    }


def restore_training_state(trainer: Trainer, state: dict[str, Any], folder: Path) -> None:
    """Put `training_state`'s result, loaded from `folder`, back into `trainer`.

    Refuses a checkpoint of other phases or optimizers (CheckpointError). Resumed by a
    different number of processes, the RNG states cannot be matched to ranks: they are
    reseeded, with a warning that the run is no longer exact.
    """
    if state.get("format", 1) > STATE_FORMAT:
        raise CheckpointError(
            f"{folder} has state format {state['format']}, newer than this sslm_lab "
            f"understands ({STATE_FORMAT}); update sslm_lab to resume from it"
        )
    saved, ours = sorted(state["phases"]), sorted(p.name for p in trainer.phases)
    if saved != ours:
        raise CheckpointError(f"{folder} holds phases {saved}, but this trainer has {ours}")
    for phase_state in trainer._states:
        saved_phase = state["phases"][phase_state.phase.name]
        try:
            phase_state.optimizer.load_state_dict(saved_phase["optimizer"])
        except ValueError as error:
            raise CheckpointError(f"{folder}: optimizer state does not fit ({error})") from error
        phase_state.scheduler.load_state_dict(saved_phase["scheduler"])
        if saved_phase["scaler"] and phase_state.scaler.is_enabled():
            phase_state.scaler.load_state_dict(saved_phase["scaler"])
        phase_state.updates = saved_phase["updates"]
    trainer.step = state["step"]
    trainer.stream.load_state_dict(state["data"])
    trainer.history = list(state["history"])
    trainer.skipped_steps = state["skipped_steps"]
    # Format 1 kept early stopping's state at the top level, the only callback state then.
    callbacks = state.get("callbacks") or {"early_stopping": state.get("early_stopping")}
    for callback in trainer.callbacks:
        if callback.state_key is not None and callbacks.get(callback.state_key) is not None:
            callback.load_state_dict(callbacks[callback.state_key])
    world_size, rank = trainer.dist.world_size, trainer.dist.rank
    if len(state["rng"]) == world_size:
        restore_rng_state(state["rng"][rank])
    else:
        warnings.warn(
            f"{folder} was saved by {len(state['rng'])} processes and is resumed by "
            f"{world_size}: random streams are reseeded, so the run is not exact",
            stacklevel=3,  # the trainer's fit()
        )
        seed_everything(trainer.config.seed + rank + trainer.step)
    trainer.last_checkpoint = folder


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
