"""The figures of 07_fine_tuning: accuracy against labels, against parameters trained,
and train against val accuracy while a model overfits a few labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_accuracy_vs_labels(
    budgets: Sequence[str],
    accuracy: Mapping[str, Sequence[float]],
    baselines: Mapping[str, float],
    title: str = "",
) -> Figure:
    """One line per run name (accuracy at each budget, tick labels `budgets`), and one
    dashed horizontal line per baseline (a number that does not depend on the budget)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    positions = np.arange(len(budgets))
    for name, values in accuracy.items():
        ax.plot(positions, values, marker="o", label=name)
    for index, (name, value) in enumerate(baselines.items()):
        ax.axhline(value, linestyle="--", color=f"C{7 + index % 3}", linewidth=1, label=name)
    ax.set_xticks(positions, budgets)
    ax.set_xlabel("labelled passages per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_parameters(
    points: Sequence[tuple[str, int, float]], title: str = ""
) -> Figure:
    """(name, parameters trained, accuracy) points, the parameters on a log axis."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for index, (name, trained, value) in enumerate(points):
        ax.scatter(trained, value, color=f"C{index % 10}")
        ax.annotate(name, (trained, value), fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters trained")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_overfitting(curves: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[float]]]):
    """One panel per run: (steps, train accuracy, val accuracy) against steps."""
    fig, axes = plt.subplots(
        1, len(curves), figsize=(3 * len(curves), 3), squeeze=False, sharey=True
    )
    for ax, (name, (steps, train, val)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(steps, train, marker=".", label="train")
        ax.plot(steps, val, marker=".", label="val")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
