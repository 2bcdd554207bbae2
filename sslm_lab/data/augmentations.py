"""Random views of 8×8 digits, for contrastive learning: crop, rotate, shift, cut out, add noise.

A contrastive encoder learns whatever the views of one image share and ignores whatever
the augmentations change, so the augmentations decide what "the same digit" means.
Each function takes images (n, height, width) in [0, 1] and a torch.Generator and
returns new images of the same shape, also in [0, 1]; every random number comes from
the generator, so a seed fixes the views. A strength of 0 (or a crop scale of 1) leaves
the images as they are and draws nothing.

    random_crop(images, g, min_scale)      a square of side s·8, s in [min_scale, 1],
                                           scaled back up to 8×8 (SimCLR's resized crop)
    random_rotation(images, g, max_degrees)  turned by up to ±max_degrees about the centre
    random_shift(images, g, max_shift)     moved by whole pixels (`augment_digits`' shift)
    cutout(images, g, size)                a size×size square blanked (DeVries & Taylor 2017)
    gaussian_noise(images, g, std)         noise added, then clamped to [0, 1]

`augment_views(images, g, strengths)` applies those named in `strengths`, in the order
of DIGIT_AUGMENTATIONS, so leaving one out of the dict is the ablation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from sslm_lab.checks import check_int, check_real, invalid
from sslm_lab.data.digits import augment_digits

DIGIT_AUGMENTATIONS = ("crop", "rotation", "shift", "cutout", "noise")


def _check_images(images: Tensor) -> Tensor:
    if not isinstance(images, Tensor) or images.dim() != 3 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else images
        raise invalid("images.shape", shape, "a float tensor (n, height, width)")
    return images


def _resample(images: Tensor, theta: Tensor, outside: str) -> Tensor:
    """Apply one 2×3 affine map per image, theta (n, 2, 3), to output coordinates in [-1, 1]:
    each output pixel reads the input at theta · (x, y, 1), bilinearly. Beyond the input,
    outside="zeros" reads blank and "border" the nearest edge pixel."""
    grid = F.affine_grid(theta, [len(images), 1, *images.shape[1:]], align_corners=False)
    sampled = F.grid_sample(images[:, None], grid, padding_mode=outside, align_corners=False)
    return sampled[:, 0].clamp(0.0, 1.0)


def random_crop(images: Tensor, generator: torch.Generator, min_scale: float) -> Tensor:
    """A random square window of side s (a fraction of the image, s ~ U[min_scale, 1]),
    placed uniformly inside the image and resized back to full size (bilinear)."""
    min_scale = check_real("min_scale", min_scale, low=0, high=1, low_open=True)
    images = _check_images(images)
    if min_scale == 1:
        return images.clone()
    n = len(images)
    scale = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)  # (n,)
    # The window's centre may move by (1 - scale) either way and stay inside the image.
    offset = (1 - scale)[:, None] * (2 * torch.rand(n, 2, generator=generator) - 1)  # (n, 2)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = offset
    # The window ends half a pixel past the outermost pixel centres: read the edge there.
    return _resample(images, theta, "border")


def random_rotation(images: Tensor, generator: torch.Generator, max_degrees: float) -> Tensor:
    """Each image turned about its centre by an angle ~ U[-max_degrees, max_degrees]."""
    max_degrees = check_real("max_degrees", max_degrees, low=0, high=180)
    images = _check_images(images)
    if max_degrees == 0:
        return images.clone()
    n = len(images)
    angle = math.radians(max_degrees) * (2 * torch.rand(n, generator=generator) - 1)  # (n,)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    return _resample(images, theta, "zeros")  # corners turned in from outside are blank


def random_shift(images: Tensor, generator: torch.Generator, max_shift: int) -> Tensor:
    """Each image moved by up to `max_shift` whole pixels along each axis, blank behind."""
    images = _check_images(images)
    if check_int("max_shift", max_shift, low=0) == 0:
        return images.clone()
    return augment_digits(images, generator, max_shift=max_shift, noise_std=0.0)


def cutout(images: Tensor, generator: torch.Generator, size: int) -> Tensor:
    """A size × size square blanked in each image, centred on a uniformly random pixel
    (so near an edge less of it falls inside the image; DeVries & Taylor 2017)."""
    size = check_int("size", size, low=0)
    images = _check_images(images)
    if size == 0:
        return images.clone()
    n, height, width = images.shape
    top = torch.randint(height, (n,), generator=generator) - size // 2  # (n,)
    left = torch.randint(width, (n,), generator=generator) - size // 2  # (n,)
    rows = torch.arange(height) - top[:, None]  # (n, height): row inside the square if 0..size-1
    cols = torch.arange(width) - left[:, None]  # (n, width)
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None]
    return images.masked_fill(inside, 0.0)


def gaussian_noise(images: Tensor, generator: torch.Generator, std: float) -> Tensor:
    """Gaussian noise of standard deviation `std` added to every pixel, clamped to [0, 1]."""
    std = check_real("std", std, low=0)
    images = _check_images(images)
    if std == 0:
        return images.clone()
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return (images + std * noise).clamp(0.0, 1.0)


AUGMENTATION_FUNCTIONS = {
    "crop": random_crop,
    "rotation": random_rotation,
    "shift": random_shift,
    "cutout": cutout,
    "noise": gaussian_noise,
}


def augment_views(
    images: Tensor, generator: torch.Generator, strengths: Mapping[str, float]
) -> Tensor:
    """One random view of each image (n, height, width): the augmentations named in
    `strengths` (name -> strength, e.g. {"crop": 0.6, "noise": 0.1}), in the order of
    DIGIT_AUGMENTATIONS. Call it twice with one generator for SimCLR's two views."""
    unknown = sorted(set(strengths) - set(DIGIT_AUGMENTATIONS))
    if unknown:
        raise invalid("strengths", unknown, f"names from {', '.join(DIGIT_AUGMENTATIONS)}")
    views = _check_images(images)
    for name in DIGIT_AUGMENTATIONS:
        if name in strengths:
            views = AUGMENTATION_FUNCTIONS[name](views, generator, strengths[name])
    return views
