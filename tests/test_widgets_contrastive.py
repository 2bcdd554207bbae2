"""The embedding explorer's pure function and its widget without a kernel; 06's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.contrastive import (
    plot_accuracy_against,
    plot_augmentation_gallery,
    plot_embedding_maps,
    plot_probe_curves,
    plot_temperature_study,
)
from sslm_lab.lab.widgets.contrastive import embedding_explorer, nearest_lines, neighbours_html

LINES = ["the king is dead", "long live the king", "a horse, a horse", "my kingdom for a horse"]
WORKS = ["Hamlet", "Hamlet", "Richard III", "Richard III"]


def bag_of_letters(lines: list[str]) -> torch.Tensor:
    """A stand-in encoder: letter counts, so lines sharing letters are close."""
    counts = torch.zeros(len(lines), 26)
    for row, line in enumerate(lines):
        for char in line:
            if char.isalpha():
                counts[row, ord(char) - ord("a")] += 1
    return counts


def reversed_letters(lines: list[str]) -> torch.Tensor:
    return bag_of_letters(lines).flip(1) + torch.arange(26.0)


@pytest.fixture
def pool() -> torch.Tensor:
    return bag_of_letters(LINES)


def test_nearest_lines_ranks_by_cosine_and_skips_the_query_itself(pool) -> None:
    found = nearest_lines("a horse, a horse", bag_of_letters, LINES, pool, WORKS, k=3)
    assert [line for line, _, _ in found][0] == "my kingdom for a horse"
    assert "a horse, a horse" not in [line for line, _, _ in found]
    similarities = [similarity for _, _, similarity in found]
    assert similarities == sorted(similarities, reverse=True)
    expected = torch.nn.functional.cosine_similarity(
        bag_of_letters(["a horse, a horse"]), pool[3:4]
    )
    assert similarities[0] == pytest.approx(float(expected))
    assert found[0][1] == "Richard III"
    assert len(nearest_lines("a horse", bag_of_letters, LINES, pool, WORKS, k=10)) == 4


def test_nearest_lines_refuses_bad_input(pool) -> None:
    with pytest.raises(ArgumentError, match=r"k=0 .*>= 1"):
        nearest_lines("king", bag_of_letters, LINES, pool, WORKS, k=0)
    with pytest.raises(ArgumentError, match=r"query='  ' "):
        nearest_lines("  ", bag_of_letters, LINES, pool, WORKS)
    with pytest.raises(ArgumentError, match=r"len\(lines\), len\(works\), len\(embeddings\)"):
        nearest_lines("king", bag_of_letters, LINES, pool, WORKS[:3])


def test_neighbours_html_escapes() -> None:
    text = neighbours_html("<b>", [("a & b", "Lear", 0.5)])
    assert "&lt;b&gt;" in text and "a &amp; b" in text and "<i>Lear</i>" in text
    assert "0.500" in text


def test_explorer_updates_without_a_kernel(pool) -> None:
    encoders = {
        "letters": (bag_of_letters, pool),
        "reversed": (reversed_letters, reversed_letters(LINES)),
    }
    view = embedding_explorer(encoders, LINES, WORKS, "the king", suggestions=LINES[:2], k=2)
    encoder, line, k, output = view.children
    assert list(line.options) == LINES[:2]
    first = output.value
    assert "<b>the king</b>" in first and first.count("<tr>") == 3  # header + 2 neighbours
    k.value = 3
    assert output.value.count("<tr>") == 4
    line.value = "a horse"
    assert "<b>a horse</b>" in output.value
    before = output.value
    encoder.value = "reversed"
    assert output.value != before
    line.value = " "
    assert "not allowed" in output.value


def test_figures_of_notebook_06() -> None:
    images = np.random.default_rng(0).random((3, 8, 8))
    gallery = plot_augmentation_gallery(images, {"crop": images, "noise": images})
    assert len(gallery.axes) == 9 and gallery.axes[0].get_title() == "original"
    curves = plot_probe_curves(
        ["1", "5", "all"],
        {"SimCLR": ([0.7, 0.8, 0.9], [0.01, 0.02, 0.0]), "raw": ([0.6] * 3, [0] * 3)},
    )
    assert len(curves.axes[0].containers) == 2  # one error-bar line per method
    study = plot_temperature_study(
        [0.1, 0.5, 1.0], [0.8, 0.85, 0.7], [0.5, 0.8, 1.0], [-3, -2, -1], "probe"
    )
    assert len(study.axes) >= 2
    negatives = plot_accuracy_against(
        [0, 256],
        [0.5, 0.6],
        xlabel="queue",
        ylabel="acc",
        title="t",
        reference=0.1,
        reference_label="chance",
    )
    assert len(negatives.axes[0].lines) == 2
    maps = plot_embedding_maps({"a": images[0, :, :2], "b": images[1, :, :2]}, ["comedy"] * 8)
    assert len(maps.axes) == 2
    assert figure_png(maps).startswith(b"\x89PNG")
    plt.close("all")
