"""Choosing a learning rate: the range test, the rule that reads it, and the schedule a run follows.

    test = lr_range_test(model, loss_fn, batch_fn, min_lr=1e-5, max_lr=1.0, steps=200)
    rate = suggest_lr(test)              # a tenth of the rate at the lowest smoothed loss
    rates = learning_rate_schedule(rate, max_steps=300, warmup_steps=30)   # what the
                                         # trainer will use at each update of that run

The range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017,
section 3.3) trains a throwaway copy of the model for a few hundred updates while the
rate grows exponentially from `min_lr` to `max_lr`, one value per update, and records
the loss. At first the rate is too small to move anything; then the loss falls; past
some rate the updates overshoot and the loss stops falling and climbs. Training at the
rate where it was falling fastest, or a little below where it bottomed out, is a good
first guess. A single noisy batch can fake a minimum, so the rule reads a smoothed loss
(an exponential moving average, bias-corrected as Adam corrects its moments).

The loop is written out here, not run through `Trainer`: its rate changes every update
in a way no schedule of the trainer's describes. It uses what the trainer uses: AdamW
with decay on matrices only (`adamw_param_groups`), the same loss function shape
`loss_fn(module, batch, step) -> (loss, metrics)`, a sampler `batch_fn(step, generator)`
and clipping of the global gradient norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab.checks import check_choice, check_int, check_real
from sslm_lab.training.trainer import SCHEDULES, adamw_param_groups, lr_multiplier

LossFn = Callable[[nn.Module, Any, int], tuple[Tensor, dict[str, Any]]]


@dataclass(frozen=True)
class RangeTest:
    """What `lr_range_test` measured: one entry per update taken, in order.

    `smoothed` is the bias-corrected moving average of `losses` with weight `smoothing`
    on the past. `stopped` says why the test ended before `max_lr`, or is None.
    """

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    smoothing: float
    stopped: str | None = None

    @property
    def lowest(self) -> int:
        """Index of the update with the lowest smoothed loss."""
        return min(range(len(self.smoothed)), key=self.smoothed.__getitem__)


def exponential_rates(min_lr: float, max_lr: float, steps: int) -> list[float]:
    """`steps` rates from `min_lr` to `max_lr` (both included), equally spaced in log."""
    check_real("min_lr", min_lr, low=0, low_open=True)
    check_real("max_lr", max_lr, low=min_lr, low_open=True, hint="above min_lr")
    check_int("steps", steps, low=2)
    ratio = max_lr / min_lr
    return [min_lr * ratio ** (i / (steps - 1)) for i in range(steps)]


def smooth(values: list[float], smoothing: float) -> list[float]:
    """Bias-corrected exponential moving average: the average of value i is
    sum_j (1 - s) s^(i - j) x_j / (1 - s^(i + 1)), so the first equals the first value."""
    check_real("smoothing", smoothing, low=0, high=1, high_open=True)
    average, out = 0.0, []
    for i, value in enumerate(values):
        average = smoothing * average + (1 - smoothing) * value
        out.append(average / (1 - smoothing ** (i + 1)))
    return out


def lr_range_test(
    module: nn.Module,
    loss_fn: LossFn,
    batch_fn: Callable[[int, torch.Generator], Any],
    *,
    min_lr: float = 1e-5,
    max_lr: float = 1.0,
    steps: int = 200,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    smoothing: float = 0.9,
    stop_factor: float = 4.0,
    seed: int = 0,
) -> RangeTest:
    """Train `module` in place with AdamW while the rate rises from min_lr to max_lr.

    Update i uses rate `exponential_rates(min_lr, max_lr, steps)[i]` on the batch
    `batch_fn(i, generator)` (the generator on the module's device, seeded with `seed`).
    The test stops early once the loss is not finite or the smoothed loss exceeds
    `stop_factor` times the lowest smoothed loss so far: the rates above have diverged.
    The module is left trained (and perhaps wrecked): pass a fresh model you will throw
    away, then train a new one at the rate chosen.
    """
    rates = exponential_rates(min_lr, max_lr, steps)
    check_real("weight_decay", weight_decay, low=0)
    check_real("grad_clip", grad_clip, low=0, low_open=True, allow_none=True)
    check_real("stop_factor", stop_factor, low=1, low_open=True)
    check_real("smoothing", smoothing, low=0, high=1, high_open=True)
    check_int("seed", seed, low=0)
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("lr_range_test: the module has no parameters with requires_grad=True")
    device = parameters[0].device
    optimizer = torch.optim.AdamW(
        adamw_param_groups(module, weight_decay), lr=rates[0], betas=betas
    )
    generator = torch.Generator(device=device).manual_seed(seed)
    losses: list[float] = []
    smoothed: list[float] = []
    average, stopped = 0.0, None
    module.train()
    for step, rate in enumerate(rates):
        for group in optimizer.param_groups:
            group["lr"] = rate
        loss, _ = loss_fn(module, batch_fn(step, generator), step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            stopped = f"the loss was {value} at rate {rate:.3g} (update {step})"
            break
        losses.append(value)
        average = smoothing * average + (1 - smoothing) * value  # as in `smooth`
        smoothed.append(average / (1 - smoothing ** len(losses)))
        if smoothed[-1] > stop_factor * min(smoothed):
            stopped = (
                f"the smoothed loss {smoothed[-1]:.3g} passed {stop_factor:g}× its lowest, "
                f"{min(smoothed):.3g}, at rate {rate:.3g} (update {step})"
            )
            break
    if not losses:
        raise ValueError(f"lr_range_test: {stopped}; start from a lower min_lr")
    return RangeTest(rates[: len(losses)], losses, smoothed, smoothing, stopped)


def suggest_lr(test: RangeTest, divide_by: float = 10.0) -> float:
    """The rate at the lowest smoothed loss, divided by `divide_by` (10: the usual rule).

    At the lowest point the rate is already too large to keep improving (the loss is
    about to turn up), and the test got there with a model warmed up by every smaller
    rate; a tenth of it leaves room for a fresh model and for a whole run at that rate.
    """
    check_real("divide_by", divide_by, low=1)
    return test.rates[test.lowest] / divide_by


def learning_rate_schedule(
    peak_lr: float,
    max_steps: int,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    min_lr: float = 0.0,
) -> list[float]:
    """The rate of each of a run's `max_steps` updates, as the trainer sets it for a
    `Phase(lr=peak_lr, warmup_steps=..., schedule=..., min_lr=...)` with every=1.

    Linear warmup to `peak_lr` over `warmup_steps` updates, then "cosine" or "linear"
    decay to `min_lr` at the last update, or "constant" (`trainer.lr_multiplier`).
    """
    check_real("peak_lr", peak_lr, low=0, low_open=True)
    check_int("max_steps", max_steps, low=1)
    check_int(
        "warmup_steps",
        warmup_steps,
        low=0,
        high=max_steps,
        hint=f"a warmup cannot be longer than the run of max_steps={max_steps} updates",
    )
    check_choice("schedule", schedule, SCHEDULES)
    check_real("min_lr", min_lr, low=0, high=peak_lr, hint="at most peak_lr")
    return [
        peak_lr
        * lr_multiplier(
            update,
            warmup_steps=warmup_steps,
            decay_steps=max_steps,
            schedule=schedule,
            min_ratio=min_lr / peak_lr,
        )
        for update in range(max_steps)
    ]
