"""The schedule explorer's pure functions and its widget without a kernel; 03b's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.viz.training_craft import (
    plot_clipping,
    plot_layer_gradient_norms,
    plot_loss_curves,
    plot_parameter_traces,
    plot_range_test,
    plot_scalars,
    plot_schedules,
)
from sslm_lab.lab.widgets.training_craft import (
    ScheduleSweep,
    schedule_explorer,
    sweep_caption,
    sweep_view,
)
from sslm_lab.training.lr_range import learning_rate_schedule

RATES, WARMUPS, SCHEDULES = (1e-3, 1e-2), (0, 3), ("cosine", "linear", "constant")


def make_sweep(steps: int = 10) -> ScheduleSweep:
    losses = {}
    for i, rate in enumerate(RATES):
        for warmup in WARMUPS:
            for j, schedule in enumerate(SCHEDULES):
                # distinct, falling curves; the 1e-3 / warmup 3 / linear run ends lowest
                end = 1.0 + i + (0 if warmup == 3 else 0.5) + (0 if schedule == "linear" else j + 1)
                losses[(rate, warmup, schedule)] = [end + (steps - s) / steps for s in range(steps)]
    return ScheduleSweep(steps, RATES, WARMUPS, SCHEDULES, losses)


def test_the_sweep_gives_each_runs_curve_and_rates() -> None:
    sweep = make_sweep()
    assert sweep.curve(1e-2, 0, "constant")[-1] == pytest.approx(1.0 + 1 + 0.5 + 3 + 0.1)
    assert sweep.rates(1e-3, 3, "cosine") == learning_rate_schedule(1e-3, 10, 3, "cosine", 1e-4)


def test_the_sweep_refuses_settings_it_did_not_train() -> None:
    sweep = make_sweep()
    with pytest.raises(ArgumentError, match=r"peak_lr=0.5 .* the sweep trained only these"):
        sweep.curve(0.5, 0, "cosine")
    with pytest.raises(ArgumentError, match=r"warmup_steps=7"):
        sweep.curve(1e-3, 7, "cosine")
    with pytest.raises(ArgumentError, match=r"schedule='step'"):
        sweep.curve(1e-3, 0, "step")
    incomplete = dict(make_sweep().losses)
    incomplete.pop((1e-3, 0, "cosine"))
    with pytest.raises(ArgumentError, match="every setting of the grid"):
        ScheduleSweep(10, RATES, WARMUPS, SCHEDULES, incomplete)


def test_sweep_view_draws_the_schedule_and_every_run() -> None:
    sweep = make_sweep()
    fig = sweep_view(sweep, 1e-3, 3, "linear")
    left, right = fig.axes
    assert list(left.lines[0].get_ydata()) == pytest.approx(sweep.rates(1e-3, 3, "linear"))
    assert len(right.lines) == len(sweep.losses)  # the others faint, the chosen one on top
    assert list(right.lines[-1].get_ydata()) == sweep.curve(1e-3, 3, "linear")
    plt.close(fig)


def test_sweep_caption_names_the_best_run() -> None:
    caption = sweep_caption(make_sweep(), 1e-2, 0, "constant")
    assert caption.startswith("loss over the last tenth of the run: 5.600")
    assert "best in the sweep: 1.100 (peak 0.001, warmup 3, linear)" in caption


def test_schedule_explorer_rerenders_without_a_kernel() -> None:
    sweep = make_sweep()
    view = schedule_explorer(sweep, peak_lr=1e-2, warmup_steps=3, schedule="constant")
    rate, warmup, schedule, image, caption = view.children
    assert (rate.value, warmup.value, schedule.value) == (1e-2, 3, "constant")
    first_png, first_caption = bytes(image.value), caption.value
    assert first_png.startswith(b"\x89PNG")
    rate.value = 1e-3
    schedule.value = "linear"
    assert bytes(image.value) != first_png and caption.value != first_caption
    assert "1.100" in caption.value
    default = schedule_explorer(sweep)
    assert default.children[0].value == RATES[0] and default.children[1].value == WARMUPS[0]


def test_every_figure_is_a_figure() -> None:
    curve = ([1, 2, 3], [3.0, 2.0, 1.5])
    figures = [
        plot_schedules({"cosine": [0.1, 0.2, 0.1]}),
        plot_range_test(
            [1e-4, 1e-3, 1e-2], [4.0, 3.0, 5.0], [4.0, 3.5, 4.0], {"chosen": 1e-3}, {"start": 4.4}
        ),
        plot_loss_curves({"a": curve}, {"unigram": 2.0}, faint={"a seed 1": curve}),
        plot_layer_gradient_norms({"pre-LN": [1.0, 0.5], "post-LN": [0.1, 0.2]}),
        plot_clipping({"a": curve}, {"a": curve}, threshold=1.0),
        plot_parameter_traces({"gain": {"a": curve}, "bias": {"a": curve}}),
        plot_scalars({"lm/loss": curve, "lm/lr": curve}),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        plt.close(fig)
    faint = plot_loss_curves({"a": curve}, faint={"a seed 1": curve, "other": curve})
    colours = [line.get_color() for line in faint.axes[0].lines]
    assert colours[1] == colours[0] and colours[2] == "grey"
    plt.close(faint)
