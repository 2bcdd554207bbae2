"""The schedule explorer of 03b_training_craft: pick a peak rate, a warmup and a schedule,
see the rates the trainer would use and the loss of that run, read from a sweep trained
beforehand (nothing trains inside the widget)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from sslm_lab.checks import ArgumentError, check_choice
from sslm_lab.lab.display import figure_png
from sslm_lab.training.lr_range import learning_rate_schedule

Setting = tuple[float, int, str]  # (peak rate, warmup steps, schedule)


@dataclass(frozen=True)
class ScheduleSweep:
    """Training losses of whole short runs over a grid of peak rate × warmup × schedule.

    `losses[(peak_lr, warmup_steps, schedule)]` is that run's training loss at each of its
    `max_steps` steps; every run decays to `min_ratio` × its peak.
    """

    max_steps: int
    peak_rates: tuple[float, ...]
    warmups: tuple[int, ...]
    schedules: tuple[str, ...]
    losses: dict[Setting, list[float]] = field(repr=False)
    min_ratio: float = 0.1

    def __post_init__(self) -> None:
        expected = {
            (r, w, s) for r in self.peak_rates for w in self.warmups for s in self.schedules
        }
        if set(self.losses) != expected:
            missing = sorted(expected - set(self.losses), key=str)
            raise ArgumentError(f"losses must hold every setting of the grid; missing {missing}")

    def curve(self, peak_lr: float, warmup_steps: int, schedule: str) -> list[float]:
        """The training losses of one run of the grid (a setting outside it is refused)."""
        check_choice("peak_lr", peak_lr, self.peak_rates, hint="the sweep trained only these")
        check_choice(
            "warmup_steps", warmup_steps, self.warmups, hint="the sweep trained only these"
        )
        check_choice("schedule", schedule, self.schedules)
        return self.losses[(peak_lr, warmup_steps, schedule)]

    def rates(self, peak_lr: float, warmup_steps: int, schedule: str) -> list[float]:
        """The learning rate of each step of that run, as the trainer set it."""
        return learning_rate_schedule(
            peak_lr, self.max_steps, warmup_steps, schedule, self.min_ratio * peak_lr
        )


def sweep_view(sweep: ScheduleSweep, peak_lr: float, warmup_steps: int, schedule: str) -> Figure:
    """Left: the chosen run's learning rate per step. Right: its training loss, bold, over
    the losses of every other run of the sweep, faint."""
    chosen = sweep.curve(peak_lr, warmup_steps, schedule)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(range(1, sweep.max_steps + 1), sweep.rates(peak_lr, warmup_steps, schedule))
    left.set(xlabel="step", ylabel="learning rate", title=f"{schedule}, warmup {warmup_steps}")
    top = max(sweep.peak_rates)
    left.set_ylim(0, 1.05 * top)
    for setting, losses in sweep.losses.items():
        if setting != (peak_lr, warmup_steps, schedule):
            right.plot(range(1, len(losses) + 1), losses, color="grey", alpha=0.15, linewidth=0.8)
    right.plot(range(1, len(chosen) + 1), chosen, color="#d55e00", linewidth=2)
    right.set(xlabel="step", ylabel="training loss", title=f"peak rate {peak_lr:.2g}")
    for axes in (left, right):
        axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def sweep_caption(sweep: ScheduleSweep, peak_lr: float, warmup_steps: int, schedule: str) -> str:
    """One line: the run's loss over its last steps, and the grid's best run by the same."""

    def tail(losses: Sequence[float]) -> float:
        last = losses[-max(1, len(losses) // 10) :]  # the last tenth, less noisy than one step
        return sum(last) / len(last)

    ours = tail(sweep.curve(peak_lr, warmup_steps, schedule))
    best = min(sweep.losses, key=lambda setting: tail(sweep.losses[setting]))
    rate, warmup, shape = best
    return (
        f"loss over the last tenth of the run: {ours:.3f}; best in the sweep: "
        f"{tail(sweep.losses[best]):.3f} (peak {rate:.2g}, warmup {warmup}, {html.escape(shape)})"
    )


def schedule_explorer(
    sweep: ScheduleSweep,
    peak_lr: float | None = None,
    warmup_steps: int | None = None,
    schedule: str = "cosine",
) -> widgets.VBox:
    """Pick a peak rate, a warmup and a schedule; see the schedule and that run's loss.

    A view over `sweep_view` and `sweep_caption`. Children, in order: peak rate and warmup
    (SelectionSliders over the sweep's values; None starts at the first), schedule
    (ToggleButtons), the figure (Image, PNG) and the caption (HTML).
    """
    rate_slider = widgets.SelectionSlider(
        options=[(f"{rate:.2g}", rate) for rate in sweep.peak_rates],
        value=sweep.peak_rates[0] if peak_lr is None else peak_lr,
        description="peak rate",
    )
    warmup_slider = widgets.SelectionSlider(
        options=list(sweep.warmups),
        value=sweep.warmups[0] if warmup_steps is None else warmup_steps,
        description="warmup",
    )
    schedule_buttons = widgets.ToggleButtons(
        options=list(sweep.schedules), value=schedule, description="schedule"
    )
    image = widgets.Image(format="png")
    caption = widgets.HTML()
    controls = (rate_slider, warmup_slider, schedule_buttons)

    def render(_change: object = None) -> None:
        setting = tuple(control.value for control in controls)
        image.value = figure_png(sweep_view(sweep, *setting))
        caption.value = f"<p>{sweep_caption(sweep, *setting)}</p>"

    for control in controls:
        control.observe(render, names="value")
    render()
    return widgets.VBox([*controls, image, caption])
