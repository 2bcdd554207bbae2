"""A dry run of the training loop: every fit() cut to a few steps, its first step measured.

`sslm-lab reproduce --dry-run` (sslm_lab.lab.dry_run) runs each notebook at its profile's
shapes with training cut short, to prove the code paths and size the memory before
anyone pays for a GPU. It tells the trainer through two environment variables, which it
sets for the kernels it starts:

    SSLM_DRY_RUN_STEPS=2             every Trainer stops after at most this many steps
    SSLM_DRY_RUN_LOG=/path/NN.jsonl  each trainer's first step appends one JSON line there

With SSLM_DRY_RUN_STEPS unset, nothing here changes anything: `capped` returns the config
it was given, and `measured_step` does nothing.

What the first step of each trainer records (`step_record`): the model's class and
parameter count, the batch's shapes, and the memory that step needs on its device,

    parameters   every parameter and buffer of the model, at its own dtype's size
    gradients    one per trainable parameter, at the parameter's dtype
    optimizer    AdamW's two moments per trainable parameter, each the parameter's size
    activations  what autograd saves for backward, measured, not guessed: the bytes of
                 the tensors saved during the step (`saved_tensors_hooks`), each storage
                 counted once, parameters and buffers left out, at the most that were
                 alive at once (a phase's or micro-batch's are freed by its backward)
    activation   the gradients that flow back through the graph, two at a time (the one
    gradients    coming in and the one going out of an operation), each at most the size
                 of the largest saved storage: twice that. With a large vocabulary the
                 logits' gradients are the biggest tensors of the step, and without this
                 term the estimate fell short of the allocator's peak (tests/test_dry_run.py)

and their sum times 1 + MARGIN. Not counted, and what the margin stands for: the
temporaries of kernels and of the optimizer's update, the CUDA context, the workspaces
of cuBLAS and fused attention kernels, the caching allocator's fragmentation, and
whatever else the notebook keeps on the device (data, other models). Activations
are measured at the precision the step really ran in: on a CPU without native bf16 the
gpu profile's bf16 runs in fp32, so that figure is an upper bound of the GPU's (autocast
saves most activations in bf16, plus a bf16 copy of each weight it multiplies, which the
measurement would then count too). On CUDA the step's peak allocated memory is recorded
beside the estimate. A compiled module hides its saved tensors from the hooks: there the
activations are not measured.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab.training.batches import map_tensors

STEPS_ENV_VAR = "SSLM_DRY_RUN_STEPS"
LOG_ENV_VAR = "SSLM_DRY_RUN_LOG"
MARGIN = 0.25  # on top of the counted bytes, for what is not counted (module docstring)
ADAM_MOMENTS = 2  # AdamW keeps exp_avg and exp_avg_sq, each the size of its parameter


def dry_run_steps() -> int | None:
    """The step cap of a dry run ($SSLM_DRY_RUN_STEPS), or None outside one."""
    text = os.environ.get(STEPS_ENV_VAR, "").strip()
    if not text:
        return None
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps < 1:
        raise ValueError(
            f"${STEPS_ENV_VAR}={text!r}: a dry run's step cap must be a whole number >= 1 "
            f"(e.g. 2); unset it to train as configured"
        )
    return steps


def capped(config: Any) -> Any:
    """`config` itself outside a dry run; in one, a copy with max_steps cut to the cap."""
    steps = dry_run_steps()
    if steps is None or config.max_steps <= steps:
        return config
    return dataclasses.replace(config, max_steps=steps)


def _storage_key(tensor: Tensor) -> tuple[str, int] | None:
    try:
        return str(tensor.device), tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # no storage of its own (e.g. a functional view)
        return None


class SavedTensors:
    """Within `with SavedTensors(exclude):`, the peak bytes of tensors autograd saved for
    backward and still alive, each storage counted once, those of `exclude` not at all."""

    def __init__(self, exclude: list[Tensor] = ()) -> None:
        self.excluded = {_storage_key(t) for t in exclude}
        self.live: dict[tuple[str, int], tuple[int, list[weakref.ref]]] = {}
        self.peak = 0  # bytes
        self.largest = 0  # bytes of the largest storage saved
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda saved: saved)

    def _pack(self, tensor: Tensor) -> Tensor:
        key = _storage_key(tensor)
        if key is None or key in self.excluded:
            return tensor
        nbytes, refs = self.live.get(key, (0, []))
        if not any(ref() is not None for ref in refs):  # new, or its address was reused
            nbytes, refs = tensor.untyped_storage().nbytes(), []
        refs.append(weakref.ref(tensor))
        self.live[key] = (nbytes, refs)
        self.largest = max(self.largest, nbytes)
        alive = sum(size for size, held in self.live.values() if any(r() is not None for r in held))
        self.peak = max(self.peak, alive)
        return tensor

    def __enter__(self) -> SavedTensors:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


def _unique(tensors: list[Tensor]) -> list[Tensor]:
    seen, kept = set(), []
    for tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            kept.append(tensor)
    return kept


def _bytes(tensors: list[Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def step_memory(
    model: nn.Module,
    trainable: list[Tensor],
    activations: int | None,
    largest_saved: int | None = None,
    margin: float = MARGIN,
) -> dict[str, int | float | None]:
    """The memory of one training step, in bytes (see the module docstring for each term).

    `trainable`: the parameters some optimizer updates (each counted once); `activations`:
    bytes saved for backward, and `largest_saved` the bytes of the largest storage among
    them, or None if not measured (then left out of the total).
    """
    trainable = _unique(trainable)
    weights = _bytes(_unique([*model.parameters(), *model.buffers()]))
    gradients = _bytes(trainable)
    optimizer = ADAM_MOMENTS * gradients
    flowing = None if largest_saved is None else 2 * largest_saved
    counted = weights + gradients + optimizer + (activations or 0) + (flowing or 0)
    return {
        "parameters": weights,
        "gradients": gradients,
        "optimizer": optimizer,
        "activations": activations,
        "activation_gradients": flowing,
        "margin": margin,
        "total": round(counted * (1 + margin)),
    }


def describe_batch(batch: Any) -> Any:
    """The batch with every tensor replaced by "(shape) dtype", e.g. "(64, 257) int64"."""
    return map_tensors(
        batch, lambda t: f"({', '.join(map(str, t.shape))}) {str(t.dtype).removeprefix('torch.')}"
    )


_measured: weakref.WeakSet = weakref.WeakSet()  # trainers whose first step was recorded
_peak_before_resets = 0  # CUDA bytes: the process's peak before each step's reset of it


def cuda_peak() -> int | None:
    """The most CUDA memory this process has had allocated (across the resets of the
    measured steps); None without CUDA."""
    if not torch.cuda.is_available():
        return None
    return max(_peak_before_resets, torch.cuda.max_memory_allocated())


@contextmanager
def measured_step(trainer: Any, batches: list[Any]) -> Iterator[None]:
    """Around a trainer's step: in a dry run, measure the trainer's first step and append
    `step_record` to $SSLM_DRY_RUN_LOG (and print it); otherwise do nothing."""
    if dry_run_steps() is None or trainer in _measured:
        yield
        return
    _measured.add(trainer)
    model, device = trainer.model, trainer.device
    trainable = [
        p for phase in trainer.phases for p in phase.module.parameters() if p.requires_grad
    ]
    hidden = trainer.config.compile  # a compiled graph does not show its saved tensors
    saved = SavedTensors([*model.parameters(), *model.buffers()])
    if device.type == "cuda":
        global _peak_before_resets
        torch.cuda.synchronize(device)
        _peak_before_resets = max(_peak_before_resets, torch.cuda.max_memory_allocated(device))
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    if hidden:
        yield
    else:
        with saved:
            yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    record = step_record(
        model,
        trainable,
        None if hidden else saved.peak,
        None if hidden else saved.largest,
        batch=describe_batch(batches[0]),
        phases=[phase.name for phase in trainer.phases],
        precision=trainer.precision,
        device=str(device),
        max_steps=trainer.config.max_steps,
        micro_batches=len(batches),
        step_seconds=round(time.perf_counter() - started, 3),
        cuda_peak=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        cuda_available=torch.cuda.is_available(),  # a CPU run beside a GPU is worth a flag
    )
    log(record)
    memory = record["memory"]
    print(
        f"dry run: {record['model']} ({record['parameters']:,} parameters, "
        f"{record['trainable']:,} trained), batch {record['batch']}, about "
        f"{memory['total'] / 1e9:.2f} GB per training step at {record['precision']}",
        flush=True,
    )


def step_record(
    model: nn.Module,
    trainable: list[Tensor],
    activations: int | None,
    largest_saved: int | None,
    **details: Any,
) -> dict[str, Any]:
    """What a dry run records about one trainer: model, parameter counts, memory, `details`."""
    parameters = _unique(list(model.parameters()))
    return {
        "model": type(model).__name__,
        "parameters": sum(p.numel() for p in parameters),
        "trainable": sum(p.numel() for p in _unique(trainable)),
        "memory": step_memory(model, trainable, activations, largest_saved),
        **details,
    }


def log(record: dict[str, Any]) -> None:
    """Append `record` as one JSON line to $SSLM_DRY_RUN_LOG, if that is set."""
    path = os.environ.get(LOG_ENV_VAR)
    if path:
        with Path(path).open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, default=str) + "\n")
