"""The training replay's pure functions and its widget without a kernel; 05's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.viz.gan import (
    plot_class_histograms,
    plot_coverage_and_distance,
    plot_gan_history,
    plot_generator_gradients,
    plot_rtd_history,
    plot_sample_grids,
)
from sslm_lab.lab.widgets.gan import grid_figure, replay_frame, sample_grid, training_replay


def snapshots() -> dict[int, torch.Tensor]:
    """Three saved steps; at step s every pixel of image i is (s / 200 + i / 10) % 1."""
    return {
        step: torch.stack([torch.full((8, 8), (step / 200 + i / 10) % 1) for i in range(5)])
        for step in (0, 50, 100)
    }


def test_sample_grid_places_each_image_row_major_with_gaps() -> None:
    images = torch.arange(5.0)[:, None, None].expand(5, 2, 3)  # image i is all i
    grid = sample_grid(images, columns=2, gap=1)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    assert (grid[0:2, 0:3] == 0).all() and (grid[0:2, 4:7] == 1).all()
    assert (grid[3:5, 0:3] == 2).all() and (grid[6:8, 0:3] == 4).all()
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all(), "gaps are NaN"
    assert np.isnan(grid[6:8, 4:7]).all(), "the missing sixth tile is empty"
    assert sample_grid(images.numpy(), columns=5, gap=0).shape == (2, 15)


def test_sample_grid_refuses_bad_input() -> None:
    with pytest.raises(ArgumentError, match="images.shape"):
        sample_grid(torch.zeros(8, 8))
    with pytest.raises(ArgumentError, match="columns"):
        sample_grid(torch.zeros(2, 8, 8), columns=0)


def test_replay_frame_gives_the_saved_steps_grid_and_caption() -> None:
    saved = snapshots()
    diagnostics = {50: {"classes covered": 7, "Fréchet distance": 12.345}}
    grid, caption = replay_frame(saved, 50, diagnostics, columns=5)
    assert np.array_equal(grid, sample_grid(saved[50], 5), equal_nan=True)
    assert caption == "step 50, classes covered 7, Fréchet distance 12.3"
    assert replay_frame(saved, 0)[1] == "step 0", "no diagnostics: the step alone"
    with pytest.raises(ArgumentError, match=r"step=60 .*saved steps \[0, 50, 100\]"):
        replay_frame(saved, 60)


def test_the_replay_widget_follows_its_slider_without_a_kernel() -> None:
    saved = snapshots()
    view = training_replay(saved, {100: {"entropy bits": 3.0}})
    slider, image, caption = view.children
    assert list(slider.options) == [0, 50, 100] and slider.value == 100
    assert caption.value == "<p>step 100, entropy bits 3</p>"
    last_png = image.value
    assert last_png[:8] == b"\x89PNG\r\n\x1a\n"
    slider.value = 0
    assert caption.value == "<p>step 0</p>" and bytes(image.value) != bytes(last_png)
    started_early = training_replay(saved, step=50)
    assert started_early.children[0].value == 50
    with pytest.raises(ArgumentError, match="step"):
        training_replay(saved, step=7)
    with pytest.raises(ArgumentError, match="snapshots"):
        training_replay({})


def test_the_figures_draw() -> None:
    grid = sample_grid(snapshots()[50], 5)
    history = [  # the trainer's rows of a GAN whose generator runs every other step
        {
            "step": s,
            "discriminator/loss": 1.0,
            "discriminator/real_accuracy": 0.6,
            "discriminator/fake_accuracy": 0.5,
            "discriminator/grad_norm": 0.5,
            **({"generator/loss": 0.7, "generator/grad_norm": 0.2} if s % 2 else {}),
        }
        for s in range(1, 41)
    ]
    figures = [
        grid_figure(grid, "a title"),
        plot_generator_gradients([1e-4, 1e-2, 0.5], {"minimax": [-1e-4, -1e-2, -0.5]}),
        plot_gan_history(history, window=10),
        plot_sample_grids({"a": grid, "b": grid}, title="two"),
        plot_coverage_and_distance({"run": ([0, 10], [1, 9], [300.0, 20.0])}, real_distance=2.0),
        plot_class_histograms({"run": np.full(10, 0.1)}),
        plot_rtd_history([10, 20], {"RTD": [0.8, 0.9]}, [0.85, 0.86]),
    ]
    assert len(figures[2].axes) == 3 and len(figures[3].axes) == 2
    rtd_lines = figures[-1].axes[0].get_lines()
    assert [line.get_label() for line in rtd_lines] == ["RTD", 'always "original"']
    assert list(rtd_lines[1].get_ydata()) == [85.0, 86.0]
    two = plot_rtd_history([10, 20], {"RTD": [0.8, 0.9]}, {"a": [0.8, 0.8], "b": [0.9, 0.7]})
    assert [line.get_label() for line in two.axes[0].get_lines()] == ["RTD", "a", "b"]
    assert list(two.axes[0].get_lines()[2].get_ydata()) == [90.0, 70.0]
    figures.append(two)
    for figure in figures:
        plt.close(figure)
