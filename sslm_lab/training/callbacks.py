"""Everything around a training step that is not the step: speed, early stopping, progress.

The loop in `sslm_lab.training.trainer` calls a callback at four points, handing it the
trainer as a `Run` (the little of it a callback reads, and `stop_reason`, which it sets):

    on_fit_start(trainer)          fit() begins, after any resume
    on_evaluate(trainer, metrics)  eval_fn has just run (its metrics are in the row too)
    on_step_end(trainer, row)      a step is done; `row` holds its metrics, speed and
                                   evaluation, and is about to join trainer.history
    on_fit_end(trainer)            fit() ends, also when it raises

A plain function `callback(trainer, row)` in `TrainerConfig.callbacks` runs as an
`on_step_end`. Setting `trainer.stop_reason` stops training after the current step.

A callback whose state must survive a resume names a `state_key`: the checkpoint keeps
its `state_dict()` under that key and hands it back to `load_state_dict()`.

The trainer builds the built-ins from its TrainerConfig:

- `EarlyStopping`: stops when an eval metric has stopped improving;
- `ProgressBar`: the tqdm bar and the trainer's messages;
- `TensorBoard`: every row as scalars, if tensorboard is installed.

and runs them as EarlyStopping, your callbacks, ProgressBar, TensorBoard, so that
yours see early stopping's decision and the bar shows what yours added.

`Throughput` is not a callback but a helper the trainer calls itself, right after each
step and before any evaluation: items/s and MFU in every row, and `trainer.summary()`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from sslm_lab.training.hardware import model_flops_utilization, peak_flops


class Run(Protocol):
    """The trainer as a callback sees it: where the run stands, and a way to stop it."""

    step: int  # optimizer steps completed
    max_steps: int  # where fit() stops
    phase_names: Sequence[str]  # in the order they run each step
    stop_reason: str | None  # set it to stop training after the current step


StepFunction = Callable[[Run, dict[str, float]], None]


class Callback:
    """Hooks the training loop calls; override the ones you need (each does nothing here)."""

    state_key: str | None = None  # where a checkpoint keeps state_dict(); None: nothing to keep

    def on_fit_start(self, trainer: Run) -> None:
        """fit() begins (after any resume, so trainer.step may be > 0)."""

    def on_evaluate(self, trainer: Run, metrics: dict[str, float]) -> None:
        """eval_fn has run; `metrics` are its results as floats (rank 0's under torchrun)."""

    def on_step_end(self, trainer: Run, row: dict[str, float]) -> None:
        """A step is done: `row` is complete and goes into trainer.history next."""

    def on_fit_end(self, trainer: Run) -> None:
        """fit() ends, normally or by an exception."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (with a state_key): plain values and tensors only, as
        state.pt is loaded with weights_only=True."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what `state_dict` returned when the checkpoint was written."""


class FunctionCallback(Callback):
    """A plain `callback(trainer, row)`, called after every step."""

    def __init__(self, function: StepFunction) -> None:
        self.function = function

    def on_step_end(self, trainer: Run, row: dict[str, float]) -> None:
        self.function(trainer, row)


def as_callback(callback: Callback | StepFunction) -> Callback:
    """`callback` itself if it is a Callback, else the function wrapped as an on_step_end."""
    return callback if isinstance(callback, Callback) else FunctionCallback(callback)


class Throughput:
    """Items per second and model FLOPs utilization (MFU) of every step, from its step_ms.

    Items are tokens when the batch holds integer token ids, else samples, counted over
    the global batch: under torchrun the rate is that of all processes together, and
    MFU compares it with the peak of all their GPUs. MFU needs `model.flops_per_token`
    and a GPU in the peak-FLOPs table; otherwise the row has no "mfu".
    """

    def __init__(self, device: torch.device, precision: str, tf32: bool, world_size: int) -> None:
        peak = peak_flops(device, precision, tf32)
        self.peak = None if peak is None else peak * world_size
        self.unit = "samples"  # of the latest step: "tokens" or "samples"
        self._flops_per_token: dict[int | None, float | None] = {}

    def measure(
        self,
        row: dict[str, float],
        batch_items: list[tuple[str, int, int | None]],
        model: nn.Module,
    ) -> None:
        """Add the step's rate (`tokens_per_s` or `samples_per_s`) and MFU to its `row`;
        `batch_items` are `batches.count_items` of each micro-batch."""
        self.unit, _, seq_len = batch_items[0]
        rate = sum(count for _, count, _ in batch_items) / (row["step_ms"] / 1000)
        row[f"{self.unit}_per_s"] = rate
        flops = self._model_flops_per_token(model, seq_len) if self.unit == "tokens" else None
        mfu = model_flops_utilization(rate, flops, self.peak)
        if mfu is not None:
            row["mfu"] = mfu

    def _model_flops_per_token(self, model: nn.Module, seq_len: int | None) -> float | None:
        """Training FLOPs per token from `model.flops_per_token`, if the model has one."""
        if seq_len not in self._flops_per_token:
            estimate = getattr(model, "flops_per_token", None)
            self._flops_per_token[seq_len] = float(estimate(seq_len=seq_len)) if estimate else None
        return self._flops_per_token[seq_len]

    def summary(
        self, history: list[dict[str, float]], steps: int, skipped_steps: int, skip_first: int = 1
    ) -> dict[str, Any]:
        """Mean speed over the steps in `history`, leaving out the first `skip_first`."""
        rows = [row for row in history if "step_ms" in row][skip_first:]
        if not rows:
            return {"steps": steps, "skipped_steps": skipped_steps}
        seconds = sum(row["step_ms"] for row in rows) / 1000
        key = f"{self.unit}_per_s"
        items = sum(row[key] * row["step_ms"] / 1000 for row in rows if key in row)
        mfus = [row["mfu"] for row in rows if "mfu" in row]
        return {
            "steps": steps,
            "skipped_steps": skipped_steps,
            "ms_per_step": 1000 * seconds / len(rows),
            key: items / seconds,
            "mfu": sum(mfus) / len(mfus) if mfus else "unknown",
        }


class EarlyStopping(Callback):
    """Stop once `metric` has not improved for `patience` evaluations in a row.

    `mode` "min" means lower is better (a loss), "max" higher (an accuracy). The best
    value and the count of evaluations since go into checkpoints, so a resumed run
    stops where the uninterrupted one would have.
    """

    state_key = "early_stopping"

    def __init__(self, metric: str, patience: int, mode: str) -> None:
        self.metric, self.patience, self.mode = metric, patience, mode
        self.best: float | None = None
        self.bad_evals = 0

    def on_evaluate(self, trainer: Run, metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            raise ValueError(
                f"TrainerConfig.early_stopping_metric: got {self.metric!r}, but eval_fn returned "
                f"only {sorted(metrics)}"
            )
        value = metrics[self.metric]
        minimize = self.mode == "min"
        if self.best is None or (value < self.best if minimize else value > self.best):
            self.best, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            trainer.stop_reason = (
                f"early stopping at step {trainer.step}: {self.metric} has not improved on "
                f"{self.best:.4g} for {self.bad_evals} evaluations"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_evals = state["best"], state["bad_evals"]


class ProgressBar(Callback):
    """The tqdm bar with each phase's loss, items/s and MFU; and the trainer's messages.

    `enabled` is False on every rank but 0 and with TrainerConfig(progress=False).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def on_fit_start(self, trainer: Run) -> None:
        # Pass disable= only to silence: an explicit disable=False would override TQDM_DISABLE.
        # tqdm.notebook (what tqdm.auto picks in Jupyter) ignores TQDM_DISABLE: check it here.
        silent = not self.enabled or bool(os.environ.get("TQDM_DISABLE"))
        quiet = {"disable": True} if silent else {}
        total = trainer.max_steps
        self._bar = tqdm(total=total, initial=trainer.step, desc="training", **quiet)

    def on_step_end(self, trainer: Run, row: dict[str, float]) -> None:
        postfix = {
            name: f"{row[f'{name}/loss']:.4f}"
            for name in trainer.phase_names
            if f"{name}/loss" in row
        }
        for unit in ("tokens", "samples"):
            if f"{unit}_per_s" in row:
                postfix[f"{unit}/s"] = f"{row[f'{unit}_per_s']:,.0f}"
        if "mfu" in row:
            postfix["mfu"] = f"{100 * row['mfu']:.1f}%"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_fit_end(self, trainer: Run) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def write(self, message: str) -> None:
        """Print `message` on its own line, above the bar if one is running."""
        if self.enabled:
            tqdm.write(message)


class TensorBoard(Callback):
    """Every number of every row as a TensorBoard scalar at that step (rank 0 only).

    tensorboard is an optional dependency: without it, fit() warns once and goes on
    with trainer.history alone.
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def on_fit_start(self, trainer: Run) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warnings.warn(
                "TrainerConfig.tensorboard=True, but tensorboard is not installed "
                "(pip install 'sslm_lab[tensorboard]'); metrics go to trainer.history only",
                stacklevel=3,  # the caller of fit()
            )
            return
        self._writer = SummaryWriter(str(self.log_dir))

    def on_step_end(self, trainer: Run, row: dict[str, float]) -> None:
        if self._writer is None:
            return
        for key, value in row.items():
            if key != "step":
                self._writer.add_scalar(key, value, trainer.step)

    def on_fit_end(self, trainer: Run) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
