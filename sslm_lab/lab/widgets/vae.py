"""The latent explorer of 04_vae: move a point in a 2-D latent space, see the decoded digit;
pick two test digits, see the path between their codes.

The pure functions take a `decode` callable, z (n, latent) -> images (n, 8, 8) in [0, 1]
(e.g. `DigitsVAE.mean_images`), and an `encode` callable, images -> posterior means
(n, latent), so they are tested with stand-ins and no trained model.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from sslm_lab.checks import check_int, check_real, invalid

Decode = Callable[[Tensor], Tensor]  # z (n, latent) -> images (n, height, width) in [0, 1]
Encode = Callable[[Tensor], Tensor]  # images (n, height, width) -> posterior means (n, latent)


def decode_point(decode: Decode, point: Sequence[float]) -> np.ndarray:
    """The image decoded at one latent point (a sequence of latent-size numbers): (h, w)."""
    if len(point) == 0:
        raise invalid("point", point, "one coordinate per latent dimension")
    z = torch.tensor([list(point)], dtype=torch.float32)  # (1, latent)
    with torch.no_grad():
        return decode(z)[0].detach().cpu().numpy()


def interpolate(start: Tensor, end: Tensor, steps: int) -> Tensor:
    """`steps` points evenly spaced on the straight line from start to end, both included:
    start, end (latent,) -> (steps, latent)."""
    steps = check_int("steps", steps, low=2, hint="the two ends at least")
    if start.shape != end.shape or start.dim() != 1:
        raise invalid(
            "start.shape, end.shape",
            (tuple(start.shape), tuple(end.shape)),
            "two equal shapes (latent,)",
        )
    weights = torch.linspace(0, 1, steps, dtype=start.dtype).unsqueeze(1)  # (steps, 1)
    return (1 - weights) * start + weights * end


def interpolation_strip(
    encode: Encode, decode: Decode, first: Tensor, second: Tensor, steps: int = 8
) -> np.ndarray:
    """Decoded images along the line between the posterior means of two images (h, w):
    (steps, h, w), the first and last being the two images' reconstructions."""
    with torch.no_grad():
        means = encode(torch.stack([first, second]))  # (2, latent)
        return decode(interpolate(means[0], means[1], steps)).detach().cpu().numpy()


def latent_grid(low: float, high: float, points: int) -> Tensor:
    """A square grid of 2-D latent points, rows from high to low z2 (as an image reads) and
    columns from low to high z1: (points * points, 2)."""
    low, high = check_real("low", low), check_real("high", high)
    if not low < high:
        raise invalid("low, high", (low, high), "low < high")
    points = check_int("points", points, low=2)
    axis = torch.linspace(low, high, points)
    z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    return torch.stack([z1.flatten(), z2.flatten()], dim=1)


def images_png(images: np.ndarray, scale: int = 8, gap: int = 1) -> bytes:
    """A row of grey images (n, h, w) in [0, 1], dark ink on white, as PNG bytes: each
    pixel scaled to a `scale` x `scale` square, `gap` white pixels between images."""
    scale = check_int("scale", scale, low=1)
    gap = check_int("gap", gap, low=0)
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or len(images) == 0:
        raise invalid("images.shape", images.shape, "(n, height, width) with n >= 1")
    n, height, width = images.shape
    row = np.ones((height, n * width + (n - 1) * gap))
    for index, image in enumerate(np.clip(images, 0, 1)):
        start = index * (width + gap)
        row[:, start : start + width] = 1 - image  # ink is dark
    pixels = Image.fromarray((255 * row).round().astype(np.uint8), mode="L")
    pixels = pixels.resize((pixels.width * scale, pixels.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    return buffer.getvalue()


def latent_explorer(
    encode: Encode,
    decode: Decode,
    images: Tensor,
    labels: Sequence[int],
    first: int = 0,
    second: int = 1,
    limit: float = 3.0,
    steps: int = 8,
) -> widgets.VBox:
    """Two sliders move a point (z1, z2) -> the digit decoded there; two test digits picked
    by index -> the interpolation strip between their codes.

    A view over `decode_point`, `interpolation_strip` and `images_png`; the model must have
    a 2-D latent. images (n, h, w), labels (n,): the digits one may pick. Children, in
    order: HBox(VBox(z1, z2 sliders), the decoded digit), HBox(the two picks, the steps
    slider), the strip's caption (HTML), the strip (Image).
    """
    if len(images) != len(labels):
        raise invalid("len(images), len(labels)", (len(images), len(labels)), "one label each")
    limit = check_real("limit", limit, low=0, low_open=True)
    options = [(f"#{index}: a {int(label)}", index) for index, label in enumerate(labels)]
    start = encode(images[first : first + 1])[0].tolist()
    if len(start) != 2:
        raise invalid("the latent size", len(start), "2: the explorer draws a plane")
    z1, z2 = (
        widgets.FloatSlider(
            value=float(np.clip(v, -limit, limit)),
            min=-limit,
            max=limit,
            step=0.05,
            description=name,
        )
        for name, v in zip(("z1", "z2"), start, strict=True)
    )
    point_view = widgets.Image(format="png")
    first_menu = widgets.Dropdown(options=options, value=first, description="from")
    second_menu = widgets.Dropdown(options=options, value=second, description="to")
    steps_slider = widgets.IntSlider(value=steps, min=2, max=16, description="steps")
    caption = widgets.HTML()
    strip_view = widgets.Image(format="png")

    def render_point(_change: object = None) -> None:
        point_view.value = images_png(decode_point(decode, [z1.value, z2.value]), scale=16)

    def render_strip(_change: object = None) -> None:
        strip = interpolation_strip(
            encode, decode, images[first_menu.value], images[second_menu.value], steps_slider.value
        )
        caption.value = (
            f"<p>from test digit #{first_menu.value} (a {int(labels[first_menu.value])}) to "
            f"#{second_menu.value} (a {int(labels[second_menu.value])}) in "
            f"{steps_slider.value} steps</p>"
        )
        strip_view.value = images_png(strip, scale=8)

    for slider in (z1, z2):
        slider.observe(render_point, names="value")
    for control in (first_menu, second_menu, steps_slider):
        control.observe(render_strip, names="value")
    render_point()
    render_strip()
    return widgets.VBox(
        [
            widgets.HBox([widgets.VBox([z1, z2]), point_view]),
            widgets.HBox([first_menu, second_menu, steps_slider]),
            caption,
            strip_view,
        ]
    )
