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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_bool, check_real, invalid
from sslm_lab.heads import MaskedLM
from sslm_lab.masking import MASK_RATE, mask_tokens
from sslm_lab.transformer import Transformer, TransformerConfig, TransformerModel

ELECTRA_RTD_WEIGHT = 50.0


class ReplacedTokenDiscriminator(TransformerModel):
    """Encoder + a per-position head (dense, GELU, linear): input_ids (batch, seq) ->
    logits (batch, seq), the log-odds that each token was replaced. Its `transformer` is
    the pretrained body a fine-tuning notebook loads."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.causal:
            raise invalid("config.causal", config.causal, "False: the discriminator is an encoder")
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
    samples = torch.multinomial(generator_logits.float().softmax(-1), 1, generator=rng).squeeze(1)
    corrupted = input_ids.clone()
    corrupted[selected] = samples
    return corrupted, replaced_token_labels(input_ids, corrupted)


def replaced_token_labels(original: Tensor, corrupted: Tensor) -> Tensor:
    """1.0 where the token differs from the original, 0.0 elsewhere: (batch, seq)."""
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
    tokens: the discriminator's inputs already hold the generator's replacements). RTD is
    the binary cross-entropy averaged over the real (non-padding) positions. Metrics:
    mlm_loss, rtd_loss, rtd_accuracy (all real positions), replaced_accuracy (replaced
    positions alone), original_baseline (the accuracy of always answering "original").
    """
    rtd_weight = check_real("rtd_weight", rtd_weight, low=0, low_open=True, hint="λ; 50 in ELECTRA")
    vocab_size = model.discriminator.config.vocab_size
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
    selected = labels >= 0  # (batch, seq)
    if not selected.any():
        raise ValueError("nothing was masked in this batch: no token for the generator to fill")
    generator_logits = model.generator(masked, attention_mask, positions=selected).float()
    mlm = F.cross_entropy(generator_logits, input_ids[selected])
    corrupted, is_replaced = replace_tokens(input_ids, selected, generator_logits, rng)
    rtd_logits = model.discriminator(corrupted, attention_mask).float()  # (batch, seq)
    real = torch.ones_like(is_replaced, dtype=torch.bool)
    if attention_mask is not None:
        real = attention_mask.bool()
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
    input_ids, attention_mask = batch if isinstance(batch, tuple | list) else (batch, None)
    return electra_loss(model, input_ids, attention_mask, **settings)
