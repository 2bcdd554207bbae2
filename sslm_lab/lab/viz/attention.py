"""The figures of 01_attention: masks, scores and attention weights drawn over the tokens,
why scores are scaled, how the attention paths scale, and one number per head."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from sslm_lab.lab.display import visible_token


def draw_token_matrix(
    ax: plt.Axes,
    matrix: np.ndarray,
    tokens: Sequence[str],
    *,
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    annotate: bool = False,
) -> None:
    """Draw a (queries, keys) matrix on `ax`: rows are the tokens that look, columns the
    tokens looked at, both labelled. `annotate=True` writes each value in its cell."""
    ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal")
    size = 9 if len(tokens) <= 30 else 8 if len(tokens) <= 60 else 6
    labels = [visible_token(token) for token in tokens]
    ax.set_xticks(range(len(tokens)), labels, rotation=90, fontsize=size)
    ax.set_yticks(range(len(tokens)), labels, fontsize=size)
    ax.set_xlabel("key (looked at)")
    ax.set_ylabel("query (looking)")
    if annotate:
        low, high = np.nanmin(matrix), np.nanmax(matrix)
        middle = (low + high) / 2
        for (row, column), value in np.ndenumerate(matrix):
            colour = "black" if value > middle else "white"  # readable on dark and light cells
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)


def plot_token_matrices(
    panels: dict[str, np.ndarray],
    tokens: Sequence[str],
    *,
    cmap: str = "viridis",
    shared_range: tuple[float, float] | None = (0.0, 1.0),
    annotate: bool = False,
) -> Figure:
    """Several (seq, seq) matrices over the same tokens side by side, one per title in
    `panels`: masks (True = may attend), scores or attention weights.

    shared_range: (vmin, vmax) for every panel, or None to scale each panel on its own
    (for scores, whose range changes from panel to panel)."""
    count = len(panels)
    side = min(2.0 + 0.35 * len(tokens), 6.0)
    fig, axes = plt.subplots(1, count, figsize=(side * count, side + 0.6), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], panels.items(), strict=True):
        matrix = np.asarray(matrix, dtype=float)
        vmin, vmax = shared_range if shared_range else (None, None)
        draw_token_matrix(ax, matrix, tokens, cmap=cmap, vmin=vmin, vmax=vmax, annotate=annotate)
        if shared_range is None:
            fig.colorbar(ax.images[-1], ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=10)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_attention_heatmap(tokens: Sequence[str], weights: np.ndarray, title: str = "") -> Figure:
    """One head's attention weights (seq, seq) as a heatmap: row i is how token i spreads
    its attention over the tokens (each row sums to 1)."""
    side = float(np.clip(1.5 + 0.3 * len(tokens), 4.0, 12.0))
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    draw_token_matrix(ax, np.asarray(weights, dtype=float), tokens)
    fig.colorbar(ax.images[-1], ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_softmax_saturation(
    head_dims: Sequence[int],
    max_weight: dict[str, Sequence[float]],
    entropy_bits: dict[str, Sequence[float]],
    keys: int,
) -> Figure:
    """Why divide by √d_k: the largest softmax weight and the entropy of the weights (bits)
    against the head dimension d_k, one line per label (e.g. scaled and unscaled scores).
    Dashed lines mark a uniform choice among `keys` keys."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label in max_weight:
        left.plot(head_dims, max_weight[label], marker="o", label=label)
        right.plot(head_dims, entropy_bits[label], marker="o", label=label)
    left.axhline(1 / keys, linestyle="--", color="grey", label=f"uniform over {keys} keys")
    right.axhline(np.log2(keys), linestyle="--", color="grey", label=f"uniform: {np.log2(keys):g}")
    left.set_ylim(0, 1.05)
    left.set_ylabel("largest attention weight (mean)")
    right.set_ylim(0, np.log2(keys) * 1.1)
    right.set_ylabel("entropy of the weights (bits, mean)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(head_dims), [str(d) for d in head_dims])
        ax.set_xlabel("head dimension $d_k$")
        ax.legend(fontsize=8)
    left.set_title("One key takes almost all the weight without scaling", fontsize=10)
    right.set_title("...and the choice stops being soft", fontsize=10)
    fig.tight_layout()
    return fig


def plot_attention_timings(
    seq_lens: Sequence[int], milliseconds: dict[str, Sequence[float]]
) -> Figure:
    """Milliseconds per forward + backward step against sequence length, one line per path."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, values in milliseconds.items():
        ax.plot(seq_lens, values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(plt.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xticks(list(seq_lens), [str(n) for n in seq_lens])
    ax.set_xlabel("sequence length")
    ax.set_ylabel("ms per forward + backward")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_head_grid(panels: dict[str, np.ndarray]) -> Figure:
    """One (layers, heads) table per title, stacked, values in [0, 1] written in each cell: a
    number per attention head, e.g. the mean weight it gives to the previous token."""
    count = len(panels)
    layers, heads = np.asarray(next(iter(panels.values()))).shape
    fig, axes = plt.subplots(
        count, 1, figsize=(0.55 * heads + 1.2, (0.45 * layers + 0.9) * count), squeeze=False
    )
    for ax, (title, grid) in zip(axes[:, 0], panels.items(), strict=True):
        grid = np.asarray(grid, dtype=float)
        ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0)
        for (layer, head), value in np.ndenumerate(grid):
            colour = "black" if value > 0.5 else "white"
            text = f"{value:.2f}".removeprefix("0")  # ".07": narrow enough for a cell
            ax.text(head, layer, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(heads))
        ax.set_yticks(range(layers))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
