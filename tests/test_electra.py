"""ELECTRA: labels, shared embeddings, the size check and a short training run."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.electra import Electra, electra_loss, replace_tokens
from sslm_lab.transformer import TransformerConfig

VOCAB, MASK_ID, SPECIAL = 24, 1, (0, 1)


def config(n_layer: int, intermediate_size: int = 32) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=VOCAB,
        block_size=16,
        n_layer=n_layer,
        n_head=2,
        n_embd=16,
        intermediate_size=intermediate_size,
        causal=False,
        norm_position="post",
        gelu="exact",
    )


def test_a_sampled_original_counts_as_original() -> None:
    ids = torch.tensor([[5, 6, 7, 8]])
    selected = torch.tensor([[True, True, False, True]])
    logits = torch.full((3, VOCAB), -1e4)
    logits[0, 5] = logits[1, 9] = logits[2, 8] = 0.0  # original, replaced, original
    corrupted, labels = replace_tokens(ids, selected, logits)
    assert corrupted.tolist() == [[5, 9, 7, 8]]
    assert labels.tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_embeddings_are_shared_with_the_generator() -> None:
    model = Electra(config(1), config(2))
    generator, discriminator = model.generator.transformer, model.discriminator.transformer
    assert generator.token_embedding.weight is discriminator.token_embedding.weight
    assert generator.position_embedding.weight is discriminator.position_embedding.weight
    assert model.generator.head.vocab_projection.weight is discriminator.token_embedding.weight


def test_a_larger_generator_is_refused_unless_allowed() -> None:
    with pytest.raises(ArgumentError, match="generator_config"):
        Electra(config(3), config(1))
    Electra(config(3), config(1), forbid_larger_generator=False)
    with pytest.raises(ArgumentError, match="n_embd"):
        Electra(
            TransformerConfig(vocab_size=VOCAB, block_size=16, n_embd=32, causal=False), config(1)
        )


def test_rtd_weight_must_be_positive() -> None:
    ids = torch.randint(2, VOCAB, (2, 8))
    with pytest.raises(ArgumentError, match="rtd_weight"):
        electra_loss(
            Electra(config(1), config(1)), ids, mask_id=MASK_ID, special_ids=SPECIAL, rtd_weight=0
        )


def test_a_short_training_run_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = Electra(config(1), config(2))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    base = torch.arange(2, 14).repeat(16, 1)  # an easy language: every row counts up
    rng = torch.Generator().manual_seed(0)
    losses, metrics = [], {}
    for _ in range(60):
        loss, metrics = electra_loss(model, base, mask_id=MASK_ID, special_ids=SPECIAL, rng=rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 * 0.8, (losses[:5], losses[-5:])
    assert 0 <= float(metrics["rtd_accuracy"]) <= 1
    assert set(metrics) >= {"mlm_loss", "rtd_loss", "replaced_accuracy", "original_baseline"}
