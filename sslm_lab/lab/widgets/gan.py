"""The training replay of 05_gan: a slider over the saved steps, the samples at that step.

A GAN's samples are drawn from the same fixed noise at every saved step, so the replay
shows one set of generator inputs turning from blur into digits (or collapsing onto a
few). `sample_grid` tiles a batch of images into one array, `replay_frame` picks a saved
step's grid and its caption; `training_replay` is the widget over them.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from sslm_lab.checks import check_int, invalid
from sslm_lab.lab.display import figure_png


def sample_grid(images: torch.Tensor | np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Tile images (n, height, width) into one array, `columns` per row, row-major.

    Tiles are separated by `gap` pixels of NaN (drawn as background); a last row that is
    not full is padded with NaN too. Returns (rows * (height + gap) - gap,
    columns * (width + gap) - gap) float64.
    """
    check_int("columns", columns, low=1)
    check_int("gap", gap, low=0)
    array = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    if array.ndim != 3 or len(array) == 0:
        raise invalid("images.shape", array.shape, "(n, height, width) with n >= 1")
    count, height, width = array.shape
    rows = -(-count // columns)  # ceiling division
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for index, image in enumerate(array):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = image
    return grid


def replay_frame(
    snapshots: Mapping[int, torch.Tensor | np.ndarray],
    step: int,
    diagnostics: Mapping[int, Mapping[str, float]] | None = None,
    columns: int = 8,
) -> tuple[np.ndarray, str]:
    """The grid of the samples saved at `step`, and a caption with that step's diagnostics.

    snapshots: saved step -> images (n, 8, 8) drawn from the same noise every time;
    diagnostics: saved step -> {name: value}, printed in the caption in their order.
    """
    if step not in snapshots:
        raise invalid("step", step, f"one of the saved steps {sorted(snapshots)}")
    values = (diagnostics or {}).get(step, {})
    caption = ", ".join(
        [f"step {step:,}"] + [f"{name} {value:.3g}" for name, value in values.items()]
    )
    return sample_grid(snapshots[step], columns), caption


def grid_figure(grid: np.ndarray, title: str = "") -> Figure:
    """One tiled grid, drawn in grey (ink dark), without axes."""
    figure = Figure(figsize=(4, 4 * grid.shape[0] / grid.shape[1] + 0.3))
    axes = figure.add_subplot()
    axes.imshow(np.ma.masked_invalid(grid), cmap="gray_r", vmin=0, vmax=1)
    axes.set_facecolor("#dde3ea")
    axes.axis("off")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def training_replay(
    snapshots: Mapping[int, torch.Tensor | np.ndarray],
    diagnostics: Mapping[int, Mapping[str, float]] | None = None,
    columns: int = 8,
    step: int | None = None,
) -> widgets.VBox:
    """A slider over the saved steps; the samples and diagnostics at the chosen step.

    A view over `replay_frame` and `grid_figure`. Children, in order: the step
    (SelectionSlider over the saved steps), the grid (Image, PNG) and the caption (HTML).
    `step` is where the slider starts (default: the last saved step).
    """
    steps = sorted(snapshots)
    if not steps:
        raise invalid("snapshots", {}, "at least one saved step")
    start = steps[-1] if step is None else step
    if start not in snapshots:
        raise invalid("step", start, f"one of the saved steps {steps}")
    slider = widgets.SelectionSlider(options=steps, value=start, description="step")
    image = widgets.Image(format="png")
    caption = widgets.HTML()

    def render(_change: object = None) -> None:
        grid, text = replay_frame(snapshots, slider.value, diagnostics, columns)
        image.value = figure_png(grid_figure(grid))
        caption.value = f"<p>{text}</p>"

    slider.observe(render, names="value")
    render()
    return widgets.VBox([slider, image, caption])
