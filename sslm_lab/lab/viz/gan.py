"""The figures of 05_gan: the generator's gradient at the start, a GAN's training curves,
sample grids, mode coverage and Fréchet distance over training, class histograms, and
ELECTRA's replaced-token detection against its baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

DIGIT_CLASSES = list(range(10))


def plot_generator_gradients(
    d_fake: Sequence[float], gradients: Mapping[str, Sequence[float]]
) -> Figure:
    """d loss / d logit against D(G(z)) (log scale), one line per generator loss."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, values in gradients.items():
        ax.plot(d_fake, np.abs(np.asarray(values)), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("D(G(z)): the discriminator's belief that a fake is real")
    ax.set_ylabel("|d generator loss / d logit|")
    ax.set_title("The generator's gradient where training starts (left)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_gan_history(history: Sequence[Mapping[str, float]], window: int = 25) -> Figure:
    """Three panels against the step: both losses, D's accuracy on real and on fake, and
    both gradient norms; each curve a running mean over `window` of its values (the raw
    values are noisy, one batch each). Rows are the trainer's history of a GAN's two phases,
    "discriminator" and "generator": a phase's keys appear on the steps it ran."""
    panels = {
        "losses": ("discriminator/loss", "generator/loss"),
        "discriminator accuracy": ("discriminator/real_accuracy", "discriminator/fake_accuracy"),
        "gradient norm": ("discriminator/grad_norm", "generator/grad_norm"),
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, (title, keys) in zip(axes, panels.items(), strict=True):
        for key in keys:
            rows = [row for row in history if key in row]
            width = max(1, min(window, len(rows)))
            values = np.convolve([row[key] for row in rows], np.ones(width) / width, "valid")
            steps = [row["step"] for row in rows][width - 1 :]
            ax.plot(steps, values, label=key.replace("/", " ").replace("_", " "))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_ylim(-0.02, 1.02)
    axes[2].set_yscale("log")
    fig.tight_layout()
    return fig


def plot_sample_grids(grids: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Tiled sample grids side by side (NaN = gap), each titled by its name."""
    fig, axes = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 2.9), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items(), strict=True):
        ax.imshow(np.ma.masked_invalid(grid), cmap="gray_r", vmin=0, vmax=1)
        ax.set_facecolor("#dde3ea")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_coverage_and_distance(
    runs: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[float]]],
    real_distance: float | None = None,
) -> Figure:
    """Left: classes covered against the step; right: the classifier Fréchet distance (log
    scale). runs: name -> (saved steps, classes covered, distances); `real_distance`, the
    distance between two sets of real digits, is drawn as the floor."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, (steps, covered, distances) in runs.items():
        left.plot(steps, covered, marker="o", label=name)
        right.plot(steps, distances, marker="o", label=name)
    left.set_ylim(-0.3, 10.3)
    left.set_ylabel("classes covered (of 10)")
    right.set_yscale("log")
    right.set_ylabel("classifier Fréchet distance")
    if real_distance is not None:
        right.axhline(real_distance, color="grey", linestyle="--", label="real vs real")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_class_histograms(histograms: Mapping[str, Sequence[float]]) -> Figure:
    """One bar chart per run: the share of samples the classifier puts in each class;
    the dashed line is a tenth, every class equally often."""
    fig, axes = plt.subplots(
        1, len(histograms), figsize=(3.6 * len(histograms), 3), squeeze=False, sharey=True
    )
    for ax, (name, shares) in zip(axes[0], histograms.items(), strict=True):
        ax.bar(DIGIT_CLASSES, 100 * np.asarray(shares), color="#56b4e9")
        ax.axhline(10, color="grey", linestyle="--")
        ax.set_xticks(DIGIT_CLASSES)
        ax.set_xlabel("predicted class")
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_ylabel("share of samples (%)")
    fig.tight_layout()
    return fig


def plot_rtd_history(
    steps: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    baseline: Sequence[float] | float | Mapping[str, Sequence[float]],
    baseline_label: str = 'always "original"',
) -> Figure:
    """Accuracies (fractions) against the step, and the all-"original" baseline dashed
    (several, each with its label, when `baseline` maps labels to values)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, values in curves.items():
        ax.plot(steps, 100 * np.asarray(values), label=name)
    baselines = baseline if isinstance(baseline, Mapping) else {baseline_label: baseline}
    for (label, values), color in zip(baselines.items(), ("grey", "black", "silver"), strict=False):
        base = np.broadcast_to(100 * np.asarray(values, dtype=float), (len(steps),))
        ax.plot(steps, base, color=color, linestyle="--", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
