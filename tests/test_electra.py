"""ELECTRA: labels, shared embeddings, the size check and a short training run."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.electra import (
    Electra,
    electra_loss,
    electra_objective,
    replace_tokens,
    replaced_token_labels,
)
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


# ---------------------------------------------------------------------------- padding


def test_padding_is_never_selected_or_scored_whatever_its_id() -> None:
    # The pad id (22 or 23) is not among special_ids: only the attention mask says which
    # positions are padding. Those must never be masked, filled or scored.
    torch.manual_seed(0)
    model = Electra(config(1), config(1))
    ids = torch.randint(2, 20, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[:, 6:] = 0
    chosen: list[torch.Tensor] = []
    model.generator.register_forward_hook(
        lambda module, args, kwargs, output: chosen.append(kwargs["positions"]),
        with_kwargs=True,
    )
    losses = []
    for pad_id in (22, 23):
        padded = ids.masked_fill(mask == 0, pad_id)
        rng = torch.Generator().manual_seed(0)
        loss, _ = electra_loss(
            model, padded, mask, mask_id=MASK_ID, special_ids=SPECIAL, mask_rate=0.6, rng=rng
        )
        losses.append(loss.item())
    for positions in chosen:
        assert positions.any() and not (positions & (mask == 0)).any()
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)  # the padding's id changes nothing


# ---------------------------------------------------------------------------- bad input

IDS = torch.randint(2, VOCAB, (2, 8))
SELECTED = torch.tensor([[True] + [False] * 7, [False, True] + [False] * 6])


def loss_of(**overrides):
    torch.manual_seed(0)
    arguments = {"input_ids": IDS, "mask_id": MASK_ID, "special_ids": SPECIAL} | overrides
    model = arguments.pop("model", None) or Electra(config(1), config(1))
    return electra_loss(model, **arguments)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: loss_of(input_ids=IDS + VOCAB), r"max\(input_ids\)=\d+ \(int\).*\[0, 23\]"),
        (lambda: loss_of(input_ids=IDS - 30), r"min\(input_ids\)=-\d+ .*\[0, 23\]"),
        (lambda: loss_of(input_ids=IDS.tolist()), r"type\(input_ids\)=<class 'list'>"),
        (lambda: loss_of(input_ids=IDS.numpy()), r"type\(input_ids\)=<class 'numpy.ndarray'>"),
        (lambda: loss_of(input_ids=IDS[0]), r"input_ids.shape=\(8,\)"),
        (lambda: loss_of(input_ids=IDS[:0]), r"input_ids.shape=\(0, 8\)"),
        (lambda: loss_of(input_ids=IDS.float()), r"input_ids.dtype=torch.float32"),
        (
            lambda: loss_of(attention_mask=torch.ones(2, 5)),
            r"input_ids.shape, attention_mask.shape=\(\(2, 8\), \(2, 5\)\)",
        ),
        (lambda: loss_of(attention_mask=[[1] * 8] * 2), r"attention_mask.shape=\(\(2, 8\), None"),
        (lambda: loss_of(special_ids=1), r"special_ids=1 \(int\)"),
        (lambda: loss_of(rng=0), r"type\(rng\)=<class 'int'>.*torch.Generator"),
        (lambda: loss_of(model=torch.nn.Linear(2, 2)), r"type\(model\)=.*Linear.*Electra"),
        (lambda: Electra({"vocab_size": VOCAB}, config(1)), r"type\(generator_config\)=.*dict"),
        (lambda: Electra(config(1), None), r"type\(discriminator_config\)=.*NoneType"),
        (
            lambda: Electra(replace(config(1), causal=True, norm_position="pre"), config(1)),
            r"generator_config.causal=True",
        ),
        (lambda: Electra(config(1), config(1), "no"), r"forbid_larger_generator='no'"),
        (lambda: replace_tokens(IDS, SELECTED.long(), torch.zeros(2, VOCAB)), r"selected.dtype"),
        (
            lambda: replace_tokens(IDS, SELECTED[:1], torch.zeros(1, VOCAB)),
            r"input_ids.shape, selected.shape=\(\(2, 8\), \(1, 8\)\)",
        ),
        (
            lambda: replace_tokens(IDS, SELECTED, torch.zeros(3, VOCAB)),
            r"generator_logits.shape=\(3, 24\) .*\(2, vocab\)",
        ),
        (
            lambda: replace_tokens(IDS, SELECTED, torch.full((2, VOCAB), float("nan"))),
            r"generator_logits=.*NaN",
        ),
        (lambda: replace_tokens(IDS, SELECTED, torch.zeros(2, VOCAB), 0), r"type\(rng\)="),
        (
            lambda: replaced_token_labels(torch.zeros(1, 10), torch.zeros(2, 10)),
            r"original.shape, corrupted.shape=\(\(1, 10\), \(2, 10\)\)",
        ),
        (
            lambda: electra_objective(Electra(config(1), config(1)), (IDS, IDS, IDS), 0),
            r"len\(batch\)=3 ",
        ),
        (
            lambda: electra_objective(Electra(config(1), config(1)), {"input_ids": IDS}, 0),
            r"type\(batch\)=<class 'dict'>",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(call, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        call()
