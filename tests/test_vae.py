"""The VAE pieces: KL against Monte Carlo, the likelihood, the bounds, schedules, baselines."""

from __future__ import annotations

import math
from functools import lru_cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sslm_lab.checks import ArgumentError
from sslm_lab.transformer import TransformerConfig
from sslm_lab.vae import (
    PIXEL_LEVELS,
    DigitsVAE,
    SentenceVAE,
    active_units,
    categorical_pixel_log_likelihood,
    fit_independent_pixels,
    fit_pixel_mixture,
    free_bits_kl,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
    kl_weight,
    pixel_levels,
    reparameterize,
    vae_loss,
)


def test_closed_form_kl_equals_a_monte_carlo_estimate() -> None:
    generator = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.0, -1.0, 0.7]])
    z = reparameterize(mu.expand(200_000, 3), logvar.expand(200_000, 3), generator)
    zeros = torch.zeros_like(z)
    monte_carlo = (
        gaussian_log_density(z, mu, logvar) - gaussian_log_density(z, zeros, zeros)
    ).mean()
    assert float(monte_carlo) == pytest.approx(float(gaussian_kl(mu, logvar)), abs=0.02)


def test_kl_is_zero_only_at_the_prior() -> None:
    assert float(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4))) == 0.0
    assert float(gaussian_kl(torch.full((1, 4), 0.1), torch.zeros(1, 4))) > 0


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=1000))
def test_the_pixel_categorical_sums_to_one_over_the_17_levels(seed: int) -> None:
    logits = torch.randn(1, 1, PIXEL_LEVELS, generator=torch.Generator().manual_seed(seed))
    probabilities = [
        categorical_pixel_log_likelihood(logits, torch.tensor([[level]])).exp()
        for level in range(PIXEL_LEVELS)
    ]
    assert float(sum(probabilities)) == pytest.approx(1.0, abs=1e-5)


def test_pixel_levels_round_trip_the_digits_scaling() -> None:
    levels = torch.arange(17).repeat(4)[:64].view(1, 8, 8)
    assert torch.equal(pixel_levels(levels / 16.0), levels.view(1, 64))


def digits(count: int = 128) -> torch.Tensor:
    from sslm_lab.data.digits import load_digits_split

    return load_digits_split("train")[0][:count]


@lru_cache(maxsize=1)
def trained_vae(steps: int) -> tuple[DigitsVAE, list[float]]:
    torch.manual_seed(0)
    model = DigitsVAE(latent_size=2, hidden_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    images, losses = digits(), []  # trained once, shared by the tests that read it
    for _ in range(steps):
        loss, _ = vae_loss(model, images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def test_a_short_training_run_lowers_the_negative_elbo() -> None:
    _, losses = trained_vae(100)
    assert losses[-1] < losses[0] - 20, (losses[0], losses[-1])


def test_iwae_is_above_the_elbo_and_does_not_fall_with_k() -> None:
    model, _ = trained_vae(100)
    images = digits(64)
    bounds = [
        float(iwae_bound(model, images, k=k, generator=torch.Generator().manual_seed(1)).mean())
        for k in (1, 10, 100)
    ]
    with torch.no_grad():
        mu, logvar = model.encode(images)
        z = reparameterize(mu, logvar, torch.Generator().manual_seed(2))
        elbo = float((model.log_likelihood(z, images) - gaussian_kl(mu, logvar)).mean())
    assert bounds[1] >= elbo and bounds[2] >= elbo
    assert bounds[0] <= bounds[1] <= bounds[2], bounds


def test_free_bits_clamp_each_dimension_from_below() -> None:
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]])  # batch means 0.2 and 3.0
    assert float(free_bits_kl(kl, 0.5)) == pytest.approx(0.5 + 3.0)
    assert float(free_bits_kl(kl, 0.0)) == pytest.approx(3.2)


def test_annealing_schedules() -> None:
    assert kl_weight(7, "constant", beta=2.0) == 2.0
    assert [kl_weight(s, "linear", ramp_steps=4) for s in (0, 2, 4, 9)] == [0, 0.5, 1, 1]
    cyclical = [kl_weight(s, "cyclical", ramp_steps=2, cycle_steps=4) for s in range(9)]
    assert cyclical == [0, 0.5, 1, 1, 0, 0.5, 1, 1, 0]


def test_active_units_count_dimensions_whose_mean_moves() -> None:
    means = torch.stack(
        [torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.05 * torch.randn(50)], 1
    )
    assert active_units(means) == 1


def test_em_never_lowers_the_likelihood_and_the_mixture_beats_independent_pixels() -> None:
    levels = pixel_levels(digits(400))
    mixture, history = fit_pixel_mixture(levels, 10, 20, generator=torch.Generator().manual_seed(0))
    assert all(b >= a - 1e-6 for a, b in zip(history, history[1:], strict=False))
    independent = fit_independent_pixels(levels)
    assert (
        float(mixture.log_likelihood(levels).mean())
        > float(independent.log_likelihood(levels).mean()) + 3
    )
    assert torch.allclose(
        independent.log_probs.exp().sum(-1), torch.ones(1, 64, dtype=torch.float64)
    )


def small_config(causal: bool) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=20, block_size=12, n_layer=1, n_head=2, n_embd=16, causal=causal
    )


def test_the_sentence_vae_trains_and_scores_padded_sentences() -> None:
    torch.manual_seed(0)
    model = SentenceVAE(
        small_config(False), small_config(True), latent_size=4, word_dropout=0.2, word_dropout_id=1
    )
    ids = torch.randint(2, 20, (8, 10))
    mask = torch.ones_like(ids)
    mask[:, 7:] = 0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _ = vae_loss(model, ids, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 3
    model.eval()
    z = torch.zeros(8, 4)
    changed = ids.clone()
    changed[:, 8:] = 0  # padding: must not change the score
    assert torch.allclose(
        model.log_likelihood(z, ids, mask), model.log_likelihood(z, changed, mask)
    )
    assert model.sample(z[:2], ids[:2, :1], 5).shape == (2, 6)
    assert iwae_bound(model, ids, mask, k=3).shape == (8,)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: vae_loss(DigitsVAE(), digits(4), beta=-0.1), "beta"),
        (lambda: iwae_bound(DigitsVAE(), digits(4), k=0), "k"),
        (lambda: DigitsVAE(latent_size=0), "latent_size"),
        (lambda: kl_weight(3, "sigmoid"), "schedule"),
        (lambda: kl_weight(3, "cyclical", ramp_steps=5, cycle_steps=2), "cycle_steps"),
        (lambda: free_bits_kl(torch.zeros(2, 2), -1.0), "free_bits"),
        (lambda: SentenceVAE(small_config(True), small_config(True)), "causal"),
        (
            lambda: SentenceVAE(small_config(False), small_config(True), word_dropout=0.1),
            "word_dropout_id",
        ),
    ],
)
def test_bad_input_names_the_parameter(call, name: str) -> None:
    with pytest.raises(ArgumentError, match=name):
        call()


def test_bits_per_pixel() -> None:
    from sslm_lab.vae import bits_per_pixel

    assert bits_per_pixel(64 * math.log(2)) == pytest.approx(1.0)


def test_the_code_enters_the_decoder_at_the_scale_of_the_token_embeddings() -> None:
    torch.manual_seed(0)
    model = SentenceVAE(small_config(False), small_config(True), latent_size=16)
    added = model.from_latent(torch.randn(256, 16))  # (batch, n_embd): what z adds
    embedding_std = model.decoder.token_embedding.weight.std()
    assert added.std() < 5 * embedding_std, "z would drown the token embeddings at the start"
