"""The figures of 03_autoregressive_lm: teacher forcing, learning curves and the effect of
the temperature."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from sslm_lab.lab.display import visible_token


def plot_teacher_forcing(tokens: Sequence[str]) -> Figure:
    """Teacher forcing under the causal mask, for the tokens of one short text.

    Row t is the prediction made at position t: it may read the blue tokens 0 .. t and is
    scored on the orange one, token t + 1, the true next token (not the model's own
    guess). Every row is a training example, and all of them are computed in one pass.
    """
    n = len(tokens) - 1  # predictions: the last token is never read, the first never predicted
    grid = np.zeros((n, n + 1))
    for row in range(n):
        grid[row, : row + 1] = 1.0  # may see
        grid[row, row + 1] = 2.0  # must predict
    colours = ListedColormap(["#f7f7f7", "#9ecae1", "#fdae6b"])
    fig, ax = plt.subplots(figsize=(0.42 * (n + 1) + 1.6, 0.4 * n + 1.4))
    ax.imshow(grid, cmap=colours, vmin=0, vmax=2)
    for row in range(n):
        for column in range(row + 2):
            weight = "bold" if column == row + 1 else "normal"
            text = visible_token(tokens[column])
            ax.text(column, row, text, ha="center", va="center", fontweight=weight)
    ax.set_xticks(range(n + 1), [str(t) for t in range(n + 1)], fontsize=8)
    ax.set_yticks(range(n), [str(t) for t in range(n)], fontsize=8)
    ax.set_xlabel("token position")
    ax.set_ylabel("prediction at position t")
    ax.set_title("Row t reads the blue tokens and must predict the orange one", fontsize=10)
    fig.tight_layout()
    return fig


def plot_learning_curves(
    runs: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    baselines: dict[str, float] | None = None,
    *,
    ylabel: str = "bits per character",
    title: str = "",
) -> Figure:
    """Train (dashed) and val (solid) curves per run, the gap between them shaded.

    runs: name -> (steps, train values, val values). baselines: name -> value, drawn as
    dotted horizontal lines labelled at the right edge (e.g. n-gram bits per character).
    """
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for index, (name, (steps, train, val)) in enumerate(runs.items()):
        colour = f"C{index}"
        ax.plot(steps, val, color=colour, marker="o", markersize=3, label=f"{name} · val")
        ax.plot(steps, train, color=colour, linestyle="--", label=f"{name} · train")
        ax.fill_between(steps, train, val, color=colour, alpha=0.12)
    edge = ax.get_yaxis_transform()  # x in axes fractions, y in data: labels beside the plot
    for name, value in (baselines or {}).items():
        ax.axhline(value, color="grey", linestyle=":", linewidth=1)
        ax.text(1.01, value, f"{name} {value:.2f}", transform=edge, va="center", color="dimgrey")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_temperature_effect(
    temperatures: Sequence[float],
    sample_entropy: Sequence[float],
    val_bits: Sequence[float],
    *,
    unit: str = "character",
) -> Figure:
    """Left: mean entropy (bits) of the distribution each sampled token was drawn from,
    against the temperature. Right: the model's val bits per `unit` when its probabilities
    are taken at that temperature; T = 1 (the trained model itself) is marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(temperatures, sample_entropy, marker="o")
    left.set_ylabel(f"entropy of the next-{unit} distribution (bits)")
    left.set_title("Higher temperature: a more uncertain draw at every step", fontsize=10)
    right.plot(temperatures, val_bits, marker="o", color="C1")
    right.axvline(1.0, color="grey", linestyle="--", label="T = 1: the trained model")
    right.set_ylabel(f"val bits per {unit}")
    right.set_title("The model's probabilities taken at temperature T, on real text", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xlabel("temperature T")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
