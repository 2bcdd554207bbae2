"""Figures for any training run, whatever its objective: the metrics of a history against
the step, and labelled bars against a baseline (02_masked_lm and later notebooks)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def plot_history(history: list[dict[str, float]], keys: Sequence[str] | None = None) -> Figure:
    """Plot metrics against the step; by default every key containing "loss".

    Returns a matplotlib Figure (not drawn through pyplot, so a notebook shows it once).
    """
    if keys is None:
        keys = sorted({key for row in history for key in row if "loss" in key})
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for key in keys:
        points = [(row["step"], row[key]) for row in history if key in row]
        if not points:
            present = sorted({name for row in history for name in row})
            raise KeyError(f"no history row has {key!r}; keys present: {present}")
        steps, values = zip(*points, strict=True)
        sparse = len(points) < len(history) / 2  # evaluations: show the points
        axes.plot(steps, values, marker="o" if sparse else None, label=key)
    axes.set_xlabel("step")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_bars(
    values: dict[str, float],
    *,
    ylabel: str,
    title: str = "",
    reference: float | None = None,
    reference_label: str = "",
    percent: bool = True,
) -> Figure:
    """One bar per name, its value written on top; `reference` is a dashed line (a baseline).

    percent=True shows fractions in [0, 1] as percentages."""
    scale = 100 if percent else 1
    fig, ax = plt.subplots(figsize=(1.3 * len(values) + 2.5, 3.6))
    names = list(values)
    heights = [scale * values[name] for name in names]
    ax.bar(names, heights, color="#56b4e9")
    for i, height in enumerate(heights):
        ax.text(i, height, f"{height:.1f}" + (" %" if percent else ""), ha="center", va="bottom")
    if reference is not None:
        ax.axhline(scale * reference, color="grey", linestyle="--", label=reference_label or None)
        if reference_label:
            ax.legend(fontsize=8, loc="upper left")
    ax.set_ylabel(ylabel + (" (%)" if percent else ""))
    ax.set_ylim(0, max(heights + [scale * (reference or 0)]) * 1.15)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
