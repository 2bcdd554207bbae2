"""The latent explorer's pure functions and its widget without a kernel; 04's figures."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.vae import (
    plot_elbo_terms,
    plot_image_rows,
    plot_kl_curves,
    plot_latent_map,
    plot_rate_distortion,
)
from sslm_lab.lab.widgets.vae import (
    decode_point,
    images_png,
    interpolate,
    interpolation_strip,
    latent_explorer,
    latent_grid,
)


def decode(z: torch.Tensor) -> torch.Tensor:
    """A stand-in decoder: an 8x8 image whose pixel (0, 0) is sigmoid(z1), (7, 7) sigmoid(z2)."""
    images = torch.zeros(len(z), 8, 8)
    images[:, 0, 0] = z[:, 0].sigmoid()
    images[:, 7, 7] = z[:, 1].sigmoid()
    return images


def encode(images: torch.Tensor) -> torch.Tensor:
    """A stand-in encoder, the inverse of `decode` on its two pixels."""
    return torch.stack([images[:, 0, 0].logit(), images[:, 7, 7].logit()], dim=1)


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_decode_point_gives_the_decoders_image() -> None:
    image = decode_point(decode, [0.0, 2.0])
    assert image.shape == (8, 8)
    assert image[0, 0] == pytest.approx(0.5) and image[7, 7] == pytest.approx(
        torch.tensor(2.0).sigmoid().item()
    )
    with pytest.raises(ArgumentError, match=r"point=\[\]"):
        decode_point(decode, [])


def test_interpolate_runs_straight_from_start_to_end() -> None:
    start, end = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    path = interpolate(start, end, 5)
    assert path.shape == (5, 2)
    torch.testing.assert_close(path[0], start)
    torch.testing.assert_close(path[-1], end)
    torch.testing.assert_close(path[2], (start + end) / 2)
    steps = path.diff(dim=0)
    torch.testing.assert_close(steps, steps[:1].expand_as(steps))  # even spacing
    with pytest.raises(ArgumentError, match=r"steps=1 "):
        interpolate(start, end, 1)
    with pytest.raises(ArgumentError, match=r"start.shape, end.shape"):
        interpolate(start, torch.zeros(3), 4)


def test_interpolation_strip_ends_at_the_two_reconstructions() -> None:
    first, second = decode(torch.tensor([[-1.0, 1.0]]))[0], decode(torch.tensor([[2.0, 0.0]]))[0]
    strip = interpolation_strip(encode, decode, first, second, steps=4)
    assert strip.shape == (4, 8, 8)
    np.testing.assert_allclose(strip[0], first.numpy(), atol=1e-6)
    np.testing.assert_allclose(strip[-1], second.numpy(), atol=1e-6)
    assert np.all(np.diff(strip[:, 0, 0]) > 0)  # z1 rises from -1 to 2 along the way


def test_latent_grid_reads_like_an_image() -> None:
    grid = latent_grid(-1.0, 1.0, 3)
    assert grid.shape == (9, 2)
    torch.testing.assert_close(grid[0], torch.tensor([-1.0, 1.0]))  # top left: low z1, high z2
    torch.testing.assert_close(grid[2], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(grid[-1], torch.tensor([1.0, -1.0]))
    with pytest.raises(ArgumentError, match=r"low, high=\(1.0, 1.0\)"):
        latent_grid(1.0, 1.0, 3)
    with pytest.raises(ArgumentError, match=r"points=1 "):
        latent_grid(-1.0, 1.0, 1)


def test_images_png_scales_and_inks() -> None:
    images = np.zeros((2, 8, 8))
    images[0, 0, 0] = 1.0  # one black pixel in the first image
    pixels = png_pixels(images_png(images, scale=3, gap=1))
    assert pixels.shape == (8 * 3, (2 * 8 + 1) * 3)
    assert pixels[0, 0] == 0 and pixels[2, 2] == 0 and pixels[3, 3] == 255
    assert png_pixels(images_png(images[0], scale=1)).shape == (8, 8)
    with pytest.raises(ArgumentError, match=r"images.shape"):
        images_png(np.zeros((0, 8, 8)))
    with pytest.raises(ArgumentError, match=r"scale=0 "):
        images_png(images, scale=0)


def test_explorer_updates_without_a_kernel() -> None:
    images = decode(torch.tensor([[-1.0, 1.0], [2.0, 0.0], [0.0, -2.0]]))
    view = latent_explorer(encode, decode, images, [3, 5, 7], first=0, second=1, steps=4)
    top, picks, caption, strip_view = view.children
    sliders, point_view = top.children
    z1, z2 = sliders.children
    first, second, steps = picks.children
    assert (z1.value, z2.value) == pytest.approx((-1.0, 1.0))  # starts at the first digit's code
    before = point_view.value
    z1.value = 2.5
    assert point_view.value != before
    assert png_pixels(point_view.value).shape == (8 * 16, 8 * 16)
    assert png_pixels(strip_view.value).shape[1] == (4 * 8 + 3) * 8
    assert "#0 (a 3)" in caption.value and "#1 (a 5)" in caption.value
    second.value = 2
    assert "#2 (a 7)" in caption.value
    steps.value = 6
    assert png_pixels(strip_view.value).shape[1] == (6 * 8 + 5) * 8
    with pytest.raises(ArgumentError, match=r"len\(images\), len\(labels\)"):
        latent_explorer(encode, decode, images, [3, 5])
    with pytest.raises(ArgumentError, match=r"latent size=3"):
        latent_explorer(lambda x: torch.zeros(len(x), 3), decode, images, [3, 5, 7])


def test_figures_of_notebook_04() -> None:
    rng = np.random.default_rng(0)
    steps = list(range(50))
    terms = plot_elbo_terms(steps, -rng.random(50) - 50, rng.random(50), window=5)
    assert len(terms.axes) == 2 and len(terms.axes[0].lines) == 2
    assert len(terms.axes[0].lines[0].get_xdata()) == 46  # 50 steps, smoothed over 5
    means, labels = rng.normal(size=(40, 2)), np.arange(40) % 10
    assert len(plot_latent_map(means, labels).axes) == 1
    with_grid = plot_latent_map(means, labels, grid=rng.random((3, 3, 8, 8)))
    assert len(with_grid.axes) == 2 and with_grid.axes[1].images
    rows = plot_image_rows({"a": rng.random((4, 8, 8)), "b": rng.random((2, 8, 8))})
    assert len(rows.axes) == 8
    curve = plot_rate_distortion([1.0, 5.0, 10.0], [80.0, 60.0, 55.0], [4.0, 1.0, 0.5])
    assert len(curve.axes[0].lines) == 2 and len(curve.axes[0].texts) == 3
    kl = plot_kl_curves({"a": (steps, rng.random(50)), "b": (steps, rng.random(50))}, window=5)
    assert len(kl.axes[0].lines) == 2
    assert figure_png(kl).startswith(b"\x89PNG")
    plt.close("all")
