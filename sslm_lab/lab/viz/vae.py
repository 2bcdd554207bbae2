"""The figures of 04_vae: the ELBO's two terms during training, the latent map and the
decoded manifold of a 2-D latent, images in a row, the rate-distortion curve, and the KL of
the sentence VAEs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    """A running mean over `window` steps (one-sample ELBO terms are noisy)."""
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_elbo_terms(
    steps: Sequence[int],
    reconstruction: Sequence[float],
    kl: Sequence[float],
    window: int = 20,
    title: str = "",
) -> Figure:
    """The two terms of the ELBO per step: -log p(x|z) (the distortion) and KL(q||p) (the
    rate), both nats per example, smoothed over `window` steps; their sum is -ELBO."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    kept = np.asarray(steps)[max(0, min(window, len(steps)) - 1) :]
    distortion = _smooth([-value for value in reconstruction], window)
    rate = _smooth(kl, window)
    axes[0].plot(kept, distortion, label="-log p(x|z)")
    axes[0].plot(kept, distortion + rate, label="-ELBO = sum", linestyle="--")
    axes[0].set_ylabel("nats per example")
    axes[0].legend(fontsize=8)
    axes[1].plot(kept, rate, color="C2")
    axes[1].set_ylabel("KL(q(z|x) || p(z)), nats")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_latent_map(
    means: np.ndarray, labels: Sequence[int], grid: np.ndarray | None = None, extent: float = 3.0
) -> Figure:
    """Left: the posterior means (n, 2) of test images, coloured by their class. Right, with
    `grid` (rows, columns, h, w): the images decoded on a grid over [-extent, extent]²."""
    columns = 1 if grid is None else 2
    fig, axes = plt.subplots(1, columns, figsize=(5.2 * columns, 4.6), squeeze=False)
    ax = axes[0, 0]
    labels = np.asarray(labels)
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(*means[chosen].T, s=10, color=plt.cm.tab10(digit), label=str(digit))
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title("posterior means of the test digits", fontsize=10)
    ax.legend(fontsize=7, markerscale=1.5, ncol=2, loc="upper right", title="class")
    ax.grid(alpha=0.3)
    if grid is not None:
        rows, cols, height, width = grid.shape
        sheet = np.ones((rows * (height + 1) - 1, cols * (width + 1) - 1))
        for r in range(rows):
            for c in range(cols):
                top, left = r * (height + 1), c * (width + 1)
                sheet[top : top + height, left : left + width] = 1 - grid[r, c]  # dark ink
        axes[0, 1].imshow(sheet, cmap="gray", vmin=0, vmax=1, extent=(-extent, extent) * 2)
        axes[0, 1].set_xlabel("z1")
        axes[0, 1].set_ylabel("z2")
        axes[0, 1].set_title("decoded on a grid of z (the mean image)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_image_rows(rows: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """One row of images (n, h, w) in [0, 1] per name; the name is written on its left."""
    width = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(
        len(rows), width, figsize=(0.9 * width + 1, 0.95 * len(rows) + 0.4), squeeze=False
    )
    for row, (name, images) in enumerate(rows.items()):
        for column in range(width):
            ax = axes[row, column]
            ax.set_xticks([])
            ax.set_yticks([])
            if column < len(images):
                ax.imshow(images[column], cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_rate_distortion(
    rates: Sequence[float], distortions: Sequence[float], betas: Sequence[float]
) -> Figure:
    """The rate-distortion curve of β-VAEs: KL (rate) against -log p(x|z) (distortion), both
    nats per example on test images, one point per β, with the line rate + distortion = the
    best -ELBO among them for reference."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(rates, distortions, marker="o")
    for rate, distortion, beta in zip(rates, distortions, betas, strict=True):
        ax.annotate(f"β = {beta:g}", (rate, distortion), textcoords="offset points", xytext=(6, 4))
    best = min(r + d for r, d in zip(rates, distortions, strict=True))
    span = np.linspace(0, max(rates) * 1.05, 50)
    ax.plot(
        span, best - span, linestyle="--", color="grey", label=f"rate + distortion = {best:.1f}"
    )
    ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats")
    ax.set_ylabel("distortion: -log p(x|z), nats")
    ax.set_ylim(min(distortions) - 5, max(distortions) + 5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("β trades reconstruction for a cheaper code", fontsize=10)
    fig.tight_layout()
    return fig


def plot_kl_curves(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], window: int = 20
) -> Figure:
    """The KL term during training, one line per run: name -> (steps, KL in nats), smoothed."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, (steps, kl) in curves.items():
        smoothed = _smooth(kl, window)
        ax.plot(np.asarray(steps)[len(steps) - len(smoothed) :], smoothed, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("KL(q(z|x) || p(z)), nats per line")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
