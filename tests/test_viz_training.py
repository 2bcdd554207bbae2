"""`plot_history`: any run's metrics against the step, and what it refuses."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from sslm_lab.lab.viz.training import plot_history

# A run as the trainer logs it: a loss every step, a val loss at two evaluations only.
HISTORY = [{"step": s, "lm/loss": 3.0 - s / 10, "lm/accuracy": s / 20} for s in range(1, 11)]
HISTORY[4]["val/loss"] = 2.7
HISTORY[9]["val/loss"] = 2.3


def test_plot_history_draws_every_loss_by_default_one_line_per_key() -> None:
    figure = plot_history(HISTORY)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    assert [line.get_label() for line in axes.lines] == ["lm/loss", "val/loss"]
    assert list(axes.lines[0].get_xdata()) == list(range(1, 11))
    assert list(axes.lines[1].get_xdata()) == [5, 10]
    assert axes.lines[1].get_ydata() == pytest.approx([2.7, 2.3])
    assert axes.get_xlabel() == "step"


def test_plot_history_draws_the_keys_asked_for_in_order() -> None:
    figure = plot_history(HISTORY, keys=["lm/accuracy", "lm/loss"])
    assert [line.get_label() for line in figure.axes[0].lines] == ["lm/accuracy", "lm/loss"]


def test_plot_history_marks_the_points_of_sparse_keys_only() -> None:
    dense, sparse = plot_history(HISTORY).axes[0].lines
    assert dense.get_marker() == "None"
    assert sparse.get_marker() == "o"


def test_plot_history_names_the_keys_present_for_an_unknown_key() -> None:
    with pytest.raises(KeyError, match=r"no history row has 'nope'; keys present: \['lm/accuracy'"):
        plot_history(HISTORY, keys=["lm/loss", "nope"])
