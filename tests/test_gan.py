"""GAN losses against their formulas, the diagnostics, and a short training run."""

from __future__ import annotations

import math

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.gan import (
    DigitDiscriminator,
    DigitGenerator,
    discriminator_accuracy,
    discriminator_loss,
    frechet_distance,
    gan_training_step,
    generator_loss,
    mode_coverage,
)

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
