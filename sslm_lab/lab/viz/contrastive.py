"""The figures of 06_contrastive: augmented views, probe curves, the temperature and
negatives studies, embedding maps and CPC's accuracy by horizon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from sslm_lab.lab.viz.tour import GENRE_COLOURS


def plot_augmentation_gallery(originals: np.ndarray, views: Mapping[str, np.ndarray]) -> Figure:
    """One row per image: the original (n, height, width), then each named view of it."""
    columns = {"original": originals, **views}
    rows = len(originals)
    fig, axes = plt.subplots(
        rows, len(columns), figsize=(1.15 * len(columns), 1.15 * rows + 0.3), squeeze=False
    )
    for column, (name, images) in enumerate(columns.items()):
        axes[0, column].set_title(name, fontsize=8)
        for row in range(rows):
            axes[row, column].imshow(images[row], cmap="gray_r", vmin=0, vmax=1)
            axes[row, column].axis("off")
    fig.tight_layout()
    return fig


def plot_probe_curves(
    labels_per_class: Sequence[str],
    accuracy: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
) -> Figure:
    """Test accuracy against labels per class, one line per method: (means, stds) each,
    the std drawn as an error bar. labels_per_class are the x tick labels ("1", "all")."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    positions = np.arange(len(labels_per_class))
    for index, (method, (means, stds)) in enumerate(accuracy.items()):
        shifted = positions + 0.06 * (index - (len(accuracy) - 1) / 2)  # error bars apart
        means, stds = 100 * np.asarray(means), 100 * np.asarray(stds)
        ax.errorbar(shifted, means, stds, marker="o", capsize=3, label=method)
    ax.set_xticks(positions, labels_per_class)
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_temperature_study(
    temperatures: Sequence[float],
    probe_accuracy: Sequence[float],
    alignment: Sequence[float],
    uniformity: Sequence[float],
    probe_label: str,
) -> Figure:
    """Left: probe accuracy against τ (log scale). Right: each τ as a point in Wang & Isola's
    plane, alignment against uniformity (both: lower is better), labelled with its τ."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(temperatures, 100 * np.asarray(probe_accuracy), marker="o")
    left.set_xscale("log")
    left.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
    left.set_xlabel("temperature τ")
    left.set_ylabel(f"{probe_label} (%)")
    left.set_title("Probe accuracy against the temperature", fontsize=10)
    scatter = right.scatter(
        uniformity, alignment, c=np.log(temperatures), cmap="viridis", s=40, zorder=3
    )
    for t, u, a in zip(temperatures, uniformity, alignment, strict=True):
        right.annotate(f"τ={t:g}", (u, a), textcoords="offset points", xytext=(5, 4), fontsize=8)
    right.set_xlabel("uniformity (lower: spread over the sphere)")
    right.set_ylabel("alignment (lower: views closer)")
    right.set_title("What each temperature buys", fontsize=10)
    scatter.set_clim(np.log(min(temperatures)), np.log(max(temperatures)))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_accuracy_against(
    values: Sequence[float],
    accuracy: Sequence[float],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
) -> Figure:
    """Accuracy (fractions, shown in %) against one setting; `reference` (e.g. chance) is a
    dashed line."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(values, 100 * np.asarray(accuracy), marker="o")
    if reference is not None:
        ax.axhline(100 * reference, color="grey", linestyle="--", label=reference_label or None)
        if reference_label:
            ax.legend(fontsize=8)
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_embedding_maps(points: Mapping[str, np.ndarray], genres: Sequence[str]) -> Figure:
    """One scatter per encoder of 2-D points (n, 2), each point coloured by its genre."""
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 4), squeeze=False)
    colours = [GENRE_COLOURS.get(genre, "grey") for genre in genres]
    for ax, (name, xy) in zip(axes[0], points.items(), strict=True):
        ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=6, alpha=0.6)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    present = [genre for genre in GENRE_COLOURS if genre in set(genres)]
    handles = [plt.Line2D([], [], marker="o", ls="", color=GENRE_COLOURS[g]) for g in present]
    axes[0, -1].legend(handles, present, fontsize=8, loc="best")
    fig.tight_layout()
    return fig
