"""GAN losses against their formulas, the diagnostics, and a short training run."""

from __future__ import annotations

import math
import re
from functools import partial

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab.checks import ArgumentError
from sslm_lab.gan import (
    DigitClassifier,
    DigitDiscriminator,
    DigitGenerator,
    classifier_frechet_distance,
    discriminator_accuracy,
    discriminator_loss,
    discriminator_objective,
    frechet_distance,
    gan_training_step,
    generator_loss,
    generator_objective,
    gradient_norm,
    mode_coverage,
    train_digit_classifier,
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


# ---------------------------------------------------------------------------- bad input (issue 32)

IMAGES = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))  # in [0, 1)
LABELS = torch.tensor([0, 1, 2, 3])


def small_players() -> tuple[DigitGenerator, DigitDiscriminator]:
    torch.manual_seed(0)
    return DigitGenerator(hidden_size=8), DigitDiscriminator(hidden_size=8)


def discriminator_phase(real: torch.Tensor, step: object = 0):
    generator, discriminator = small_players()
    return discriminator_objective(discriminator, real, step, generator=generator)


def generator_phase(real: torch.Tensor, step: object = 0):
    generator, discriminator = small_players()
    return generator_objective(generator, real, step, discriminator=discriminator)


def one_step(real: torch.Tensor, **arguments) -> dict[str, float]:
    generator, discriminator = small_players()
    optimizers = [torch.optim.SGD(p.parameters(), lr=0.1) for p in (generator, discriminator)]
    return gan_training_step(generator, discriminator, *optimizers, real, **arguments)


BAD_CALLS = {
    # shapes
    "7x7 images for D": (
        lambda: DigitDiscriminator(8)(torch.rand(4, 7, 7)),
        r"images\.shape=\(4, 7",
    ),
    "one image without its batch": (
        lambda: DigitDiscriminator(8)(torch.rand(64)),
        r"images\.shape",
    ),
    "noise of the wrong size": (
        lambda: DigitGenerator(hidden_size=8)(torch.randn(4, 3)),
        r"noise\.shape=\(4, 3\).*noise_size=16",
    ),
    "7x7 images for the classifier": (
        lambda: DigitClassifier(8)(torch.rand(4, 7, 7)),
        r"images\.shape=\(4, 7",
    ),
    "2-D logits": (
        lambda: discriminator_loss(torch.zeros(4, 2), torch.zeros(4)),
        r"real_logits\.shape=\(4, 2\)",
    ),
    "no logits": (lambda: generator_loss(torch.zeros(0)), r"fake_logits\.shape=\(0,\)"),
    "no logits to score": (
        lambda: discriminator_accuracy(torch.zeros(0), torch.zeros(0)),
        r"real_logits\.shape",
    ),
    "an empty batch": (lambda: one_step(torch.rand(0, 8, 8)), r"real\.shape=\(0, 8, 8\)"),
    "7x7 real images": (lambda: one_step(torch.rand(4, 7, 7)), r"real\.shape=\(4, 7, 7\)"),
    "an empty batch for D's phase": (
        lambda: discriminator_phase(torch.rand(0, 8, 8)),
        r"real\.shape",
    ),
    "an empty batch for G's phase": (
        lambda: generator_phase(torch.rand(0, 8, 8)),
        r"real\.shape",
    ),
    "fewer labels than images": (
        lambda: train_digit_classifier(IMAGES, LABELS[:3], steps=1),
        r"labels\.shape=\(3,\)",
    ),
    "7x7 images for the distance": (
        lambda: classifier_frechet_distance(DigitClassifier(8), torch.rand(4, 7, 7), IMAGES),
        r"first\.shape",
    ),
    # values
    "digits on sklearn's 0-16 scale": (
        lambda: one_step(IMAGES * 16),
        r"real=.*allowed: pixels in \[0, 1\].*divide them by 16",
    ),
    "a label of 10": (
        lambda: train_digit_classifier(IMAGES, torch.tensor([0, 1, 2, 10]), steps=1),
        "labels=.*from 0 to 10.*0..9",
    ),
    "a label of -1": (
        lambda: train_digit_classifier(IMAGES, torch.tensor([0, 1, 2, -1]), steps=1),
        "labels=",
    ),
    "float labels": (
        lambda: train_digit_classifier(IMAGES, LABELS.float(), steps=1),
        r"labels\.dtype",
    ),
    "logits where probabilities belong": (
        lambda: mode_coverage(torch.randn(5, 10, generator=torch.Generator().manual_seed(0))),
        "probabilities=.*sum to 1",
    ),
    "NaN features": (
        lambda: frechet_distance(torch.full((4, 2), math.nan), torch.zeros(4, 2)),
        "first=",
    ),
    # types
    "an int as rng": (lambda: one_step(IMAGES, rng=0), r"type\(rng\)=<class \'int\'>"),
    "an int as generator": (
        lambda: DigitGenerator(hidden_size=8).sample_noise(4, generator=0),
        r"type\(generator\)=<class \'int\'>",
    ),
    "a numpy array": (lambda: one_step(IMAGES.numpy()), r"type\(real\)=.*ndarray"),
    "the players swapped": (
        lambda: gan_training_step(*small_players()[::-1], None, None, IMAGES),
        r"type\(generator\)",
    ),
    "a string as discriminator": (
        lambda: generator_objective(small_players()[0], IMAGES, 0, discriminator="D"),
        r"type\(discriminator\)",
    ),
    "a string as step": (
        lambda: discriminator_phase(IMAGES, step="a"),
        "step='a'",
    ),
    "a list of labels": (
        lambda: train_digit_classifier(IMAGES, [0, 1, 2, 3], steps=1),
        r"type\(labels\)",
    ),
    "a numpy array of probabilities": (
        lambda: mode_coverage(torch.eye(10).numpy()),
        r"type\(probabilities\)",
    ),
    "not a classifier": (
        lambda: classifier_frechet_distance("C", IMAGES, IMAGES),
        r"type\(classifier\)",
    ),
    "not a module": (lambda: gradient_norm("D"), re.escape("type(module)")),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_a_bad_call_is_refused_naming_the_argument(case: str) -> None:
    call, message = BAD_CALLS[case]
    with pytest.raises(ArgumentError, match=message):
        call()


def snapshot(*modules: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    return [
        (name, p.detach().clone(), p.requires_grad)
        for module in modules
        for name, p in module.named_parameters()
    ]


REFUSED_STEPS = {
    "no generator optimizer": ({"generator_optimizer": None}, r"type\(generator_optimizer\)"),
    "the optimizers swapped": ({"swap": True}, "generator_optimizer=.*swapped"),
    "one optimizer for both": ({"shared": True}, "generator_optimizer=.*0 of the generator's"),
    "an int as rng": ({"rng": 0}, r"type\(rng\)=<class \'int\'>"),
    "real images on the 0-16 scale": ({"real": 16 * IMAGES}, "real="),
    "no real images": ({"real": IMAGES[:0]}, r"real\.shape"),
}


@pytest.mark.parametrize("case", REFUSED_STEPS)
def test_a_refused_training_step_changes_neither_player(case: str) -> None:
    generator, discriminator = small_players()
    discriminator.layers[0].requires_grad_(False)  # a frozen layer must stay frozen
    optimizers = {
        "generator_optimizer": torch.optim.SGD(generator.parameters(), lr=0.1),
        "discriminator_optimizer": torch.optim.SGD(discriminator.parameters(), lr=0.1),
    }
    change, message = REFUSED_STEPS[case]
    arguments = {**optimizers, "real": IMAGES, **change}
    if arguments.pop("swap", False):
        arguments["generator_optimizer"] = optimizers["discriminator_optimizer"]
        arguments["discriminator_optimizer"] = optimizers["generator_optimizer"]
    if arguments.pop("shared", False):
        everything = [*discriminator.parameters(), *generator.parameters()]
        arguments["generator_optimizer"] = torch.optim.SGD(everything[:1], lr=0.1)
    before = snapshot(generator, discriminator)
    with pytest.raises(ArgumentError, match=message):
        gan_training_step(generator, discriminator, **arguments)
    after = snapshot(generator, discriminator)
    for (name, old, old_flag), (_, new, new_flag) in zip(before, after, strict=True):
        assert torch.equal(old, new) and old_flag == new_flag, name


def test_the_edges_of_what_is_allowed_pass() -> None:
    edges = torch.stack([torch.zeros(8, 8), torch.ones(8, 8)])  # pixels exactly 0 and 1
    row = one_step(edges, rng=torch.Generator().manual_seed(0))
    assert math.isfinite(row["discriminator_loss"])
    classifier = train_digit_classifier(IMAGES, torch.tensor([0, 9, 0, 9]), steps=1)
    assert mode_coverage(classifier(IMAGES).softmax(-1)).histogram.sum() == pytest.approx(1.0)
    assert discriminator_loss(torch.zeros(3), torch.zeros(5)) > 0  # batches may differ
