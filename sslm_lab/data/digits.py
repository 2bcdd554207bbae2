"""Handwritten digits: 1,797 images of 8×8 pixels that ship inside scikit-learn.

Small enough to train a VAE, a GAN or a contrastive encoder on a laptop CPU in
seconds, and no download: `sklearn.datasets.load_digits` reads a file bundled with
the library. Pixels are 0–16 in the original (counts of ink in 4×4 blocks of a 32×32
bitmap); here they are scaled to [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from sslm_lab.checks import check_int, check_real

DIGIT_SPLITS = ("train", "val", "test")
# Fractions of the 1,797 images; each split keeps the class proportions (stratified).
DIGIT_SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
DIGIT_SPLIT_SEED = 0
IMAGE_SIZE = 8
MAX_PIXEL_VALUE = 16.0


@lru_cache(maxsize=1)
def _split_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / MAX_PIXEL_VALUE).astype(np.float32)  # (1797, 8, 8)
    labels = digits.target.astype(np.int64)  # (1797,)
    held_out = DIGIT_SPLIT_FRACTIONS["val"] + DIGIT_SPLIT_FRACTIONS["test"]
    train_x, rest_x, train_y, rest_y = train_test_split(
        images, labels, test_size=held_out, stratify=labels, random_state=DIGIT_SPLIT_SEED
    )
    test_share = DIGIT_SPLIT_FRACTIONS["test"] / held_out
    val_x, test_x, val_y, test_y = train_test_split(
        rest_x, rest_y, test_size=test_share, stratify=rest_y, random_state=DIGIT_SPLIT_SEED
    )
    return {"train": (train_x, train_y), "val": (val_x, val_y), "test": (test_x, test_y)}


def load_digits_split(split: str) -> tuple[Tensor, Tensor]:
    """Images and labels of one fixed, stratified split ('train', 'val' or 'test').

    Returns images (n, 8, 8) float32 in [0, 1] and labels (n,) int64 in 0..9; n is
    1257, 270 and 270. The split is the same on every call and every machine.
    """
    if split not in DIGIT_SPLITS:
        raise ValueError(
            f"split={split!r} is not a digits split; choose one of {', '.join(DIGIT_SPLITS)}"
        )
    images, labels = _split_arrays()[split]
    # Copies, so a caller editing the tensors in place cannot change the next caller's data.
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


def augment_digits(
    images: Tensor,
    generator: torch.Generator,
    *,
    max_shift: int = 1,
    noise_std: float = 0.05,
) -> Tensor:
    """A randomly shifted, noisy copy of each image, for contrastive views.

    images: (n, 8, 8) or (8, 8) with values in [0, 1]. Each image moves by up to
    `max_shift` pixels along each axis (pixels shifted in are blank, not wrapped
    around), then gets gaussian noise of standard deviation `noise_std` and is
    clamped back to [0, 1]. All randomness comes from `generator`.
    """
    check_int("max_shift", max_shift, low=0)
    check_real("noise_std", noise_std, low=0)
    single = images.dim() == 2
    batch = images.unsqueeze(0) if single else images  # (n, height, width)
    if batch.dim() != 3:
        raise ValueError(f"images must have shape (n, H, W) or (H, W), got {tuple(images.shape)}")
    n, height, width = batch.shape
    padded = torch.nn.functional.pad(batch, (max_shift,) * 4)  # (n, H + 2s, W + 2s)
    # Offsets of the crop window inside the padded image: 0..2s, s meaning no shift.
    rows = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    cols = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    row_index = rows[:, None] + torch.arange(height)  # (n, H)
    col_index = cols[:, None] + torch.arange(width)  # (n, W)
    image_index = torch.arange(n)[:, None, None]
    shifted = padded[image_index, row_index[:, :, None], col_index[:, None, :]]  # (n, H, W)
    noise = torch.randn(shifted.shape, generator=generator, dtype=shifted.dtype)
    augmented = (shifted + noise_std * noise).clamp(0.0, 1.0)
    return augmented[0] if single else augmented
