"""The digit augmentations: shapes, range, determinism under a seed, what each one does."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.data.augmentations import (
    AUGMENTATION_FUNCTIONS,
    DIGIT_AUGMENTATIONS,
    augment_views,
    cutout,
    gaussian_noise,
    random_crop,
    random_rotation,
    random_shift,
)
from sslm_lab.data.digits import load_digits_split

STRENGTHS = {"crop": 0.6, "rotation": 20.0, "shift": 1, "cutout": 3, "noise": 0.1}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_digits_split("val")[0][:64]  # (64, 8, 8)


@pytest.mark.parametrize("name", DIGIT_AUGMENTATIONS)
def test_each_augmentation_is_seeded_shaped_and_in_range(images, name) -> None:
    augment = AUGMENTATION_FUNCTIONS[name]
    first = augment(images, torch.Generator().manual_seed(3), STRENGTHS[name])
    again = augment(images, torch.Generator().manual_seed(3), STRENGTHS[name])
    other = augment(images, torch.Generator().manual_seed(4), STRENGTHS[name])
    assert first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, images)
    assert first.min() >= 0 and first.max() <= 1


@pytest.mark.parametrize(
    ("augment", "off"),
    [(random_crop, 1.0), (random_rotation, 0), (random_shift, 0), (cutout, 0), (gaussian_noise, 0)],
)
def test_zero_strength_changes_nothing_and_draws_nothing(images, augment, off) -> None:
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    same = augment(images, generator, off)
    assert torch.equal(same, images) and same is not images
    assert torch.equal(generator.get_state(), state)


def test_crop_stays_inside_the_image_and_zooms_in(images) -> None:
    ones = torch.ones(16, 8, 8)
    assert torch.allclose(random_crop(ones, torch.Generator().manual_seed(0), 0.5), ones)
    zoomed = random_crop(images, torch.Generator().manual_seed(0), 0.5)
    assert zoomed.sum() > images.sum()  # a smaller window blown up to full size holds more ink


def test_rotation_turns_about_the_centre(images) -> None:
    ones = torch.ones(16, 8, 8)
    turned = random_rotation(ones, torch.Generator().manual_seed(0), 45.0)
    assert torch.allclose(turned[:, 3:5, 3:5], torch.ones(16, 2, 2))  # the centre stays
    assert turned[:, 0, 0].max() < 1  # corners turn out of the frame (blank fills them)
    small = random_rotation(images, torch.Generator().manual_seed(0), 10.0)
    assert (small.sum() - images.sum()).abs() / images.sum() < 0.1  # ink roughly kept


def test_cutout_blanks_one_square_at_most(images) -> None:
    ones = torch.ones(256, 8, 8)
    cut = cutout(ones, torch.Generator().manual_seed(0), 3)
    blanked = (cut == 0).sum(dim=(1, 2))
    assert blanked.max() == 9 and blanked.min() >= 4  # clipped at an edge, never gone
    assert (blanked < 9).any()


def test_augment_views_applies_what_is_named_in_order(images) -> None:
    generator = torch.Generator().manual_seed(5)
    views = augment_views(images, generator, STRENGTHS)
    by_hand = images
    generator = torch.Generator().manual_seed(5)
    for name in DIGIT_AUGMENTATIONS:
        by_hand = AUGMENTATION_FUNCTIONS[name](by_hand, generator, STRENGTHS[name])
    assert torch.equal(views, by_hand)
    only_noise = augment_views(images, torch.Generator().manual_seed(5), {"noise": 0.1})
    assert torch.equal(only_noise, gaussian_noise(images, torch.Generator().manual_seed(5), 0.1))
    assert torch.equal(augment_views(images, torch.Generator(), {}), images)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: random_crop(x, torch.Generator(), 0), r"min_scale=0 .*\(0, 1\]"),
        (lambda x: random_crop(x, torch.Generator(), 1.5), r"min_scale=1.5 "),
        (lambda x: random_rotation(x, torch.Generator(), -5), r"max_degrees=-5 .*\[0, 180\]"),
        (lambda x: random_shift(x, torch.Generator(), 1.5), r"max_shift=1.5 .*integer"),
        (lambda x: cutout(x, torch.Generator(), -1), r"size=-1 "),
        (lambda x: gaussian_noise(x, torch.Generator(), -0.1), r"std=-0.1 "),
        (lambda x: cutout(x[0], torch.Generator(), 2), r"images.shape=\(8, 8\)"),
        (lambda x: augment_views(x, torch.Generator(), {"blur": 1}), r"strengths=\['blur'\]"),
    ],
)
def test_bad_settings_are_refused_naming_them(images, call, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        call(images)
