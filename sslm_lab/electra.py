"""ELECTRA: replaced-token detection (Clark et al. 2020).

A small masked-LM generator fills the masked positions by *sampling*; a discriminator (an
encoder) then labels every position original or replaced. The discriminator learns from
all positions, not only the 15 % a masked LM is scored on. Combined loss:

    loss = MLM(generator) + λ · RTD(discriminator),   λ = 50 in the paper

No gradient flows through the sampling (it is discrete): the generator learns from its
MLM loss alone. A position where the generator sampled the original token is labelled
original, since nothing there was replaced.

Embeddings are shared: the generator uses the discriminator's token and position
embedding tables (and its tied MLM output). In sslm_lab's Transformer the embedding
width is the hidden width, so sharing needs the same n_embd; a generator is made smaller
by depth, heads and feed-forward width (the paper instead narrows it and projects).

Inputs are checked where they enter: `electra_loss` checks the batch's ids against the
vocabulary (one pass over the ids per step, small next to two networks' forward passes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_bool, check_generator, check_real, check_token_ids, invalid
from sslm_lab.heads import MaskedLM
from sslm_lab.masking import MASK_RATE, mask_tokens, validate_attention_mask
from sslm_lab.transformer import Transformer, TransformerConfig, TransformerModel

ELECTRA_RTD_WEIGHT = 50.0


class ReplacedTokenDiscriminator(TransformerModel):
    """Encoder + a per-position head (dense, GELU, linear): input_ids (batch, seq) ->
    logits (batch, seq), the log-odds that each token was replaced. Its `transformer` is
    the pretrained body a fine-tuning notebook loads."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        _check_config("config", config)
        self.config = config
        self.transformer = Transformer(config)
        self.head = nn.Sequential(
            nn.Linear(config.n_embd, config.n_embd), nn.GELU(), nn.Linear(config.n_embd, 1)
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.head(self.hidden_states(input_ids, attention_mask)).squeeze(-1)


class Electra(nn.Module):
    """A generator (`MaskedLM`) and a discriminator sharing their embedding tables."""

    def __init__(
        self,
        generator_config: TransformerConfig,
        discriminator_config: TransformerConfig,
        forbid_larger_generator: bool = True,
    ) -> None:
        super().__init__()
        _check_config("generator_config", generator_config)
        _check_config("discriminator_config", discriminator_config)
        check_bool("forbid_larger_generator", forbid_larger_generator)
        for name in ("vocab_size", "block_size", "n_embd", "type_vocab_size"):
            mine, theirs = getattr(generator_config, name), getattr(discriminator_config, name)
            if mine != theirs:
                raise invalid(
                    f"generator_config.{name}",
                    mine,
                    f"the discriminator's {name}={theirs}: the embedding tables are shared",
                )
        self.discriminator = ReplacedTokenDiscriminator(discriminator_config)
        self.generator = MaskedLM(generator_config)
        # The bodies are compared: the MLM head is bigger than the RTD head by design.
        generator_size = self.generator.transformer.num_parameters(exclude_embeddings=True)
        discriminator_size = self.discriminator.transformer.num_parameters(exclude_embeddings=True)
        if forbid_larger_generator and generator_size > discriminator_size:
            raise invalid(
                "generator_config",
                f"{generator_size:,} non-embedding parameters",
                f"at most the discriminator's {discriminator_size:,}",
                "a generator stronger than the discriminator makes the task too hard "
                "(Clark et al. found 1/4 to 1/2 of its size best); pass "
                "forbid_larger_generator=False to run it anyway",
            )
        body, shared = self.generator.transformer, self.discriminator.transformer
        body.token_embedding = shared.token_embedding
        body.position_embedding = shared.position_embedding
        body.token_type_embedding = shared.token_type_embedding
        if generator_config.tie_weights:
            self.generator.head.vocab_projection.weight = shared.token_embedding.weight

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token of both networks (each `TransformerModel.flops_per_token`)."""
        return self.generator.flops_per_token(seq_len) + self.discriminator.flops_per_token(seq_len)


@torch.no_grad()
def replace_tokens(
    input_ids: Tensor,
    selected: Tensor,
    generator_logits: Tensor,
    rng: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample a token at each selected position and label every position.

    input_ids: (batch, seq) originals; selected: bool (batch, seq); generator_logits:
    (number selected, vocab) in the row-major order of input_ids[selected]. Returns the
    corrupted ids (batch, seq) and the labels (batch, seq) float, 1 = replaced: a sampled
    token equal to the original is labelled 0.
    """
    check_token_ids("input_ids", input_ids)
    if not isinstance(selected, Tensor):
        raise invalid("type(selected)", type(selected), "a bool torch.Tensor shaped like input_ids")
    if selected.dtype != torch.bool:
        raise invalid("selected.dtype", selected.dtype, "torch.bool: True where a token is drawn")
    if selected.shape != input_ids.shape:
        shapes = (tuple(input_ids.shape), tuple(selected.shape))
        raise invalid("input_ids.shape, selected.shape", shapes, "equal shapes")
    count = int(selected.sum())
    if not isinstance(generator_logits, Tensor) or not generator_logits.is_floating_point():
        raise invalid("type(generator_logits)", type(generator_logits), "a float torch.Tensor")
    if generator_logits.dim() != 2 or len(generator_logits) != count:
        shape = tuple(generator_logits.shape)
        raise invalid("generator_logits.shape", shape, f"({count}, vocab): a row per selected id")
    check_generator("rng", rng, input_ids.device)
    probabilities = generator_logits.float().softmax(-1)  # (count, vocab)
    if not bool(probabilities.isfinite().all()):
        raise invalid(
            "generator_logits",
            "rows with NaN, +inf or only -inf",
            "finite logits (-inf for excluded tokens)",
            "a NaN usually means the generator's training diverged",
        )
    samples = torch.multinomial(probabilities, 1, generator=rng).squeeze(1)  # (count,)
    corrupted = input_ids.clone()
    corrupted[selected] = samples
    return corrupted, replaced_token_labels(input_ids, corrupted)


def replaced_token_labels(original: Tensor, corrupted: Tensor) -> Tensor:
    """1.0 where the token differs from the original, 0.0 elsewhere: (batch, seq)."""
    for name, ids in (("original", original), ("corrupted", corrupted)):
        if not isinstance(ids, Tensor):
            raise invalid(f"type({name})", type(ids), "torch.Tensor of token ids")
    if original.shape != corrupted.shape:
        shapes = (tuple(original.shape), tuple(corrupted.shape))
        raise invalid("original.shape, corrupted.shape", shapes, "equal shapes: no broadcasting")
    return (original != corrupted).float()


def electra_loss(
    model: Electra,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    mask_id: int,
    special_ids: Iterable[int],
    mask_rate: float = MASK_RATE,
    rtd_weight: float = ELECTRA_RTD_WEIGHT,
    rng: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """MLM + λ · RTD on a batch of ids (batch, seq). Returns the loss and metrics.

    Masking: `mask_tokens` with every selected token set to [MASK] (no random or kept
    tokens: the discriminator's inputs already hold the generator's replacements).
    Padding (attention_mask 0) is never selected, whatever its id. RTD is the binary
    cross-entropy averaged over the real (non-padding) positions. Metrics: mlm_loss,
    rtd_loss, rtd_accuracy (all real positions), replaced_accuracy (replaced positions
    alone), original_baseline (the accuracy of always answering "original").

    The batch's ids are checked against the vocabulary here, where they enter.
    """
    if not (hasattr(model, "generator") and hasattr(model, "discriminator")):
        raise invalid("type(model)", type(model), "Electra (a generator and a discriminator)")
    check_token_ids("input_ids", input_ids)
    vocab_size = model.discriminator.config.vocab_size
    check_token_ids("input_ids", input_ids, vocab_size=vocab_size)
    real = torch.ones_like(input_ids, dtype=torch.bool)  # (batch, seq)
    if attention_mask is not None:
        if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
            given = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else None
            shapes = (tuple(input_ids.shape), given)
            raise invalid("input_ids.shape, attention_mask.shape", shapes, "two equal shapes")
        real = validate_attention_mask(attention_mask, *input_ids.shape)
    if isinstance(special_ids, str) or not isinstance(special_ids, Iterable):
        raise invalid("special_ids", special_ids, "a list of token ids, e.g. [pad_id, mask_id]")
    rtd_weight = check_real("rtd_weight", rtd_weight, low=0, low_open=True, hint="λ; 50 in ELECTRA")
    check_generator("rng", rng, input_ids.device)
    masked, labels = mask_tokens(
        input_ids,
        mask_id=mask_id,
        vocab_size=vocab_size,
        special_ids=special_ids,
        mask_rate=mask_rate,
        mask_fraction=1.0,
        random_fraction=0.0,
        generator=rng,
    )
    # Padding is not text: never selected, even when the pad id is not among special_ids.
    selected = (labels >= 0) & real  # (batch, seq)
    masked = torch.where(real, masked, input_ids)
    if not selected.any():
        raise ValueError(
            "nothing was masked in this batch: no real, non-special token was selected for the "
            "generator to fill"
        )
    generator_logits = model.generator(masked, attention_mask, positions=selected).float()
    mlm = F.cross_entropy(generator_logits, input_ids[selected])
    corrupted, is_replaced = replace_tokens(input_ids, selected, generator_logits, rng)
    rtd_logits = model.discriminator(corrupted, attention_mask).float()  # (batch, seq)
    rtd = F.binary_cross_entropy_with_logits(rtd_logits[real], is_replaced[real])
    correct = (rtd_logits > 0).float() == is_replaced
    replaced = is_replaced.bool() & real
    metrics = {
        "mlm_loss": mlm.detach(),
        "rtd_loss": rtd.detach(),
        "rtd_accuracy": correct[real].float().mean(),
        "replaced_accuracy": correct[replaced].float().mean() if replaced.any() else None,
        "original_baseline": 1 - is_replaced[real].mean(),
    }
    return mlm + rtd_weight * rtd, metrics


def electra_objective(
    model: Electra, batch: Tensor | tuple[Tensor, Tensor], step: int, **settings: Any
) -> tuple[Tensor, dict[str, Any]]:
    """`electra_loss` in the trainer's shape: the batch is input_ids (batch, seq) or
    (input_ids, attention_mask); bind `mask_id`, `special_ids` and any other keyword of
    `electra_loss` with functools.partial."""
    if isinstance(batch, Tensor):
        return electra_loss(model, batch, None, **settings)
    if not isinstance(batch, tuple | list):
        raise invalid("type(batch)", type(batch), "Tensor, or a pair (input_ids, attention_mask)")
    if len(batch) != 2:
        raise invalid("len(batch)", len(batch), "2: (input_ids, attention_mask)")
    input_ids, attention_mask = batch
    return electra_loss(model, input_ids, attention_mask, **settings)


# ---------------------------------------------------------------------------- input checks


def _check_config(name: str, config: Any) -> None:
    if not isinstance(config, TransformerConfig):
        raise invalid(f"type({name})", type(config), "TransformerConfig")
    if config.causal:
        raise invalid(f"{name}.causal", config.causal, "False: both networks are encoders")
