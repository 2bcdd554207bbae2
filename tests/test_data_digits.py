"""scikit-learn's 8×8 digits: fixed stratified split, tensors, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sslm_lab.data.digits import DIGIT_SPLITS, augment_digits, load_digits_split


def test_shapes_types_and_range() -> None:
    sizes = {}
    for split in DIGIT_SPLITS:
        images, labels = load_digits_split(split)
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
        assert images.shape == (len(labels), 8, 8)
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert images.max() == 1.0  # scaled by 16, not by the per-split maximum
        sizes[split] = len(labels)
    assert sizes == {"train": 1257, "val": 270, "test": 270}


def _rows(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(image pixels, label) rows sorted, to compare collections regardless of order."""
    rows = np.concatenate([images.reshape(len(images), -1), labels[:, None]], axis=1)
    return rows[np.lexsort(rows.T)]


def test_splits_partition_the_dataset() -> None:
    reference = load_digits()
    parts = [load_digits_split(split) for split in DIGIT_SPLITS]
    images = np.concatenate([part[0].numpy() for part in parts])
    labels = np.concatenate([part[1].numpy() for part in parts])
    # Same multiset of (image, label) rows: nothing lost, nothing duplicated.
    assert np.array_equal(_rows(images, labels), _rows(reference.images / 16.0, reference.target))


def test_splits_are_stratified() -> None:
    overall = np.bincount(load_digits().target) / 1797
    for split in DIGIT_SPLITS:
        _, labels = load_digits_split(split)
        share = torch.bincount(labels, minlength=10).numpy() / len(labels)
        assert np.abs(share - overall).max() < 0.01, split


def test_split_is_fixed_and_returns_copies() -> None:
    images, labels = load_digits_split("val")
    images.zero_()
    again, labels_again = load_digits_split("val")
    assert again.sum() > 0
    assert torch.equal(labels, labels_again)


def test_bad_split_is_rejected() -> None:
    with pytest.raises(
        ValueError, match="split='validation' is not a digits split; choose one of train, val, test"
    ):
        load_digits_split("validation")


def _shifted(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """`image` moved down by `rows` and right by `cols`, blank where it moved away."""
    moved = torch.zeros_like(image)
    height, width = image.shape
    moved[max(rows, 0) : height + min(rows, 0), max(cols, 0) : width + min(cols, 0)] = image[
        max(-rows, 0) : height + min(-rows, 0), max(-cols, 0) : width + min(-cols, 0)
    ]
    return moved


def test_augment_shifts_by_at_most_one_pixel() -> None:
    images, _ = load_digits_split("train")
    images = images[:64]
    shifted = augment_digits(images, torch.Generator().manual_seed(0), noise_std=0.0)
    assert shifted.shape == images.shape
    candidates = [(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1)]
    used = set()
    for original, view in zip(images, shifted, strict=True):
        matches = [rc for rc in candidates if torch.equal(view, _shifted(original, *rc))]
        assert matches, "each view is one of the nine one-pixel shifts"
        used.update(matches)
    assert len(used) >= 5  # shifts really vary


def test_augment_noise_range_and_determinism() -> None:
    images, _ = load_digits_split("test")
    first = augment_digits(images, torch.Generator().manual_seed(1))
    second = augment_digits(images, torch.Generator().manual_seed(1))
    other = augment_digits(images, torch.Generator().manual_seed(2))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not torch.equal(first, images)
    single = augment_digits(images[0], torch.Generator().manual_seed(0))
    assert single.shape == (8, 8)
    with pytest.raises(
        ValueError, match=r"noise_std=-0.1 \(float\) is not allowed; allowed: a finite number >= 0"
    ):
        augment_digits(images, torch.Generator(), noise_std=-0.1)
