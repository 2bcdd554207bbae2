"""The figures of 00_tour: the Shakespeare works, the digit images and the first baselines."""

from __future__ import annotations

from collections.abc import Sequence

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
