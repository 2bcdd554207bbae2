"""Matplotlib figures shared by the notebooks. Each function returns its Figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

GENRE_COLOURS = {
    "comedy": "#e69f00",
    "history": "#56b4e9",
    "tragedy": "#d55e00",
    "poetry": "#009e73",
}


def plot_work_lengths(titles: Sequence[str], genres: Sequence[str], chars: Sequence[int]) -> Figure:
    """Horizontal bars of each work's length in characters, grouped and coloured by genre."""
    rank = {genre: i for i, genre in enumerate(GENRE_COLOURS)}
    order = sorted(range(len(titles)), key=lambda i: (rank.get(genres[i], len(rank)), -chars[i]))
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(titles) + 1))
    ax.barh(
        [titles[i] for i in order],
        [chars[i] / 1000 for i in order],
        color=[GENRE_COLOURS.get(genres[i], "grey") for i in order],
    )
    ax.invert_yaxis()
    ax.set_xlabel("thousand characters")
    ax.tick_params(axis="y", labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in GENRE_COLOURS.values()]
    ax.legend(handles, GENRE_COLOURS.keys(), loc="lower right")
    ax.set_title("Length of each work, by genre")
    fig.tight_layout()
    return fig


def plot_image_grid(images: np.ndarray, labels: Sequence[int], columns: int) -> Figure:
    """A grid of greyscale images (n, height, width) with their labels as titles."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.25 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(str(int(label)), fontsize=9)
    fig.tight_layout()
    return fig


def plot_baselines(bits_per_char: dict[str, float], reference: float | None = None) -> Figure:
    """Bar chart of bits per character per model; `reference` draws a dashed line (e.g. log2 V)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    names = list(bits_per_char)
    ax.bar(names, [bits_per_char[name] for name in names], color="#56b4e9")
    for i, name in enumerate(names):
        ax.text(i, bits_per_char[name], f"{bits_per_char[name]:.2f}", ha="center", va="bottom")
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="grey", label=f"uniform: {reference:.2f}")
        ax.set_ylim(0, reference * 1.2)
        ax.legend(loc="upper right")
    ax.set_ylabel("bits per character (val)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- attention


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
    labels = [token.replace(" ", "·").replace("\n", "⏎") for token in tokens]  # visible spaces
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


# ---------------------------------------------------------------------------- causal language models


def visible_token(token: str) -> str:
    """A token with its spaces and newlines made visible (· and ⏎)."""
    return token.replace(" ", "·").replace("\n", "⏎")


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
    colours = matplotlib.colors.ListedColormap(["#f7f7f7", "#9ecae1", "#fdae6b"])
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
    right.set_title("...but the model's own probabilities (T = 1) fit real text best", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xlabel("temperature T")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- masked language models


def plot_masked_lm_history(
    history: Sequence[dict[str, float]], unigram_loss: float, unigram_accuracy: float
) -> Figure:
    """Left: MLM loss per training step (train, faint) and at each evaluation (val), in
    nats per hidden token. Right: val masked-token accuracy. The unigram guess, which
    ignores the context, is the dotted line on both."""
    train = [(row["step"], row["mlm/loss"]) for row in history if "mlm/loss" in row]
    val = [
        (row["step"], row["val/loss"], row["val/accuracy"]) for row in history if "val/loss" in row
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(
        *zip(*train, strict=True), color="C0", alpha=0.35, linewidth=0.8, label="train (batch)"
    )
    left.plot([s for s, _, _ in val], [v for _, v, _ in val], "o-", color="C0", label="val")
    left.axhline(
        unigram_loss, color="grey", linestyle=":", label=f"unigram guess {unigram_loss:.2f}"
    )
    left.set_ylabel("MLM loss (nats per hidden token)")
    left.set_title("Loss at the hidden tokens", fontsize=10)
    right.plot([s for s, _, _ in val], [100 * a for _, _, a in val], "o-", color="C1", label="val")
    right.axhline(
        100 * unigram_accuracy,
        color="grey",
        linestyle=":",
        label=f"unigram guess {100 * unigram_accuracy:.1f} %",
    )
    right.set_ylabel("masked-token accuracy (%)")
    right.set_ylim(bottom=0)
    right.set_title("How often the top guess is the hidden token", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
