"""GAN losses against their formulas, the diagnostics, and a short training run."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab.checks import ArgumentError
from sslm_lab.gan import (
    DigitDiscriminator,
    DigitGenerator,
    discriminator_accuracy,
    discriminator_loss,
    discriminator_objective,
    frechet_distance,
    gan_training_step,
    generator_loss,
    generator_objective,
    mode_coverage,
)
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig

LOGITS = torch.tensor([-2.0, 0.0, 3.0])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_losses_equal_their_formulas_on_hand_made_logits() -> None:
    d = [sigmoid(x) for x in LOGITS.tolist()]
    real, fake = LOGITS, -LOGITS
    d_fake = [sigmoid(x) for x in fake.tolist()]
    expected = sum(-math.log(p) for p in d) / 3 + sum(-math.log(1 - p) for p in d_fake) / 3
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected)
    minimax = sum(math.log(1 - p) for p in d) / 3
    assert float(generator_loss(LOGITS, "minimax")) == pytest.approx(minimax)
    saturating = sum(-math.log(p) for p in d) / 3
    assert float(generator_loss(LOGITS, "non_saturating")) == pytest.approx(saturating)


def test_the_minimax_gradient_vanishes_where_the_fakes_are_rejected() -> None:
    logits = torch.tensor([-8.0], requires_grad=True)
    (minimax,) = torch.autograd.grad(generator_loss(logits, "minimax"), logits)
    (saturating,) = torch.autograd.grad(generator_loss(logits, "non_saturating"), logits)
    assert abs(float(minimax)) < 1e-3 < 0.99 < abs(float(saturating))


def test_discriminator_accuracy() -> None:
    assert discriminator_accuracy(torch.tensor([1.0, -1.0]), torch.tensor([-1.0, -2.0])) == (
        0.5,
        1.0,
    )


def test_mode_coverage_of_one_class_and_of_all() -> None:
    one = mode_coverage(torch.eye(10)[[3] * 20])
    assert (one.classes_covered, one.entropy_bits) == (1, 0.0)
    every = mode_coverage(torch.eye(10).repeat(3, 1))
    assert every.classes_covered == 10 and every.entropy_bits == pytest.approx(math.log2(10))
    unsure = mode_coverage(torch.full((5, 10), 0.1))
    assert unsure.classes_covered == 0 and unsure.confident_share == 0.0


def test_frechet_distance_matches_the_one_dimensional_formula() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(500, 1, generator=generator, dtype=torch.float64)
    b = 3 * torch.randn(500, 1, generator=generator, dtype=torch.float64) + 2
    mean_gap = float(a.mean() - b.mean()) ** 2
    expected = mean_gap + (float(a.std()) - float(b.std())) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a.repeat(1, 3), a.repeat(1, 3)) == pytest.approx(0.0, abs=1e-6)


def test_a_short_training_run_lowers_the_discriminator_loss() -> None:
    from sslm_lab.data.digits import load_digits_split

    torch.manual_seed(0)
    real = load_digits_split("train")[0][:256]
    generator, discriminator = DigitGenerator(hidden_size=64), DigitDiscriminator(hidden_size=64)
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    history = [gan_training_step(generator, discriminator, g_opt, d_opt, real) for _ in range(60)]
    assert history[-1]["discriminator_loss"] < history[0]["discriminator_loss"] - 0.1
    assert all(h["generator_grad_norm"] > 0 and h["discriminator_grad_norm"] > 0 for h in history)


def test_bad_input_names_the_parameter() -> None:
    with pytest.raises(ArgumentError, match="loss"):
        generator_loss(LOGITS, "wasserstein")
    with pytest.raises(ArgumentError, match="confidence"):
        mode_coverage(torch.eye(10), confidence=1.5)
    with pytest.raises(ArgumentError, match="shape"):
        frechet_distance(torch.zeros(5, 2), torch.zeros(5, 3))


def test_more_discriminator_steps_update_the_discriminator_more_and_start_alike() -> None:
    real = torch.rand(16, 8, 8, generator=torch.Generator().manual_seed(0))

    def one_step(discriminator_steps: int) -> tuple[dict[str, float], DigitDiscriminator]:
        torch.manual_seed(0)
        generator, discriminator = DigitGenerator(hidden_size=16), DigitDiscriminator(16)
        g_opt = torch.optim.SGD(generator.parameters(), lr=0.1)
        d_opt = torch.optim.SGD(discriminator.parameters(), lr=0.1)
        row = gan_training_step(
            generator,
            discriminator,
            g_opt,
            d_opt,
            real,
            rng=torch.Generator().manual_seed(1),
            discriminator_steps=discriminator_steps,
        )
        return row, discriminator

    once, d_once = one_step(1)
    thrice, d_thrice = one_step(3)
    # The reported losses and accuracies are the first update's, so they agree...
    assert once["discriminator_loss"] == thrice["discriminator_loss"]
    assert once["real_accuracy"] == thrice["real_accuracy"]
    # ...while the discriminator itself took two more steps.
    first_once, first_thrice = d_once.layers[0].weight, d_thrice.layers[0].weight
    assert not torch.equal(first_once, first_thrice)
    with pytest.raises(ArgumentError, match="discriminator_steps"):
        one_step(0)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
def test_the_trainers_two_phases_take_the_step_gan_training_step_takes(loss: str) -> None:
    real = torch.rand(16, 8, 8, generator=torch.Generator().manual_seed(0))

    def players() -> tuple[DigitGenerator, DigitDiscriminator]:
        torch.manual_seed(0)
        return DigitGenerator(hidden_size=16), DigitDiscriminator(16)

    by_hand = players()
    optimizers = [torch.optim.Adam(p.parameters(), lr=1e-2, betas=(0.5, 0.999)) for p in by_hand]
    torch.manual_seed(7)  # the noise of both updates comes from the global generator
    row = gan_training_step(*by_hand, *optimizers, real, loss=loss)

    generator, discriminator = players()
    adam = {"lr": 1e-2, "betas": (0.5, 0.999), "weight_decay": 0.0, "schedule": "constant"}
    phases = [
        Phase("discriminator", discriminator, partial(discriminator_objective, generator=generator), **adam),
        Phase("generator", generator, partial(generator_objective, discriminator=discriminator, loss=loss), **adam),
    ]  # fmt: skip
    gan = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    config = TrainerConfig(max_steps=1, seed=7, grad_clip=None, progress=False, device="cpu")
    (logged,) = Trainer(gan, phases, [real], config).fit()

    for ours, theirs in zip((generator, discriminator), by_hand, strict=True):
        for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert_close(mine, reference)
    assert logged["discriminator/loss"] == pytest.approx(row["discriminator_loss"], rel=1e-6)
    assert logged["generator/loss"] == pytest.approx(row["generator_loss"], rel=1e-6)
    assert logged["discriminator/real_accuracy"] == row["real_accuracy"]
    assert logged["discriminator/grad_norm"] == pytest.approx(row["discriminator_grad_norm"])
    assert logged["generator/grad_norm"] == pytest.approx(row["generator_grad_norm"], rel=1e-5)
