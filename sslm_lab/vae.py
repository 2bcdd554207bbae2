"""Variational autoencoders: a code z per example, learned by maximising a bound on log p(x).

An encoder maps x to a Gaussian q(z|x) = N(μ, diag σ²); z = μ + σ·ε is drawn by the
reparameterisation trick (Kingma & Welling 2014), so the gradient flows through μ and σ;
a decoder gives p(x|z). The evidence lower bound, per example, in nats:

    ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x)

Pieces, in reading order:

    reparameterize, gaussian_kl       the sample and the KL in closed form
    categorical_pixel_log_likelihood  an exact likelihood for the 17 grey levels of the digits
    DigitsVAE                         MLP encoder and decoder for 8x8 digits
    elbo_terms, vae_loss              the two terms, β weighting and free bits
    kl_weight                         KL annealing: constant, linear, cyclical
    iwae_bound                        the importance-weighted bound with k samples
    latent_activity, active_units     Burda et al. 2016's count of used latent dimensions
    PixelMixture, fit_pixel_mixture   classical baselines: per-pixel categoricals, and a
                                      mixture of them fitted by EM
    SentenceVAE                       Transformer encoder -> z -> causal decoder, word dropout

A model fits `elbo_terms` and `iwae_bound` when it has `encode(*inputs) -> (μ, log σ²)`
and `log_likelihood(z, *inputs) -> log p(x|z)` per example: `DigitsVAE` takes
`(images,)`, `SentenceVAE` takes `(input_ids, attention_mask)`.

Arguments are checked before any work (`sslm_lab.checks`; the checks sit at the end of the
file): types, shapes that must agree, and values where the data enter: images in [0, 1] in
`pixel_levels`, grey levels 0..16 in the likelihoods and the mixture, token ids within the
vocabulary in `SentenceVAE.encode`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import (
    check_bool,
    check_choice,
    check_generator,
    check_int,
    check_real,
    check_tensor,
    check_token_ids,
    invalid,
)
from sslm_lab.masking import IGNORE_INDEX, validate_attention_mask
from sslm_lab.transformer import Transformer, TransformerConfig

PIXEL_LEVELS = 17  # sklearn's digits hold counts 0..16 in every pixel
PIXELS = 64  # 8 x 8
SCHEDULES = ("constant", "linear", "cyclical")


# ---------------------------------------------------------------------------- the Gaussian code


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = μ + σ·ε with ε ~ N(0, I): a sample of q(z|x) that gradients flow through.

    mu, logvar: (..., latent). Returns z of the same shape.
    """
    _check_gaussian(mu, logvar)
    check_generator("generator", generator, mu.device)
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * noise


def gaussian_kl(mu: Tensor, logvar: Tensor, per_dimension: bool = False) -> Tensor:
    """KL(N(μ, diag σ²) || N(0, I)) in closed form, nats.

    Per dimension ½(μ² + σ² - 1 - log σ²). mu, logvar: (batch, latent). Returns (batch,),
    the sum over dimensions, or (batch, latent) with per_dimension=True (free bits needs it).
    """
    _check_gaussian(mu, logvar)
    per_dimension = check_bool("per_dimension", per_dimension)
    per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return per_dim if per_dimension else per_dim.sum(-1)


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; μ, diag σ²), summed over the last (latent) dimension: (...,) nats.

    z: (..., latent); mu and logvar one shape that broadcasts to z's (e.g. (1, latent))."""
    check_tensor("z", z, shape="(..., latent)")
    _check_gaussian(mu, logvar)
    try:
        fits = torch.broadcast_shapes(z.shape, mu.shape) == z.shape
    except RuntimeError:  # shapes that do not broadcast at all
        fits = False
    if not fits:
        raise invalid(
            "z.shape, mu.shape",
            (tuple(z.shape), tuple(mu.shape)),
            "mu and logvar of a shape that broadcasts to z's",
        )
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


# ---------------------------------------------------------------------------- digits


def pixel_levels(images: Tensor) -> Tensor:
    """Images in [0, 1] (as `sslm_lab.data.digits` gives them) -> grey levels 0..16, int64,
    flattened to (batch, 64). The images' range is checked here, where they enter the
    likelihood (one pass over the pixels)."""
    _check_images(images)
    low, high = torch.aminmax(images)
    if not (low >= 0 and high <= 1):  # written so that NaN fails too
        raise invalid(
            "images",
            f"pixels from {float(low):g} to {float(high):g}",
            "pixels in [0, 1], as sslm_lab.data.digits gives them",
            f"pixel_levels maps [0, 1] to the {PIXEL_LEVELS} grey levels 0..{PIXEL_LEVELS - 1}; "
            "sklearn's raw digits count 0..16, so divide them by 16",
        )
    return (images.reshape(len(images), -1) * (PIXEL_LEVELS - 1)).round().long()


def categorical_pixel_log_likelihood(logits: Tensor, levels: Tensor) -> Tensor:
    """log p(x|z) = Σ_pixels log softmax(logits)[level], nats per image.

    logits: (batch, pixels, 17), one categorical over the 17 grey levels per pixel; levels:
    (batch, pixels) integers in 0..16. A categorical is an exact discrete likelihood, so the
    result is a true log-probability of the image (unlike a Gaussian density on pixels).
    Returns (batch,).
    """
    check_tensor("logits", logits, shape=f"(batch, pixels, {PIXEL_LEVELS})")
    levels = _check_levels(levels)
    if logits.shape[:-1] != levels.shape or logits.size(-1) != PIXEL_LEVELS:
        raise invalid(
            "logits.shape, levels.shape",
            (tuple(logits.shape), tuple(levels.shape)),
            f"(batch, pixels, {PIXEL_LEVELS}) and (batch, pixels)",
        )
    log_probs = logits.log_softmax(-1)  # (batch, pixels, 17)
    return log_probs.gather(-1, levels.unsqueeze(-1)).squeeze(-1).sum(-1)


def bits_per_pixel(nats_per_image: float | Tensor, pixels: int = PIXELS) -> float:
    """A negative log-likelihood in nats per image as bits per pixel: nats / pixels / ln 2.

    nats_per_image: a number, or a tensor holding one."""
    if isinstance(nats_per_image, Tensor):
        if nats_per_image.numel() != 1:
            shape = tuple(nats_per_image.shape)
            raise invalid("nats_per_image.shape", shape, "one number: take the mean first")
        nats_per_image = nats_per_image.item()
    nats = check_real("nats_per_image", nats_per_image)
    pixels = check_int("pixels", pixels, low=1)
    return nats / pixels / math.log(2)


class DigitsVAE(nn.Module):
    """MLP encoder 64 -> hidden -> (μ, log σ²) and decoder z -> hidden -> 64 × 17 logits.

    `encode(images)` takes images (batch, 8, 8) in [0, 1]; `decode(z)` returns logits
    (batch, 64, 17) of each pixel's grey level; `log_likelihood(z, images)` scores the images
    under them (nats per image). A 2-D latent can be drawn and explored directly.
    """

    def __init__(self, latent_size: int = 2, hidden_size: int = 256) -> None:
        super().__init__()
        self.latent_size = _check_latent_size(latent_size)
        check_int("hidden_size", hidden_size, low=1)
        self.encoder = nn.Sequential(
            nn.Linear(PIXELS, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 2 * latent_size)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, PIXELS * PIXEL_LEVELS),
        )

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """images (batch, 8, 8) -> μ, log σ², each (batch, latent). (Their range [0, 1] is
        checked where they are scored, in `pixel_levels`.)"""
        _check_images(images)
        mu, logvar = self.encoder(images.reshape(len(images), -1)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """z (batch, latent) -> logits (batch, 64, 17)."""
        _check_code(z, self.latent_size)
        return self.decoder(z).view(len(z), PIXELS, PIXEL_LEVELS)

    def log_likelihood(self, z: Tensor, images: Tensor) -> Tensor:
        """log p(images | z), (batch,) nats: images (batch, 8, 8) in [0, 1], z (batch, latent)."""
        levels = pixel_levels(images)
        _check_code(z, self.latent_size, batch=len(levels))
        return categorical_pixel_log_likelihood(self.decode(z), levels)

    @torch.no_grad()
    def mean_images(self, z: Tensor) -> Tensor:
        """The expected image under p(x|z), (batch, 8, 8) in [0, 1]: what a viewer shows."""
        levels = torch.arange(PIXEL_LEVELS, dtype=z.dtype, device=z.device) / (PIXEL_LEVELS - 1)
        return (self.decode(z).softmax(-1) @ levels).view(len(z), 8, 8)


# ---------------------------------------------------------------------------- the bound


def elbo_terms(
    model: nn.Module, *inputs: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """One-sample reconstruction term log p(x|z) (batch,) and the closed-form KL per
    dimension (batch, latent), both nats. ELBO = first - second.sum(-1)."""
    _check_model(model)
    _check_inputs(inputs)
    check_generator("generator", generator)
    mu, logvar = model.encode(*inputs)
    z = reparameterize(mu, logvar, generator)
    return model.log_likelihood(z, *inputs), gaussian_kl(mu, logvar, per_dimension=True)


def free_bits_kl(kl_per_dimension: Tensor, free_bits: float) -> Tensor:
    """Σ_i max(λ, mean over the batch of KL_i): Kingma et al. 2016's free bits, nats.

    kl_per_dimension: (batch, latent). A dimension whose batch-mean KL is below λ = free_bits
    costs λ whatever it does, so the optimiser gains nothing by pushing it to zero (the
    gradient there is zero); λ = 0 gives the plain mean KL. Returns a scalar.
    """
    free_bits = check_real("free_bits", free_bits, low=0, hint="nats per latent dimension")
    check_tensor("kl_per_dimension", kl_per_dimension, shape="(batch, latent)")
    if kl_per_dimension.dim() != 2 or len(kl_per_dimension) == 0:
        raise invalid(
            "kl_per_dimension.shape",
            tuple(kl_per_dimension.shape),
            "(batch, latent), batch >= 1",
            "each dimension's KL, gaussian_kl(mu, logvar, per_dimension=True), not their sum",
        )
    return kl_per_dimension.mean(0).clamp(min=free_bits).sum()


def vae_loss(
    model: nn.Module,
    *inputs: Tensor,
    beta: float = 1.0,
    free_bits: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """-(reconstruction - β · KL), batch mean, nats per example; the KL through free bits.

    β = 1 is the ELBO; β > 1 the β-VAE (Higgins et al. 2017), which buys a more compressed
    code with worse reconstructions; β < 1 the reverse. Metrics (unweighted, batch means):
    reconstruction (log p(x|z)), kl, elbo.
    """
    beta = check_real("beta", beta, low=0, hint="the KL's weight; 1 is the ELBO")
    check_real("free_bits", free_bits, low=0, hint="nats per latent dimension")  # before work
    reconstruction, kl_per_dim = elbo_terms(model, *inputs, generator=generator)
    kl = kl_per_dim.sum(-1)  # (batch,)
    loss = -reconstruction.mean() + beta * free_bits_kl(kl_per_dim, free_bits)
    metrics = {
        "reconstruction": reconstruction.mean().detach(),
        "kl": kl.mean().detach(),
        "elbo": (reconstruction - kl).mean().detach(),
    }
    return loss, metrics


def kl_weight(
    step: int,
    schedule: str = "constant",
    *,
    beta: float = 1.0,
    ramp_steps: int = 1,
    cycle_steps: int | None = None,
) -> float:
    """The KL's weight at a training step (KL annealing, Bowman et al. 2016; Fu et al. 2019).

        constant  β
        linear    β · min(1, step / ramp_steps): from 0 to β, then β
        cyclical  β · min(1, (step mod cycle_steps) / ramp_steps): the linear ramp again
                  every cycle_steps (Fu et al. use ramp_steps = cycle_steps / 2)

    Annealing lets the decoder learn to use z before the KL pushes q(z|x) onto the prior.
    """
    check_int("step", step, low=0)
    check_choice("schedule", schedule, SCHEDULES)
    beta = check_real("beta", beta, low=0)
    ramp_steps = check_int("ramp_steps", ramp_steps, low=1)
    cycle_steps = check_int(  # needed by the cyclical schedule; checked whenever it is given
        "cycle_steps",
        cycle_steps,
        low=ramp_steps,
        allow_none=schedule != "cyclical",
        hint=f"at least ramp_steps={ramp_steps}: a cycle holds its ramp",
    )
    if schedule == "constant":
        return beta
    if schedule == "linear":
        return beta * min(1.0, step / ramp_steps)
    return beta * min(1.0, (step % cycle_steps) / ramp_steps)


def vae_objective(
    model: nn.Module,
    batch: Tensor | tuple[Tensor, ...],
    step: int,
    *,
    schedule: str = "constant",
    beta: float = 1.0,
    ramp_steps: int = 1,
    cycle_steps: int | None = None,
    free_bits: float = 0.0,
) -> tuple[Tensor, dict[str, Any]]:
    """`vae_loss` in the trainer's shape (bind the keywords with functools.partial): the
    batch is the model's inputs (a tensor or a tuple), the KL weight `kl_weight(step, ...)`."""
    weight = kl_weight(step, schedule, beta=beta, ramp_steps=ramp_steps, cycle_steps=cycle_steps)
    if not isinstance(batch, Tensor | tuple | list):
        raise invalid("type(batch)", type(batch), "the model's inputs: a tensor or a tuple")
    inputs = tuple(batch) if isinstance(batch, tuple | list) else (batch,)
    loss, metrics = vae_loss(model, *inputs, beta=weight, free_bits=free_bits)
    return loss, {**metrics, "kl_weight": weight}


@torch.no_grad()
def iwae_bound(
    model: nn.Module, *inputs: Tensor, k: int, generator: torch.Generator | None = None
) -> Tensor:
    """The importance-weighted bound (Burda et al. 2016), nats per example, (batch,):

        log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x),   z_j ~ q(z|x)

    k = 1 is a one-sample ELBO; the bound rises towards log p(x) as k grows (in
    expectation), so -bound at large k is an honest NLL estimate. logsumexp keeps it stable.
    """
    _check_model(model)
    _check_inputs(inputs)
    k = check_int("k", k, low=1, hint="the number of importance samples")
    check_generator("generator", generator)
    mu, logvar = model.encode(*inputs)
    log_weights = []
    for _ in range(k):  # one sample at a time: memory stays that of one forward pass
        z = reparameterize(mu, logvar, generator)
        prior = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        log_weights.append(
            model.log_likelihood(z, *inputs) + prior - gaussian_log_density(z, mu, logvar)
        )
    return torch.stack(log_weights).logsumexp(0) - math.log(k)  # (batch,)


def latent_activity(posterior_means: Tensor) -> Tensor:
    """Cov over x of E_q[z_i | x] for each dimension: posterior_means (n, latent) -> (latent,).

    A dimension whose mean does not move with x carries no information about x."""
    check_tensor("posterior_means", posterior_means, shape="(n, latent)")
    if posterior_means.dim() != 2:
        raise invalid("posterior_means.shape", tuple(posterior_means.shape), "(n, latent)")
    check_int("number of examples", len(posterior_means), low=2, hint="a variance needs two")
    return posterior_means.var(0)


def active_units(posterior_means: Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions have latent_activity > threshold (Burda et al. 2016: 0.01)."""
    threshold = check_real("threshold", threshold, low=0)
    return int((latent_activity(posterior_means) > threshold).sum())


# ---------------------------------------------------------------------------- classical baselines


@dataclass
class PixelMixture:
    """A mixture of K products of per-pixel categoricals:

        p(x) = Σ_c π_c Π_pixels θ_c[pixel, x_pixel]

    log_weights: (K,) log π; log_probs: (K, pixels, 17) log θ. K = 1 is the model of
    independent pixels. `log_likelihood(levels)` -> (n,) nats per image.
    """

    log_weights: Tensor
    log_probs: Tensor

    def __post_init__(self) -> None:
        check_tensor("log_weights", self.log_weights, shape="(K,)")
        check_tensor("log_probs", self.log_probs, shape=f"(K, pixels, {PIXEL_LEVELS})")
        weights, probs = tuple(self.log_weights.shape), tuple(self.log_probs.shape)
        if len(weights) != 1 or len(probs) != 3 or probs[::2] != (*weights, PIXEL_LEVELS):
            raise invalid(
                "log_weights.shape, log_probs.shape",
                (weights, probs),
                f"(K,) and (K, pixels, {PIXEL_LEVELS})",
            )

    def component_log_likelihoods(self, levels: Tensor) -> Tensor:
        """(n, K): log π_c + log p(x | c) for every image and component; levels (n, pixels)."""
        levels = _check_levels(levels, pixels=self.log_probs.size(1))
        one_hot = F.one_hot(levels, PIXEL_LEVELS).to(self.log_probs.dtype)  # (n, pixels, 17)
        per_component = torch.einsum("npl,kpl->nk", one_hot, self.log_probs)
        return per_component + self.log_weights

    def log_likelihood(self, levels: Tensor) -> Tensor:
        return self.component_log_likelihoods(levels).logsumexp(-1)


def fit_pixel_mixture(
    levels: Tensor,
    components: int,
    iterations: int = 50,
    smoothing: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[PixelMixture, list[float]]:
    """Fit a `PixelMixture` by expectation-maximisation (Dempster et al. 1977).

    levels: (n, pixels) int64 in 0..16 (`pixel_levels`). E-step: responsibilities
    r[n, c] ∝ π_c p(x_n | c). M-step: π_c = mean_n r[n, c]; θ_c = r-weighted level counts
    plus `smoothing` (a Dirichlet prior, so an unseen level keeps some probability on test
    images). Starts from random responsibilities. Returns the model and the mean training
    log-likelihood (nats per image) after each iteration, which EM never lowers (up to the
    smoothing, a MAP term).
    """
    components = check_int("components", components, low=1)
    iterations = check_int("iterations", iterations, low=1)
    smoothing = check_real("smoothing", smoothing, low=0, low_open=True)
    check_generator("generator", generator)
    levels = _check_levels(levels)
    one_hot = F.one_hot(levels, PIXEL_LEVELS).double()  # (n, pixels, 17)
    responsibilities = torch.rand(len(levels), components, generator=generator, dtype=torch.float64)
    responsibilities /= responsibilities.sum(1, keepdim=True)
    history = []
    for _ in range(iterations):
        counts = torch.einsum("nk,npl->kpl", responsibilities, one_hot) + smoothing
        model = PixelMixture(
            log_weights=responsibilities.mean(0).log(),
            log_probs=(counts / counts.sum(-1, keepdim=True)).log(),
        )
        joint = model.component_log_likelihoods(levels)  # (n, K)
        history.append(float(joint.logsumexp(-1).mean()))
        responsibilities = joint.softmax(-1)
    return model, history


def fit_independent_pixels(levels: Tensor, smoothing: float = 1.0) -> PixelMixture:
    """Independent per-pixel categoricals (smoothed level frequencies): the 1-component mixture."""
    return fit_pixel_mixture(levels, components=1, iterations=1, smoothing=smoothing)[0]


# ---------------------------------------------------------------------------- sentences


class SentenceVAE(nn.Module):
    """A Transformer encoder reads the sentence into z; a causal decoder writes it back.

    encoder: an sslm_lab `Transformer` (causal=False); its hidden states, averaged over the
    real tokens, give μ and log σ². decoder: a `Transformer` (causal=True) whose next-token
    logits come through its tied token embedding.

    How z reaches the decoder: a projection of z is *added to the input embedding at every
    position*. A prefix token would be one key among seq that attention may learn to
    ignore, and it would shift every position by one; added everywhere, z is part of what
    every position reads, the direct route. That makes posterior collapse, where a strong
    decoder still ignores z, the more telling finding.

    Word dropout (Bowman et al. 2016): in training, each decoder input token is replaced by
    `word_dropout_id` with probability `word_dropout`, so predicting the next word from the
    previous ones alone gets harder and z is worth using. Targets are never dropped.
    """

    def __init__(
        self,
        encoder_config: TransformerConfig,
        decoder_config: TransformerConfig,
        latent_size: int = 32,
        word_dropout: float = 0.0,
        word_dropout_id: int | None = None,
    ) -> None:
        super().__init__()
        for name, config in (
            ("encoder_config", encoder_config),
            ("decoder_config", decoder_config),
        ):
            if not isinstance(config, TransformerConfig):
                raise invalid(name, config, "a sslm_lab.transformer.TransformerConfig")
        self.latent_size = _check_latent_size(latent_size)
        if encoder_config.causal or not decoder_config.causal:
            raise invalid(
                "encoder_config.causal, decoder_config.causal",
                (encoder_config.causal, decoder_config.causal),
                "(False, True): a bidirectional encoder and a causal decoder",
            )
        if encoder_config.vocab_size != decoder_config.vocab_size:
            raise invalid(
                "decoder_config.vocab_size",
                decoder_config.vocab_size,
                f"the encoder's vocab_size={encoder_config.vocab_size}",
            )
        self.word_dropout = check_real("word_dropout", word_dropout, low=0, high=1, high_open=True)
        self.word_dropout_id = check_int(  # needed when words are dropped; checked if given
            "word_dropout_id",
            word_dropout_id,
            low=0,
            high=decoder_config.vocab_size - 1,
            allow_none=self.word_dropout == 0,
        )
        self.encoder = Transformer(encoder_config)
        self.to_posterior = nn.Linear(encoder_config.n_embd, 2 * latent_size)
        self.decoder = Transformer(decoder_config)
        self.from_latent = nn.Linear(latent_size, decoder_config.n_embd)
        # At the token embeddings' scale (std 0.02): with PyTorch's default init, z ~ N(0, I)
        # would add noise far larger than the embeddings to every position at the start.
        nn.init.normal_(self.from_latent.weight, std=0.02)
        nn.init.zeros_(self.from_latent.bias)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (`TransformerModel.flops_per_token`): the encoder body,
        and the decoder body with its tied output layer, at every position. The maps to and
        from z run once per sentence and are left out. seq_len defaults to each block_size."""
        shortest = min(self.encoder.config.block_size, self.decoder.config.block_size)
        check_int("seq_len", seq_len, low=1, high=shortest, allow_none=True)
        encoder = self.encoder.flops_per_token(seq_len)
        return encoder + self.decoder.flops_per_token(seq_len, output_layer=True)

    def encode(
        self, input_ids: Tensor, attention_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(batch, seq) ids -> μ, log σ², each (batch, latent).

        Where a batch's ids are checked against the vocabulary (a pass over them, once a
        step): every bound encodes a batch before it scores the same ids, so `decode` and
        `log_likelihood` check their shapes only."""
        check_token_ids(
            "input_ids",
            input_ids,
            vocab_size=self.encoder.config.vocab_size,
            block_size=self.encoder.config.block_size,
        )
        _check_attention_mask(attention_mask, input_ids)
        hidden = self.encoder(input_ids, attention_mask)  # (batch, seq, n_embd)
        if attention_mask is None:
            pooled = hidden.mean(1)
        else:
            real = validate_attention_mask(attention_mask, *input_ids.shape).unsqueeze(-1)
            pooled = (hidden * real).sum(1) / real.sum(1).clamp(min=1)
        mu, logvar = self.to_posterior(pooled).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits (batch, seq, vocab) for decoder inputs (batch, seq) given z:
        z's projection is the decoder's `conditioning`, added at every position."""
        check_token_ids("input_ids", input_ids, block_size=self.decoder.config.block_size)
        _check_code(z, self.latent_size, batch=len(input_ids))
        _check_attention_mask(attention_mask, input_ids)
        conditioning = self.from_latent(z).unsqueeze(1)  # (batch, 1, n_embd)
        hidden = self.decoder(input_ids, attention_mask, conditioning=conditioning)
        return hidden @ self.decoder.token_embedding.weight.T  # tied output layer

    def drop_words(self, input_ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Decoder inputs with word dropout applied (in training mode only)."""
        check_token_ids("input_ids", input_ids, block_size=self.decoder.config.block_size)
        check_generator("generator", generator, input_ids.device)
        if not self.training or self.word_dropout == 0:
            return input_ids
        draws = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
        dropped = draws < self.word_dropout
        dropped[:, 0] = False  # the first token (the start of the sentence) always stays
        return input_ids.masked_fill(dropped, self.word_dropout_id)

    def log_likelihood(
        self, z: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None
    ) -> Tensor:
        """log p(tokens 2..n | token 1, z), summed over each sentence's predicted tokens:
        (batch,) nats. Padding is neither read as a target nor counted. The ids' range is
        checked in `encode`, which every bound calls first on the same ids."""
        check_token_ids("input_ids", input_ids, block_size=self.decoder.config.block_size)
        _check_code(z, self.latent_size, batch=len(input_ids))
        _check_attention_mask(attention_mask, input_ids)
        logits = self.decode(z, self.drop_words(input_ids), attention_mask)
        targets = input_ids[:, 1:]
        if attention_mask is not None:
            real = validate_attention_mask(attention_mask, *input_ids.shape)[:, 1:]
            targets = targets.masked_fill(~real, IGNORE_INDEX)
        nats = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            targets.flatten(),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )
        return -nats.view(len(input_ids), -1).sum(1)

    @torch.no_grad()
    def sample(
        self,
        z: Tensor,
        start_ids: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue start_ids (batch, start) given z (batch, latent), sampling each next token
        at `temperature` (0: greedy). Returns (batch, start + max_new_tokens) ids. A start
        longer than the decoder's block_size is read through its last block_size tokens."""
        check_int("max_new_tokens", max_new_tokens, low=1)
        temperature = check_real("temperature", temperature, low=0)
        check_token_ids("start_ids", start_ids, vocab_size=self.decoder.config.vocab_size)
        _check_code(z, self.latent_size, batch=len(start_ids))
        check_generator("generator", generator, start_ids.device)
        ids = start_ids
        for _ in range(max_new_tokens):
            logits = self.decode(z, ids[:, -self.decoder.config.block_size :])[:, -1]
            if temperature == 0:
                next_ids = logits.argmax(-1, keepdim=True)
            else:
                probs = (logits / temperature).softmax(-1)
                next_ids = torch.multinomial(probs, 1, generator=generator)
            ids = torch.cat([ids, next_ids], dim=1)
        return ids


# ---------------------------------------------------------------------------- argument checks


def _check_latent_size(latent_size: int) -> int:
    return check_int("latent_size", latent_size, low=1, hint="the number of dimensions of z")


def _check_model(model: Any) -> None:
    """A model the bounds can score: `encode(*inputs)` and `log_likelihood(z, *inputs)`."""
    if not all(callable(getattr(model, method, None)) for method in ("encode", "log_likelihood")):
        raise invalid(
            "type(model)",
            type(model),
            "a VAE with encode(*inputs) and log_likelihood(z, *inputs): DigitsVAE, SentenceVAE",
        )


def _check_inputs(inputs: tuple[Any, ...]) -> None:
    """The model's inputs, a tensor first: (images,) or (input_ids, attention_mask)."""
    allowed = "the model's inputs, a tensor first: (images,) or (input_ids, attention_mask)"
    if not inputs:
        raise invalid("inputs", inputs, allowed)
    if not isinstance(inputs[0], Tensor):
        raise invalid("type(inputs[0])", type(inputs[0]), allowed)


def _check_code(z: Any, latent_size: int, batch: int | None = None) -> None:
    """Codes z (batch, latent_size), float, batch >= 1 (and equal to `batch` when given)."""
    check_tensor("z", z, shape="(batch, latent)")
    rows = "batch >= 1" if batch is None else f"batch = {batch}, as the inputs hold"
    if z.dim() != 2 or len(z) == 0 or z.size(1) != latent_size or batch not in (None, len(z)):
        raise invalid("z.shape", tuple(z.shape), f"(batch, latent_size={latent_size}), {rows}")


def _check_gaussian(mu: Any, logvar: Any) -> None:
    """μ and log σ²: float tensors of one shape (..., latent)."""
    check_tensor("mu", mu, shape="(..., latent)")
    check_tensor("logvar", logvar, shape="(..., latent)")
    if mu.shape != logvar.shape or mu.dim() == 0:
        raise invalid(
            "mu.shape, logvar.shape",
            (tuple(mu.shape), tuple(logvar.shape)),
            "the same shape (..., latent): a mean and a log-variance per dimension",
        )


def _check_images(images: Any) -> None:
    """Digits (batch, 8, 8) or flattened (batch, 64), a float tensor, batch >= 1."""
    check_tensor("images", images, shape="(batch, 8, 8)")
    if images.dim() < 2 or len(images) == 0 or images[0].numel() != PIXELS:
        raise invalid(
            "images.shape", tuple(images.shape), "(batch, 8, 8) or (batch, 64), batch >= 1"
        )


def _check_levels(levels: Any, pixels: int | None = None) -> Tensor:
    """Grey levels (n, pixels), integers in 0..16, returned as int64. A pass over the levels:
    they are checked where they enter (the likelihood, the mixture), once per call."""
    hint = "pixel_levels(images) gives them from images in [0, 1]"
    check_tensor(
        "levels", levels, shape="(n, pixels) of grey levels 0..16", dtype="integer", hint=hint
    )
    width = "pixels" if pixels is None else str(pixels)
    wrong_width = pixels is not None and levels.size(-1) != pixels
    if levels.dim() != 2 or levels.numel() == 0 or wrong_width:
        raise invalid("levels.shape", tuple(levels.shape), f"(n, {width}), n >= 1", hint)
    low, high = torch.aminmax(levels)
    if low < 0 or high > PIXEL_LEVELS - 1:
        shown = f"levels from {int(low)} to {int(high)}"
        raise invalid("levels", shown, f"grey levels 0..{PIXEL_LEVELS - 1}", hint)
    return levels.long()


def _check_attention_mask(attention_mask: Any, input_ids: Tensor) -> None:
    """None, or a tensor shaped like the ids (its 0/1 values: `validate_attention_mask`)."""
    if attention_mask is None:
        return
    if not isinstance(attention_mask, Tensor):
        allowed = "None, or a tensor of 1 (token) and 0 (padding)"
        raise invalid("type(attention_mask)", type(attention_mask), allowed)
    if attention_mask.shape != input_ids.shape:
        shapes = (tuple(attention_mask.shape), tuple(input_ids.shape))
        raise invalid("attention_mask.shape, input_ids.shape", shapes, "the same (batch, seq)")
