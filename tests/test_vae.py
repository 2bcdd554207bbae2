"""The VAE pieces: KL against Monte Carlo, the likelihood, the bounds, schedules, baselines."""

from __future__ import annotations

import math
import re
from functools import lru_cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sslm_lab.checks import ArgumentError
from sslm_lab.lab import recipes
from sslm_lab.lab.profiles.vae import PARAMETERS
from sslm_lab.transformer import TransformerConfig
from sslm_lab.vae import (
    PIXEL_LEVELS,
    DigitsVAE,
    PixelMixture,
    SentenceVAE,
    active_units,
    bits_per_pixel,
    categorical_pixel_log_likelihood,
    elbo_terms,
    fit_independent_pixels,
    fit_pixel_mixture,
    free_bits_kl,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
    kl_weight,
    latent_activity,
    pixel_levels,
    reparameterize,
    vae_loss,
    vae_objective,
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
    assert bits_per_pixel(64 * math.log(2)) == pytest.approx(1.0)
    assert bits_per_pixel(torch.tensor(64 * math.log(2))) == pytest.approx(1.0)


def test_the_code_enters_the_decoder_at_the_scale_of_the_token_embeddings() -> None:
    torch.manual_seed(0)
    model = SentenceVAE(small_config(False), small_config(True), latent_size=16)
    added = model.from_latent(torch.randn(256, 16))  # (batch, n_embd): what z adds
    embedding_std = model.decoder.token_embedding.weight.std()
    assert added.std() < 5 * embedding_std, "z would drown the token embeddings at the start"


# ---------------------------------------------------------------------------- bad input (issue 32)

IMAGES = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))  # in [0, 1)
LEVELS = pixel_levels(IMAGES)  # (4, 64)


@lru_cache(maxsize=1)
def sentence_vae() -> SentenceVAE:
    torch.manual_seed(0)
    return SentenceVAE(small_config(False), small_config(True), latent_size=4).eval()


def ids(*shape: int, value: int | None = None) -> torch.Tensor:
    if value is not None:
        return torch.full(shape, value)
    return torch.randint(0, 20, shape, generator=torch.Generator().manual_seed(0))


BAD_CALLS = {
    # shapes that must agree
    "mu and logvar": (
        lambda: gaussian_kl(torch.zeros(4, 2), torch.zeros(4, 3)),
        re.escape("mu.shape, logvar.shape=((4, 2), (4, 3))") + ".*the same shape",
    ),
    "mu and logvar, sampled": (
        lambda: reparameterize(torch.zeros(4, 2), torch.zeros(4, 3)),
        re.escape("mu.shape, logvar.shape=((4, 2), (4, 3))"),
    ),
    "z and mu": (
        lambda: gaussian_log_density(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, 2)),
        re.escape("z.shape, mu.shape"),
    ),
    "7x7 images": (
        lambda: vae_loss(DigitsVAE(), torch.rand(4, 7, 7)),
        r"images\.shape=\(4, 7, 7\)",
    ),
    "an empty batch": (lambda: vae_loss(DigitsVAE(), torch.rand(0, 8, 8)), r"images\.shape"),
    "z of the wrong size": (lambda: DigitsVAE().decode(torch.zeros(4, 3)), "latent_size=2"),
    "z and images": (
        lambda: DigitsVAE().log_likelihood(torch.zeros(3, 2), IMAGES),
        r"z\.shape=\(3, 2\).*batch = 4",
    ),
    "a 1-D KL for free bits": (
        lambda: free_bits_kl(torch.ones(4), 0.1),
        r"kl_per_dimension\.shape=\(4,\).*per_dimension=True",
    ),
    "1-D posterior means": (lambda: latent_activity(torch.ones(4)), r"posterior_means\.shape"),
    "3-D posterior means": (lambda: active_units(torch.ones(4, 2, 2)), r"posterior_means\.shape"),
    "1-D levels": (lambda: fit_pixel_mixture(LEVELS[0], 2), r"levels\.shape"),
    "a mixture of mismatched shapes": (
        lambda: PixelMixture(torch.zeros(2), torch.zeros(3, 64, PIXEL_LEVELS)),
        re.escape("log_weights.shape, log_probs.shape"),
    ),
    "a mask shaped unlike the ids": (
        lambda: sentence_vae().encode(ids(3, 6), torch.ones(3, 5)),
        re.escape("attention_mask.shape, input_ids.shape=((3, 5), (3, 6))"),
    ),
    "z of the wrong size for sampling": (
        lambda: sentence_vae().sample(torch.zeros(2, 5), ids(2, 1), 3),
        r"z\.shape=\(2, 5\).*latent_size=4",
    ),
    "z and start ids": (
        lambda: sentence_vae().sample(torch.zeros(3, 4), ids(2, 1), 3),
        r"z\.shape=\(3, 4\).*batch = 2",
    ),
    # values: pixels, levels, ids
    "digits on sklearn's 0-16 scale": (
        lambda: vae_loss(DigitsVAE(), IMAGES * 16),
        r"images=.*allowed: pixels in \[0, 1\].*pixel_levels.*divide them by 16",
    ),
    "NaN pixels": (lambda: pixel_levels(torch.full((2, 8, 8), math.nan)), "images="),
    "a level of 17": (
        lambda: categorical_pixel_log_likelihood(torch.zeros(1, 64, 17), torch.full((1, 64), 17)),
        "levels=.*0..16",
    ),
    "a level of -1": (
        lambda: fit_pixel_mixture(torch.full((4, 64), -1), 2),
        "levels=.*0..16",
    ),
    "a level of 20 in a fitted mixture": (
        lambda: fit_independent_pixels(LEVELS).log_likelihood(torch.full((2, 64), 20)),
        "levels=",
    ),
    "float levels": (lambda: fit_pixel_mixture(LEVELS.float(), 2), r"levels\.dtype"),
    "images where levels belong": (
        lambda: categorical_pixel_log_likelihood(torch.zeros(4, 64, 17), IMAGES.view(4, 64)),
        r"levels\.dtype.*pixel_levels",
    ),
    "ids beyond the vocabulary": (
        lambda: sentence_vae().encode(ids(2, 4, value=20)),
        r"max\(input_ids\)=20 .*ids in \[0, 19\], the vocabulary",
    ),
    "negative ids": (lambda: sentence_vae().encode(ids(2, 4, value=-1)), r"min\(input_ids\)=-1"),
    "start ids beyond the vocabulary": (
        lambda: sentence_vae().sample(torch.zeros(2, 4), ids(2, 1, value=99), 2),
        r"max\(start_ids\)=99",
    ),
    "float ids": (lambda: sentence_vae().encode(ids(2, 4).float()), r"input_ids\.dtype"),
    "an empty sentence": (lambda: sentence_vae().encode(ids(2, 0)), r"input_ids\.shape"),
    "a bad word_dropout_id, even unused": (
        lambda: SentenceVAE(small_config(False), small_config(True), word_dropout_id=-3),
        "word_dropout_id=-3",
    ),
    "a FLOP count at no length": (lambda: sentence_vae().flops_per_token(0), "seq_len=0"),
    "a cycle_steps shorter than its ramp": (
        lambda: kl_weight(3, "linear", ramp_steps=5, cycle_steps=2),
        "cycle_steps=2",
    ),
    "NaN nats": (lambda: bits_per_pixel(math.nan), "nats_per_image=nan"),
    "nats of many images": (lambda: bits_per_pixel(torch.ones(2)), r"nats_per_image\.shape"),
    # types
    "an int as generator": (
        lambda: reparameterize(torch.zeros(2, 2), torch.zeros(2, 2), 0),
        r"type\(generator\)=<class \'int\'>",
    ),
    "an int as generator of the bound": (
        lambda: iwae_bound(DigitsVAE(), IMAGES, k=2, generator=0),
        r"type\(generator\)=<class \'int\'>",
    ),
    "an int as generator of EM": (
        lambda: fit_pixel_mixture(LEVELS, 2, generator=0),
        r"type\(generator\)=<class \'int\'>",
    ),
    "an int as generator of sampling": (
        lambda: sentence_vae().sample(torch.zeros(2, 4), ids(2, 1), 2, generator=0),
        r"type\(generator\)=<class \'int\'>",
    ),
    "a numpy array": (lambda: pixel_levels(IMAGES.numpy()), r"type\(images\)=.*ndarray"),
    "a string as a bool": (
        lambda: gaussian_kl(torch.zeros(2, 2), torch.zeros(2, 2), per_dimension="no"),
        "per_dimension='no'",
    ),
    "no inputs": (lambda: vae_loss(DigitsVAE()), "inputs=()"),
    "not a VAE": (lambda: elbo_terms(torch.nn.Linear(2, 2), IMAGES), r"type\(model\)"),
    "a dict as batch": (
        lambda: vae_objective(DigitsVAE(), {"images": IMAGES}, 0),
        r"type\(batch\)=.*dict",
    ),
    "integer images": (
        lambda: vae_loss(DigitsVAE(), torch.zeros(2, 8, 8, dtype=torch.long)),
        r"images\.dtype",
    ),
    "a list of means": (lambda: latent_activity([[0.1, 0.2], [0.3, 0.1]]), "posterior_means"),
    "a dict as config": (
        lambda: SentenceVAE({"causal": False}, small_config(True)),
        "encoder_config=",
    ),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_a_bad_call_is_refused_naming_the_argument(case: str) -> None:
    call, message = BAD_CALLS[case]
    with pytest.raises(ArgumentError, match=message):
        call()


def test_the_edges_of_what_is_allowed_pass() -> None:
    edges = torch.stack([torch.zeros(8, 8), torch.ones(8, 8)])  # pixels exactly 0 and 1
    assert pixel_levels(edges).unique().tolist() == [0, PIXEL_LEVELS - 1]
    model = sentence_vae()
    mu, _ = model.encode(ids(2, 12, value=19), torch.ones(2, 12, dtype=torch.bool))
    assert mu.shape == (2, 4)  # the last id of the vocabulary, the whole block
    long_start = ids(1, 15)  # longer than block_size=12: read through its last 12 tokens
    assert model.sample(torch.zeros(1, 4), long_start, 2, temperature=0).shape == (1, 17)
    assert kl_weight(2, "linear", ramp_steps=4, cycle_steps=None) == 0.5
    assert free_bits_kl(torch.ones(1, 3), 0.0) == 3.0


def test_the_sentence_vae_counts_its_decoders_output_layer_in_its_flops() -> None:
    model, seq = sentence_vae(), 10
    encoder = model.encoder.flops_per_token(seq)
    decoder = model.decoder.flops_per_token(seq, output_layer=True)
    assert model.flops_per_token(seq) == encoder + decoder
    bodies = encoder + model.decoder.flops_per_token(seq, output_layer=False)
    vocab, width = model.decoder.config.vocab_size, model.decoder.config.n_embd
    assert model.flops_per_token(seq) - bodies == 6 * vocab * width  # the tied vocab x n_embd
    # At the default recipe (batch 64 x 32 tokens): VAE 1.338e10 against SimCSE 1.015e10 per
    # step; the old count, which left the decoder's output layer out, made the two equal.
    vae, simcse = recipes.flops_per_step("vae"), recipes.flops_per_step("simcse")
    assert vae > simcse


def test_notebook_04_refuses_a_single_importance_sample() -> None:
    spec = PARAMETERS.specs["iwae_samples"]
    with pytest.raises(ArgumentError, match="iwae_samples=1"):
        spec.check("iwae_samples", 1)
    assert spec.check("iwae_samples", 2) == 2
