"""Generative adversarial networks on 8x8 digits (Goodfellow et al. 2014).

A generator G turns noise into images; a discriminator D outputs a logit, the log-odds that
its input is real. D minimises the cross-entropy of telling real from fake; G wants D wrong.
With D(x) = sigmoid(logit):

    discriminator_loss   -log D(x) - log(1 - D(G(z)))
    generator_loss       "minimax":         log(1 - D(G(z)))   (the game as written)
                         "non_saturating":  -log D(G(z))       (Goodfellow's fix)

Both generator losses have the same fixed point, but at the start, when D rejects every
fake (D(G(z)) ≈ 0), log(1 - D) is flat and the minimax generator gets almost no gradient.

Training alternates the two players. `gan_training_step` writes one round out by hand
(D's update, then G's, on fresh noise each, as in Goodfellow et al.'s Algorithm 1);
`discriminator_objective` and `generator_objective` are the same two losses in the
trainer's `(module, batch, step)` shape, for `sslm_lab.training`'s two phases.

Diagnostics: `discriminator_accuracy`, `gradient_norm`; with a digit classifier trained on
real digits, `mode_coverage` (which classes the confident samples cover, and the entropy
of their predicted-class histogram) and `frechet_distance` between the classifier's
penultimate features of samples and of real digits (the FID idea, Heusel et al. 2017,
with this classifier in place of Inception).

Arguments are checked before any work (`sslm_lab.checks`); real images are checked to lie
in [0, 1], the range of the generator's sigmoid, where they enter (`gan_training_step`,
`discriminator_objective`, `train_digit_classifier`); a call that updates the players
checks everything before its first update. The checks sit at the end of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import (
    check_choice,
    check_generator,
    check_int,
    check_real,
    check_tensor,
    invalid,
)

GENERATOR_LOSSES = ("minimax", "non_saturating")
PIXELS = 64
NUM_CLASSES = 10


# ---------------------------------------------------------------------------- the two players


class DigitGenerator(nn.Module):
    """MLP: noise (batch, noise_size) -> images (batch, 8, 8) in [0, 1] (a sigmoid output)."""

    def __init__(self, noise_size: int = 16, hidden_size: int = 128) -> None:
        super().__init__()
        self.noise_size = check_int("noise_size", noise_size, low=1)
        check_int("hidden_size", hidden_size, low=1)
        self.layers = nn.Sequential(
            nn.Linear(noise_size, hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, PIXELS),
        )

    def forward(self, noise: Tensor) -> Tensor:
        """noise (batch, noise_size) -> images (batch, 8, 8)."""
        check_tensor("noise", noise, shape="(batch, noise_size)")
        if noise.dim() != 2 or len(noise) == 0 or noise.size(1) != self.noise_size:
            allowed = f"(batch, noise_size={self.noise_size}), batch >= 1"
            raise invalid("noise.shape", tuple(noise.shape), allowed)
        return self.layers(noise).sigmoid().view(len(noise), 8, 8)

    def sample_noise(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """count draws of z ~ N(0, I): (count, noise_size)."""
        check_int("count", count, low=1)
        device = next(self.parameters()).device
        check_generator("generator", generator, device)
        return torch.randn(count, self.noise_size, generator=generator, device=device)


class DigitDiscriminator(nn.Module):
    """MLP: images (batch, 8, 8) -> logits (batch,), the log-odds of "real"."""

    def __init__(self, hidden_size: int = 128) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size, low=1)
        self.layers = nn.Sequential(
            nn.Linear(PIXELS, hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        _check_images("images", images)
        return self.layers(images.reshape(len(images), -1)).squeeze(-1)


# ---------------------------------------------------------------------------- losses


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """mean -log D(x) + mean -log(1 - D(G(z))): binary cross-entropy, real = 1, fake = 0.

    With log D = -softplus(-logit) and log(1 - D) = -softplus(logit), computed stably.
    real_logits (batch,), fake_logits (batch',): the two batches may differ in size."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, loss: str = "non_saturating") -> Tensor:
    """What the generator minimises, from D's logits on its samples (batch,).

    "minimax": mean log(1 - D(G(z))) = -mean softplus(logit); its gradient with respect to
    the logit is -D, which vanishes as D(G(z)) -> 0. "non_saturating": mean -log D(G(z)) =
    mean softplus(-logit); gradient D - 1, near -1 exactly when the fakes are rejected.
    """
    _check_logits("fake_logits", fake_logits)
    check_choice("loss", loss, GENERATOR_LOSSES)
    if loss == "minimax":
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------------------- diagnostics


def discriminator_accuracy(real_logits: Tensor, fake_logits: Tensor) -> tuple[float, float]:
    """Share of real images D calls real (logit > 0) and of fakes it calls fake (logit < 0)."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return float((real_logits > 0).float().mean()), float((fake_logits < 0).float().mean())


def gradient_norm(module: nn.Module) -> float:
    """L2 norm of all of a module's parameter gradients together (0 if there are none)."""
    if not isinstance(module, nn.Module):
        raise invalid("type(module)", type(module), "an nn.Module")
    squares = [p.grad.detach().pow(2).sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def gan_training_step(
    generator: DigitGenerator,
    discriminator: DigitDiscriminator,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    real: Tensor,
    *,
    loss: str = "non_saturating",
    rng: torch.Generator | None = None,
    discriminator_steps: int = 1,
) -> dict[str, float]:
    """`discriminator_steps` updates of D on real images (batch, 8, 8), each against as
    many fresh fakes, then one update of G on fresh noise (Goodfellow et al.'s Algorithm 1
    samples a new noise batch for G's update).

    Returns both losses, D's accuracy on real and fake and D's gradient norm (from its
    first update, before stepping), and G's gradient norm: the curves a GAN notebook plots.
    More D steps per G step keep the discriminator ahead, a common remedy when the
    generator outruns it (Goodfellow et al. 2014 used k steps of D per step of G).

    Everything is checked before D's first update, so a refused call changes neither player.
    """
    _check_players(generator, discriminator)
    _check_optimizers(generator, discriminator, (generator_optimizer, discriminator_optimizer))
    _check_images("real", real, unit_range=True)
    check_choice("loss", loss, GENERATOR_LOSSES)
    check_generator("rng", rng, next(generator.parameters()).device)
    check_int("discriminator_steps", discriminator_steps, low=1)
    for update in range(discriminator_steps):
        fake = generator(generator.sample_noise(len(real), rng))
        real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
        loss_now = discriminator_loss(real_logits, fake_logits)
        discriminator_optimizer.zero_grad()
        loss_now.backward()
        if update == 0:
            d_loss, d_grad = loss_now, gradient_norm(discriminator)
            real_accuracy, fake_accuracy = discriminator_accuracy(real_logits, fake_logits)
        discriminator_optimizer.step()

    fake = generator(generator.sample_noise(len(real), rng))
    g_loss = generator_loss(discriminator(fake), loss)
    generator_optimizer.zero_grad()
    g_loss.backward()  # also fills D's gradients, which the next D step clears
    g_grad = gradient_norm(generator)
    generator_optimizer.step()
    return {
        "discriminator_loss": d_loss.item(),
        "generator_loss": g_loss.item(),
        "real_accuracy": real_accuracy,
        "fake_accuracy": fake_accuracy,
        "discriminator_grad_norm": d_grad,
        "generator_grad_norm": g_grad,
    }


def discriminator_objective(
    discriminator: DigitDiscriminator, real: Tensor, step: int, *, generator: DigitGenerator
) -> tuple[Tensor, dict[str, Tensor]]:
    """D's phase in the trainer's shape: real images (batch, 8, 8) against as many fresh
    fakes, which carry no gradient back to G. Metrics: D's accuracy on real and on fake."""
    _check_players(generator, discriminator)
    _check_images("real", real, unit_range=True)
    _check_step(step)
    with torch.no_grad():
        fake = generator(generator.sample_noise(len(real)))
    real_logits, fake_logits = discriminator(real), discriminator(fake)
    metrics = {
        "real_accuracy": (real_logits > 0).float().mean(),
        "fake_accuracy": (fake_logits < 0).float().mean(),
    }
    return discriminator_loss(real_logits, fake_logits), metrics


def generator_objective(
    generator: DigitGenerator,
    real: Tensor,
    step: int,
    *,
    discriminator: DigitDiscriminator,
    loss: str = "non_saturating",
) -> tuple[Tensor, dict[str, Tensor]]:
    """G's phase in the trainer's shape: as many fresh fakes as `real` holds images, scored
    by D through `generator_loss` (D's gradients it leaves are cleared by D's next phase)."""
    _check_players(generator, discriminator)
    _check_images("real", real)  # only counted here: its range is checked in D's phase
    _check_step(step)
    check_choice("loss", loss, GENERATOR_LOSSES)
    fake = generator(generator.sample_noise(len(real)))
    return generator_loss(discriminator(fake), loss), {}


# ---------------------------------------------------------------------------- judging samples


class DigitClassifier(nn.Module):
    """MLP 64 -> hidden -> hidden -> 10 classes; `features` gives the penultimate layer."""

    def __init__(self, hidden_size: int = 64) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size, low=1)
        self.body = nn.Sequential(
            nn.Linear(PIXELS, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
        )
        self.output = nn.Linear(hidden_size, NUM_CLASSES)

    def features(self, images: Tensor) -> Tensor:
        """images (batch, 8, 8) -> penultimate features (batch, hidden)."""
        _check_images("images", images)
        return self.body(images.reshape(len(images), -1))

    def forward(self, images: Tensor) -> Tensor:
        return self.output(self.features(images))  # (batch, 10)


def train_digit_classifier(
    images: Tensor, labels: Tensor, steps: int = 300, lr: float = 1e-2, seed: int = 0
) -> DigitClassifier:
    """A `DigitClassifier` fitted by full-batch Adam on (images (n, 8, 8) in [0, 1], labels
    (n,) in 0..9). Reseeds torch's global generator with `seed`."""
    _check_images("images", images, unit_range=True)
    check_tensor("labels", labels, shape="(n,) of classes 0..9", dtype="integer")
    if labels.shape != (len(images),):
        allowed = f"(n,) = ({len(images)},), one label per image"
        raise invalid("labels.shape", tuple(labels.shape), allowed)
    low, high = torch.aminmax(labels)
    if low < 0 or high >= NUM_CLASSES:
        shown = f"labels from {int(low)} to {int(high)}"
        raise invalid("labels", shown, f"classes 0..{NUM_CLASSES - 1}")
    check_int("steps", steps, low=1)
    check_real("lr", lr, low=0, low_open=True)
    torch.manual_seed(check_int("seed", seed, low=0))
    classifier = DigitClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(classifier(images), labels).backward()
        optimizer.step()
    return classifier.eval()


@dataclass(frozen=True)
class ModeCoverage:
    """What a classifier sees in a set of samples.

    classes_covered: classes with at least one confident sample; histogram: (10,) share of
    all samples by predicted class; entropy_bits: entropy of that histogram (log2 10 = 3.32
    for all classes equally often, 0 for one class); confident_share: samples whose top
    probability reached the confidence."""

    classes_covered: int
    histogram: Tensor
    entropy_bits: float
    confident_share: float


def mode_coverage(probabilities: Tensor, confidence: float = 0.9) -> ModeCoverage:
    """`ModeCoverage` from a classifier's class probabilities on samples, (n, classes): each
    row a distribution (a softmax), checked here."""
    confidence = check_real("confidence", confidence, low=0, high=1)
    check_tensor("probabilities", probabilities, shape="(n, classes)")
    if probabilities.dim() != 2 or probabilities.numel() == 0:
        shape = tuple(probabilities.shape)
        raise invalid("probabilities.shape", shape, "(n, classes), n >= 1, classes >= 1")
    sums, least = probabilities.sum(1), probabilities.min()  # (n,), ()
    if not (least >= 0 and (sums - 1).abs().max() <= 1e-3):  # written so that NaN fails too
        low, high = float(sums.min()), float(sums.max())
        shown = f"least entry {float(least):g}, rows summing to {low:g}..{high:g}"
        allowed = "rows of numbers >= 0 that sum to 1"
        raise invalid("probabilities", shown, allowed, "a softmax of the classifier's logits")
    top, predicted = probabilities.max(1)
    confident = top >= confidence
    histogram = torch.bincount(predicted, minlength=probabilities.size(1)).float()
    histogram /= histogram.sum()
    nonzero = histogram[histogram > 0]
    return ModeCoverage(
        classes_covered=len(predicted[confident].unique()),
        histogram=histogram,
        entropy_bits=float(-(nonzero * nonzero.log2()).sum()),
        confident_share=float(confident.float().mean()),
    )


def frechet_distance(first: Tensor, second: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, dim), (m, dim):

        ||μ₁ - μ₂||² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^½)

    Tr (Σ₁ Σ₂)^½ is the sum of the square roots of the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (same
    eigenvalues, but symmetric), so two symmetric eigen-decompositions replace a general
    matrix square root. Computed in float64; 0 for identical sets.
    """
    check_tensor("first", first, shape="(n, dim)")
    check_tensor("second", second, shape="(m, dim)")
    if first.dim() != 2 or second.dim() != 2 or first.size(1) != second.size(1):
        raise invalid(
            "first.shape, second.shape",
            (tuple(first.shape), tuple(second.shape)),
            "(n, dim) and (m, dim) with the same dim",
        )
    check_int("number of rows", min(len(first), len(second)), low=2, hint="covariance needs 2")
    for name, features in (("first", first), ("second", second)):
        if not bool(features.isfinite().all()):
            raise invalid(name, "features with NaN or infinity", "finite features")
    first, second = first.double(), second.double()
    mean_gap = (first.mean(0) - second.mean(0)).pow(2).sum()
    dim = first.size(1)
    cov_1, cov_2 = first.T.cov().reshape(dim, dim), second.T.cov().reshape(dim, dim)
    values, vectors = torch.linalg.eigh(cov_1)
    root_1 = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_1 @ cov_2 @ root_1).clamp(min=0).sqrt().sum()
    return float(mean_gap + cov_1.trace() + cov_2.trace() - 2 * cross)


@torch.no_grad()
def classifier_frechet_distance(
    classifier: DigitClassifier, first: Tensor, second: Tensor
) -> float:
    """`frechet_distance` of the classifier's penultimate features of two image sets."""
    if not isinstance(classifier, nn.Module) or not hasattr(classifier, "features"):
        allowed = "a DigitClassifier (an nn.Module with features)"
        raise invalid("type(classifier)", type(classifier), allowed)
    _check_images("first", first)
    _check_images("second", second)
    return frechet_distance(classifier.features(first), classifier.features(second))


# ---------------------------------------------------------------------------- argument checks


def _check_images(name: str, images: Any, unit_range: bool = False) -> None:
    """Digits (batch, 8, 8) or flattened (batch, 64), float, batch >= 1; with `unit_range`,
    every pixel in [0, 1] (a pass over them, made where real images enter)."""
    check_tensor(name, images, shape="(batch, 8, 8)")
    if images.dim() < 2 or len(images) == 0 or images[0].numel() != PIXELS:
        raise invalid(
            f"{name}.shape", tuple(images.shape), "(batch, 8, 8) or (batch, 64), batch >= 1"
        )
    if unit_range:
        low, high = torch.aminmax(images)
        if not (low >= 0 and high <= 1):  # written so that NaN fails too
            raise invalid(
                name,
                f"pixels from {float(low):g} to {float(high):g}",
                "pixels in [0, 1], as sslm_lab.data.digits gives them and the generator makes them",
                "sklearn's raw digits count 0..16: divide them by 16",
            )


def _check_logits(name: str, logits: Any) -> None:
    """D's logits (batch,), float, batch >= 1."""
    check_tensor(name, logits, shape="(batch,)")
    if logits.dim() != 1 or len(logits) == 0:
        raise invalid(
            f"{name}.shape", tuple(logits.shape), "(batch,), batch >= 1: one logit per image"
        )


def _check_players(generator: Any, discriminator: Any) -> None:
    """A generator with `sample_noise` (a `DigitGenerator`) and a discriminator module."""
    if not isinstance(generator, nn.Module) or not hasattr(generator, "sample_noise"):
        allowed = "a DigitGenerator (an nn.Module with sample_noise)"
        raise invalid("type(generator)", type(generator), allowed)
    if not isinstance(discriminator, nn.Module):
        raise invalid("type(discriminator)", type(discriminator), "a DigitDiscriminator")


def _check_optimizers(
    generator: nn.Module, discriminator: nn.Module, optimizers: tuple[Any, Any]
) -> None:
    """Each optimizer over its own player's parameters and none of the other's: swapped,
    the two would train each player on the other's loss without a word."""
    players = {"generator": generator, "discriminator": discriminator}
    for (own, player), (other, rival), optimizer in zip(
        players.items(), reversed(players.items()), optimizers, strict=True
    ):
        name = f"{own}_optimizer"
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise invalid(f"type({name})", type(optimizer), "a torch.optim.Optimizer")
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        mine, theirs = {id(p) for p in player.parameters()}, {id(p) for p in rival.parameters()}
        if not held & mine or held & theirs:
            shown = (
                f"an optimizer over {len(held & mine)} of the {own}'s {len(mine)} parameter "
                f"tensors and {len(held & theirs)} of the {other}'s"
            )
            allowed = f"one over the {own}'s parameters only"
            raise invalid(name, shown, allowed, "are the two optimizers swapped?")


def _check_step(step: Any) -> None:
    check_int("step", step, low=0, hint="the trainer's step count")
