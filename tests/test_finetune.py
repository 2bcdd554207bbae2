"""Task heads, few-shot budgets, freezing, the linear probe, layer-wise LR decay and FGM."""

from __future__ import annotations

import copy

import numpy as np
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


# ---------------------------------------------------------------------------- bad input


def snapshot(model: nn.Module) -> tuple[list[str], dict[str, tuple[bool, torch.Tensor]]]:
    """The module tree, and every parameter's requires_grad flag and value."""
    parameters = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    return [name for name, _ in model.named_modules()], parameters


def assert_unchanged(model: nn.Module, before) -> None:
    modules, parameters = snapshot(model)
    assert modules == before[0]
    assert parameters.keys() == before[1].keys()
    for name, (trainable, value) in parameters.items():
        assert trainable == before[1][name][0], name
        assert torch.equal(value, before[1][name][1]), name


@pytest.mark.parametrize(
    ("labels", "options", "message"),
    [
        ([0, 1, 2, 5], {"num_classes": 3}, r"labels\[3\]=5 \(int\).*< num_classes=3"),
        ([], {}, r"labels=\[\] \(list\)"),
        ([0.5, 1.7, 0.2, 1.1], {}, r"labels\[0\]=0.5 \(float\).*integer class id"),
        ([-1, 0, -1, 0], {}, r"labels\[0\]=-1 \(int\).*>= 0"),
        ([True, False], {}, r"labels\[0\]=True \(bool\)"),
        ("0101", {}, r"labels='0101' \(str\)"),
        (None, {}, r"labels=None"),
        (torch.tensor([[0, 1], [1, 0]]), {}, r"labels.shape=\(2, 2\)"),
        (torch.tensor([0.0, 1.0]), {}, r"labels\[0\]=0.0 \(float\)"),
    ],
)
def test_few_shot_refuses_labels_that_are_not_class_ids(labels, options, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        few_shot_indices(labels, k=1, seed=0, **options)


def test_few_shot_says_when_a_class_has_no_example() -> None:
    labels = [0, 0, 1, 1]
    with pytest.raises(ArgumentError) as error:
        few_shot_indices(labels, k=1, seed=0, num_classes=3)
    assert "class 2 has: it has 0" in str(error.value) and "k <= 0" not in str(error.value)
    assert "every class in range(num_classes=3)" in str(error.value)
    with pytest.raises(ArgumentError, match="class 2 has: it has 0"):  # k=None too
        few_shot_indices(labels, k=None, seed=0, num_classes=3)


def test_few_shot_takes_a_list_a_tensor_or_an_array_alike() -> None:
    labels = [0, 1, 2] * 5
    expected = few_shot_indices(labels, k=2, seed=7)
    assert few_shot_indices(torch.tensor(labels), k=2, seed=7) == expected
    assert few_shot_indices(torch.tensor(labels, dtype=torch.int32), k=2, seed=7) == expected
    assert few_shot_indices(np.array(labels), k=2, seed=7) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: freeze(m, []), r"patterns=\[\] \(list\).*non-empty list"),
        (lambda m: unfreeze(m, ()), r"patterns=\(\) \(tuple\)"),
        (lambda m: freeze(m, None), r"patterns=None"),
        (lambda m: freeze(m, [None]), r"patterns\[0\]=None \(NoneType\).*a string"),
        (lambda m: freeze(m, ["head.*", 3]), r"patterns\[1\]=3 \(int\)"),
        (lambda m: unfreeze(m, 5), r"patterns=5 \(int\)"),
        (lambda m: freeze(m, ["head.*", "typo"]), r"pattern='typo'"),
        (lambda m: matching_parameters(m, []), r"patterns=\[\]"),
    ],
)
def test_freeze_refuses_empty_and_non_string_patterns(body: Transformer, call, message) -> None:
    model = with_head(body, "sequence", num_labels=2)
    before = snapshot(model)
    with pytest.raises(ArgumentError, match=message):
        call(model)
    assert_unchanged(model, before)


def test_freezing_something_that_is_not_a_model_is_named() -> None:
    with pytest.raises(ArgumentError, match=r"type\(model\)=<class 'NoneType'>"):
        freeze(None, ["*"])


@pytest.mark.parametrize(
    ("input_ids", "options", "message"),
    [
        (torch.full((2, 5), 40), {}, r"input_ids\[0, 0\]=40 \(int\).*\[0, 40\)"),
        (torch.tensor([[1, 2, -1]]), {}, r"input_ids\[0, 2\]=-1"),
        (torch.rand(2, 5), {}, r"input_ids.dtype=torch.float32"),
        ([[1, 2, 3]], {}, r"type\(input_ids\)=<class 'list'>"),
        (torch.ones(5, dtype=torch.long), {}, r"input_ids.shape=\(5,\)"),
        (torch.ones(0, 5, dtype=torch.long), {}, r"input_ids.shape=\(0, 5\)"),
        (torch.ones(2, 17, dtype=torch.long), {}, r"input_ids.shape=\(2, 17\).*block_size=16"),
        (
            torch.ones(2, 5, dtype=torch.long),
            {"attention_mask": torch.ones(2, 4)},
            r"attention_mask.shape=\(2, 4\).*\(2, 5\)",
        ),
        (
            torch.ones(2, 3, 5, dtype=torch.long),
            {"attention_mask": torch.ones(2, 15)},
            r"attention_mask.shape=\(2, 15\)",
        ),
    ],
)
def test_frozen_features_checks_the_ids_where_they_enter(
    body: Transformer, input_ids, options, message
) -> None:
    with pytest.raises(ArgumentError, match=message):
        frozen_features(body, input_ids, **options)


def test_frozen_features_needs_a_transformer_model() -> None:
    with pytest.raises(ArgumentError, match=r"type\(model\)=<class 'torch.nn.modules.linear"):
        frozen_features(nn.Linear(2, 2), torch.ones(2, 5, dtype=torch.long))


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1]), r"labels\[2\]=2 \(int\).*\[0, num_"),
        (torch.randn(6, 4), torch.tensor([0, -1, 0, 1, 0, 1]), r"labels\[1\]=-1"),
        (torch.randn(6, 4), torch.tensor([0.0, 1, 0, 1, 0, 1]), r"labels.dtype=torch.float32"),
        (torch.randn(6, 4), [0, 1, 0, 1, 0, 1], r"type\(labels\)=<class 'list'>"),
        (np.zeros((6, 4)), torch.tensor([0, 1, 0, 1, 0, 1]), r"type\(features\)=<class 'numpy"),
        (
            torch.ones(6, 4, dtype=torch.long),
            torch.tensor([0, 1] * 3),
            r"features.dtype=torch.int64",
        ),
        (torch.randn(0, 4), torch.zeros(0, dtype=torch.long), r"features.shape, labels.shape"),
    ],
)
def test_the_probe_refuses_labels_outside_the_classes(features, labels, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        fit_linear_probe(features, labels, num_labels=2)


def test_the_probe_refuses_nan_features_and_takes_any_integer_labels() -> None:
    features = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    broken = features.clone()
    broken[3, 2] = float("nan")
    with pytest.raises(ArgumentError, match=r"features\[3, 2\]=nan \(float\).*finite"):
        fit_linear_probe(broken, labels, num_labels=2)
    as_int32 = fit_linear_probe(features, labels.int(), num_labels=2)
    as_int64 = fit_linear_probe(features, labels, num_labels=2)
    assert torch.equal(as_int32.weight, as_int64.weight)


def test_layerwise_helpers_refuse_what_is_not_a_name_or_a_model(body: Transformer) -> None:
    from sslm_lab.finetune import layer_depth

    with pytest.raises(ArgumentError, match=r"type\(name\)=<class 'int'>"):
        layer_depth(3, 2)
    with pytest.raises(ArgumentError, match="n_layer=0"):
        layer_depth("blocks.0.attention.query.weight", 0)
    with pytest.raises(ArgumentError, match=r"type\(model\)=<class 'torch.nn.modules.linear"):
        layerwise_lr_groups(nn.Linear(2, 2), lr=1e-3, decay=0.8)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epsilon": -1.0}, "epsilon=-1.0"),
        ({"loss_fn": None}, "loss_fn=None"),
        ({"optimizer": None}, r"type\(optimizer\)=<class 'NoneType'>"),
        ({"embedding": nn.Linear(2, 2)}, r"type\(embedding\)=<class 'torch.nn.modules.linear"),
        ({"embedding": nn.Embedding(40, 16)}, r"embedding=Embedding\(40, 16\).*model's modules"),
    ],
)
def test_fgm_step_refuses_before_any_backward(body: Transformer, change, message) -> None:
    model = with_head(body, "sequence", num_labels=2)
    ids, labels = torch.randint(0, 40, (4, 6)), torch.tensor([0, 1, 0, 1])

    def loss_fn(module, batch):
        return nn.functional.cross_entropy(module(batch[0]), batch[1])

    arguments = {
        "loss_fn": loss_fn,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "embedding": model.transformer.token_embedding,
        "epsilon": 1.0,
        **change,
    }
    before = snapshot(model)
    with pytest.raises(ArgumentError, match=message):
        fgm_step(model, batch=(ids, labels), **arguments)
    assert_unchanged(model, before)
    assert all(p.grad is None for p in model.parameters())  # no backward ran


def test_fgm_step_needs_a_trainable_embedding(body: Transformer) -> None:
    model = with_head(body, "sequence", num_labels=2)
    freeze(model, ["transformer.token_embedding.*"])
    with pytest.raises(ArgumentError, match="embedding.weight.requires_grad=False"):
        fgm_step(
            model,
            lambda m, b: m(b).sum(),
            torch.randint(0, 40, (2, 4)),
            torch.optim.SGD(model.parameters(), lr=0.1),
            model.transformer.token_embedding,
        )
