"""Task heads, few-shot budgets, freezing, the linear probe, layer-wise LR decay and FGM."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab.checks import ArgumentError
from sslm_lab.finetune import (
    few_shot_indices,
    fgm_perturbation,
    fgm_step,
    fit_linear_probe,
    freeze,
    frozen_features,
    layerwise_lr_groups,
    layerwise_lr_scale,
    matching_parameters,
    unfreeze,
    with_head,
)
from sslm_lab.heads import SequenceClassifier, TokenClassifier, pool
from sslm_lab.transformer import Transformer, TransformerConfig


def encoder_config(**changes) -> TransformerConfig:
    settings = dict(
        vocab_size=40, block_size=16, n_layer=3, n_head=2, n_embd=16, causal=False,
        norm_position="post", gelu="exact", type_vocab_size=2,
    )  # fmt: skip
    return TransformerConfig(**{**settings, **changes})


@pytest.fixture
def body() -> Transformer:
    torch.manual_seed(0)
    return Transformer(encoder_config()).eval()


def test_with_head_shares_the_body_and_gives_both_shapes(body: Transformer) -> None:
    ids = torch.randint(0, 40, (3, 7))
    sequence = with_head(body, "sequence", num_labels=4, pooling="mean")
    token = with_head(body, "token", num_labels=5)
    assert isinstance(sequence, SequenceClassifier) and isinstance(token, TokenClassifier)
    assert sequence.transformer is body and token.transformer is body
    assert sequence(ids).shape == (3, 4)
    assert token(ids).shape == (3, 7, 5)
    with torch.no_grad():
        assert_close(token(ids), token.head(body(ids)))
    with pytest.raises(ArgumentError, match="task='ner'.*sequence, token"):
        with_head(body, "ner", num_labels=2)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_a_long_text_in_chunks_is_pooled_chunk_by_chunk_and_averaged(
    body: Transformer, pooling: str
) -> None:
    model = with_head(body, "sequence", num_labels=3, pooling=pooling).eval()
    ids = torch.randint(0, 40, (2, 4, 6))  # 2 texts of 4 chunks of 6 tokens
    mask = torch.ones_like(ids)
    mask[1, 3, 4:] = 0  # the second text's last chunk is padded
    by_hand = []
    for text in range(2):
        features = [
            pool(body(ids[text, c][None], mask[text, c][None]), mask[text, c][None], pooling)
            for c in range(4)
        ]
        by_hand.append(model.head.classifier(torch.cat(features).mean(dim=0)))
    with torch.no_grad():
        assert_close(model(ids, mask), torch.stack(by_hand))
        # one chunk is the plain case, and the probe's features average the same way
        assert_close(model(ids[:, :1]), model(ids[:, 0]))
        pooled = frozen_features(body, ids, mask, pooling=pooling, batch_size=3)
        assert_close(model.head.classifier(pooled), torch.stack(by_hand))


def test_few_shot_is_seeded_balanced_and_nested() -> None:
    labels = [0] * 20 + [1] * 12 + [2] * 9
    eight = few_shot_indices(labels, k=8, seed=3)
    assert eight == few_shot_indices(labels, k=8, seed=3)
    assert eight != few_shot_indices(labels, k=8, seed=4)
    assert [sum(labels[i] == c for i in eight) for c in range(3)] == [8, 8, 8]
    assert set(few_shot_indices(labels, k=4, seed=3)) <= set(eight)  # budgets are nested
    assert few_shot_indices(labels, k=None, seed=0) == list(range(len(labels)))
    with pytest.raises(ArgumentError, match="k=10 is more than class 2 has: it has 9"):
        few_shot_indices(labels, k=10, seed=0)
    with pytest.raises(ArgumentError, match="class 3 has: it has 0"):
        few_shot_indices(labels, k=1, seed=0, num_classes=4)


def test_freeze_and_unfreeze_by_pattern(body: Transformer) -> None:
    model = with_head(body, "sequence", num_labels=2)
    frozen = freeze(model, ["transformer.*"])
    assert frozen and all(name.startswith("transformer.") for name in frozen)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.classifier.weight", "head.classifier.bias"]
    unfreeze(model, ["transformer.blocks.2.*"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "transformer.blocks.2.attention.query.weight" in trainable
    assert "transformer.blocks.1.attention.query.weight" not in trainable


def test_a_pattern_that_matches_nothing_names_it_and_what_exists(body: Transformer) -> None:
    with pytest.raises(ArgumentError) as error:
        freeze(body, ["encoder.layer.*"])
    message = str(error.value)
    assert "pattern='encoder.layer.*'" in message
    assert "blocks.*.attention.query.weight" in message and "token_embedding.weight" in message
    assert all(p.requires_grad for p in body.parameters())  # nothing was changed
    assert matching_parameters(body, "blocks.0.attention.*.bias") == [
        f"blocks.0.attention.{name}.bias" for name in ("query", "key", "value", "output")
    ]


def test_linear_probe_on_frozen_features(body: Transformer) -> None:
    before = copy.deepcopy(body.state_dict())
    ids = torch.randint(0, 40, (40, 6))
    ids[:20, 0], ids[20:, 0] = 1, 2  # the class is written in the first token
    labels = torch.tensor([0] * 20 + [1] * 20)
    features = frozen_features(body, ids, pooling="cls", batch_size=16)
    assert features.shape == (40, 16) and not features.requires_grad
    assert_close(features[:16], body(ids[:16])[:, 0].detach())
    probe = fit_linear_probe(features, labels, num_labels=2)
    assert (probe(features).argmax(1) == labels).float().mean() == 1.0
    for name, tensor in body.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    with pytest.raises(ArgumentError, match="features.shape, labels.shape"):
        fit_linear_probe(features, labels[:5], num_labels=2)


def test_layerwise_lr_decay_groups(body: Transformer) -> None:
    model = with_head(body, "sequence", num_labels=2)
    groups = layerwise_lr_groups(model, lr=1.0, decay=0.5, weight_decay=0.1)
    by_depth = {}
    for group in groups:
        by_depth.setdefault(group["depth"], set()).add(group["lr"])
        assert group["weight_decay"] == (0.1 if group["params"][0].dim() >= 2 else 0.0)
    # embeddings 0.5^4, block i 0.5^(3 - i), the head 1
    assert by_depth == {0: {0.0625}, 1: {0.125}, 2: {0.25}, 3: {0.5}, 4: {1.0}}
    ids = {id(p) for group in groups for p in group["params"]}
    assert ids == {id(p) for p in model.parameters()}  # each once, none left out
    head = [g for g in groups if g["depth"] == 4]
    assert {id(p) for g in head for p in g["params"]} == {id(p) for p in model.head.parameters()}
    torch.optim.AdamW(groups)  # the groups are what AdamW takes
    freeze(model, ["transformer.token_embedding.*"])
    params = {id(p) for g in layerwise_lr_groups(model, 1.0, 0.5) for p in g["params"]}
    assert id(model.transformer.token_embedding.weight) not in params
    with pytest.raises(ArgumentError, match="decay=1.5"):
        layerwise_lr_groups(model, lr=1.0, decay=1.5)


def test_layerwise_lr_scale_drives_the_trainer_at_the_same_rates(body: Transformer) -> None:
    from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig

    model = with_head(body, "sequence", num_labels=2)
    scale = layerwise_lr_scale(model.config.n_layer, 0.5)
    expected = {
        (id(p), group["lr"])
        for group in layerwise_lr_groups(model, 0.01, 0.5)
        for p in group["params"]
    }
    ids = torch.randint(0, 40, (8, 6))
    labels = torch.tensor([0, 1] * 4)

    def loss_fn(module, batch, step):
        return nn.functional.cross_entropy(module(batch[0]), batch[1]), {}

    phase = Phase("tune", model, loss_fn, lr=0.01, schedule="constant", lr_scale=scale)
    trainer = Trainer(
        model,
        phase,
        lambda step, g: (ids, labels),
        TrainerConfig(max_steps=1, device="cpu", progress=False),
    )
    trainer.fit()
    got = {(id(p), g["lr"]) for g in trainer._states[0].optimizer.param_groups for p in g["params"]}
    assert {(i, round(lr, 12)) for i, lr in got} == {(i, round(lr, 12)) for i, lr in expected}
    with pytest.raises(ArgumentError, match="n_layer=0"):
        layerwise_lr_scale(0, 0.5)


def test_fgm_moves_the_embeddings_by_epsilon_and_restores_them(body: Transformer) -> None:
    model = with_head(body, "sequence", num_labels=2).train()
    embedding = model.transformer.token_embedding
    ids, labels = torch.randint(0, 40, (4, 6)), torch.tensor([0, 1, 0, 1])
    before = embedding.weight.detach().clone()
    with pytest.raises(ValueError, match="backward"):
        with fgm_perturbation(embedding, 0.5):
            pass
    nn.functional.cross_entropy(model(ids), labels).backward()
    gradient = embedding.weight.grad.clone()
    with fgm_perturbation(embedding, 0.5) as perturbation:
        moved = embedding.weight.detach() - before
        assert_close(moved, perturbation)
        assert_close(moved.norm(), torch.tensor(0.5))
        assert_close(moved, 0.5 * gradient / gradient.norm())
    assert torch.equal(embedding.weight.detach(), before)
    with pytest.raises(RuntimeError, match="inside"):
        with fgm_perturbation(embedding, 0.5):
            raise RuntimeError("inside")
    assert torch.equal(embedding.weight.detach(), before)  # restored even on an error


def test_fgm_step_sums_both_gradients_and_updates_once(body: Transformer) -> None:
    model = with_head(body, "sequence", num_labels=2)
    ids, labels = torch.randint(0, 40, (4, 6)), torch.tensor([0, 1, 0, 1])

    def loss_fn(module, batch):
        return nn.functional.cross_entropy(module(batch[0]), batch[1])

    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    clean, adversarial = fgm_step(
        model, loss_fn, (ids, labels), optimizer, model.transformer.token_embedding, 1.0
    )
    assert adversarial > clean  # a step up the gradient raises the loss
    # The same by hand: clean gradient + gradient at the perturbed embeddings.
    loss_fn(reference, (ids, labels)).backward()
    embedding = reference.transformer.token_embedding
    step = embedding.weight.grad / embedding.weight.grad.norm()
    with torch.no_grad():
        embedding.weight.add_(step)
    loss_fn(reference, (ids, labels)).backward()
    with torch.no_grad():
        embedding.weight.sub_(step)
        for p in reference.parameters():
            p.sub_(0.1 * p.grad)
    for (name, got), expected in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert_close(got, expected, msg=name)
