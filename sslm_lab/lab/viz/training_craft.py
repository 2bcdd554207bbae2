"""Figures of 03b_training_craft: schedules, the range test, loss curves of several runs,
gradient norms per layer, clipping, and the norm gains under weight decay."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Curve = tuple[Sequence[float], Sequence[float]]  # (x, y)


def _references(axes, references: Mapping[str, float]) -> None:
    styles = ("--", ":", "-.")
    for index, (name, value) in enumerate(references.items()):
        axes.axhline(value, color="grey", linestyle=styles[index % 3], linewidth=1, label=name)


def plot_schedules(schedules: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Learning rate against the update, one line per named schedule."""
    fig, axes = plt.subplots(figsize=(7, 3.2))
    for name, rates in schedules.items():
        axes.plot(range(len(rates)), rates, label=name)
    axes.set(xlabel="update", ylabel="learning rate", title=title)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_range_test(
    rates: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    marks: Mapping[str, float],
    references: Mapping[str, float],
) -> Figure:
    """Loss against the (log-scaled) rate of a range test; `marks` are rates drawn as
    vertical lines (the lowest smoothed loss, the rate chosen), `references` losses drawn
    as horizontal ones."""
    fig, axes = plt.subplots(figsize=(7, 3.8))
    axes.plot(rates, losses, color="#bbbbbb", linewidth=1, label="loss of each update")
    axes.plot(rates, smoothed, color="#0072b2", label="smoothed")
    for index, (name, rate) in enumerate(marks.items()):
        axes.axvline(rate, color=("#d55e00", "#009e73", "#cc79a7")[index % 3], label=name)
    _references(axes, references)
    top = max(max(smoothed), *references.values()) if references else max(smoothed)
    axes.set(xscale="log", xlabel="learning rate", ylabel="loss (nats per character)")
    axes.set_ylim(min(losses) - 0.2, top + 0.5)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_curves(
    curves: Mapping[str, Curve],
    references: Mapping[str, float] | None = None,
    *,
    title: str = "",
    ylabel: str = "training loss (nats per character)",
    log_y: bool = False,
    faint: Mapping[str, Curve] | None = None,
) -> Figure:
    """Several runs' curves against the step, reference levels dashed. `faint` curves
    (e.g. the single seeds behind a mean) are drawn thin in the colour of the curve
    whose name they start with."""
    fig, axes = plt.subplots(figsize=(7.5, 4))
    colours = {}
    for name, (x, y) in curves.items():
        (line,) = axes.plot(x, y, label=name)
        colours[name] = line.get_color()
    for name, (x, y) in (faint or {}).items():
        colour = next((c for key, c in colours.items() if name.startswith(key)), "grey")
        axes.plot(x, y, color=colour, alpha=0.3, linewidth=0.8)
    _references(axes, references or {})
    if log_y:
        axes.set_yscale("log")
    axes.set(xlabel="step", ylabel=ylabel, title=title)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_layer_gradient_norms(norms: Mapping[str, Sequence[float]]) -> Figure:
    """Gradient norm of each block's parameters against the block's depth, one line per model."""
    fig, axes = plt.subplots(figsize=(6, 3.5))
    for name, values in norms.items():
        axes.plot(range(1, len(values) + 1), values, marker="o", label=name)
    axes.set(
        xlabel="block (1 = next to the embeddings)",
        ylabel="gradient norm",
        yscale="log",
        title="Gradient norms at initialisation, one batch",
    )
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_clipping(
    grad_norms: Mapping[str, Curve], losses: Mapping[str, Curve], threshold: float
) -> Figure:
    """Left: the gradient norm before clipping of each run, with the clipping threshold.
    Right: the same runs' training losses."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, (x, y) in grad_norms.items():
        left.plot(x, y, label=name, linewidth=1)
    left.axhline(threshold, color="black", linestyle="--", linewidth=1, label="clip at")
    left.set(xlabel="step", ylabel="gradient norm before clipping", yscale="log")
    for name, (x, y) in losses.items():
        right.plot(x, y, label=name, linewidth=1)
    right.set(xlabel="step", ylabel="training loss (nats per character)")
    for axes in (left, right):
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_parameter_traces(traces: Mapping[str, Mapping[str, Curve]]) -> Figure:
    """One panel per traced quantity (e.g. "mean LayerNorm gain"), one line per run.

    traces: quantity -> run name -> (steps, values)."""
    fig, panels = plt.subplots(1, len(traces), figsize=(5 * len(traces), 3.6), squeeze=False)
    for axes, (quantity, runs) in zip(panels[0], traces.items(), strict=True):
        for name, (x, y) in runs.items():
            axes.plot(x, y, label=name)
        axes.set(xlabel="step", title=quantity)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_scalars(scalars: Mapping[str, Curve], columns: int = 3) -> Figure:
    """Small multiples, one per scalar tag (as TensorBoard lays them out)."""
    rows = math.ceil(len(scalars) / columns)
    fig, panels = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    flat = [axes for row in panels for axes in row]
    for axes, (tag, (x, y)) in zip(flat, scalars.items(), strict=False):
        axes.plot(x, y, linewidth=1)
        axes.set_title(tag, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.grid(alpha=0.3)
    for axes in flat[len(scalars) :]:
        axes.set_visible(False)
    fig.tight_layout()
    return fig
