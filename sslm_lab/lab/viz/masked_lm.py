"""The figures of 02_masked_lm: the masked-LM training history against the unigram guess."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


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
