"""The figures of 09_known_language: the language's matrices, training curves against the
exact optimum, and accuracy against labels or pretraining steps with the optimum on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

Band = tuple[Sequence[float], Sequence[float], Sequence[float]]  # (means, lows, highs)


def plot_language(transitions: np.ndarray, emissions: np.ndarray) -> Figure:
    """Each dialect's transition matrix (K, S, S) as a heatmap, and the emission matrix
    (S, V) with the words ordered by the class that emits them most."""
    transitions, emissions = np.asarray(transitions), np.asarray(emissions)
    dialects = len(transitions)
    fig, axes = plt.subplots(
        1,
        dialects + 1,
        figsize=(2.6 * dialects + 5, 3),
        gridspec_kw={"width_ratios": [1] * dialects + [2.2]},
    )
    top = float(transitions.max())
    for k, ax in enumerate(axes[:-1]):
        image = ax.imshow(transitions[k], cmap="Blues", vmin=0, vmax=top)
        ax.set_title(f"dialect {k}: A(from, to)", fontsize=9)
        ax.set_xlabel("next class")
        ax.set_ylabel("class" if k == 0 else "")
    fig.colorbar(image, ax=axes[dialects - 1], fraction=0.046)
    order = np.lexsort((-emissions.max(0), emissions.argmax(0)))
    image = axes[-1].imshow(emissions[:, order], cmap="Oranges", aspect="auto")
    axes[-1].set_title("emissions B(class, word)", fontsize=9)
    axes[-1].set_xlabel("word (grouped by its most likely class)")
    fig.colorbar(image, ax=axes[-1], fraction=0.046)
    fig.tight_layout()
    return fig


def plot_limit_curves(
    panels: Mapping[str, tuple[Sequence[int], Sequence[float], Mapping[str, float]]],
) -> Figure:
    """One panel per model: its held-out loss (nats per token) against training steps, and
    a horizontal line per reference (the exact optimum first, drawn solid, then baselines)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (name, (steps, losses, references)) in zip(axes[0], panels.items(), strict=True):
        ax.plot(steps, losses, marker=".", color="C0", label=f"{name}, held out")
        for index, (label, value) in enumerate(references.items()):
            style = "-" if index == 0 else "--"
            ax.axhline(value, linestyle=style, color=f"C{index + 1}", linewidth=1.2, label=label)
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.set_ylabel("nats per token")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_accuracy_bands(
    xs: Sequence[float],
    bands: Mapping[str, Band],
    references: Mapping[str, float | Sequence[float]],
    title: str = "",
    xlabel: str = "labelled sequences",
    per_seed: Mapping[str, np.ndarray] | None = None,
    log_x: bool = True,
) -> Figure:
    """One line per system with its interval as a band (means, lows, highs at each x), the
    per-seed values as dots when given ((seeds, len(xs)) each), and the references: a
    number is a horizontal line (the first, the optimum, solid and on top), a sequence one
    value per x (a baseline fitted on the same labels), dashed. x on a log axis if `log_x`."""
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for index, (name, (means, lows, highs)) in enumerate(bands.items()):
        color = f"C{index % 10}"
        ax.plot(xs, means, marker="o", color=color, label=name)
        ax.fill_between(xs, lows, highs, color=color, alpha=0.15, linewidth=0)
        if per_seed is not None and name in per_seed:
            for row in np.asarray(per_seed[name]):
                ax.scatter(xs, row, color=color, s=8, alpha=0.5)
    for index, (name, value) in enumerate(references.items()):
        if np.ndim(value) == 0:
            style = {"linestyle": "-", "linewidth": 2.0} if index == 0 else {"linestyle": ":"}
            ax.axhline(float(value), color="black" if index == 0 else "grey", label=name, **style)
        else:
            ax.plot(xs, value, linestyle="--", color="grey", marker="x", label=name)
    if log_x:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return fig
