"""LoRA (against the `peft` library), adapters, prefix tuning, counts and bad input."""

from __future__ import annotations

import copy

import peft  # the Hugging Face library, the reference; ours is sslm_lab.peft
import pytest
import torch
from torch.testing import assert_close
from transformers import BertConfig, BertModel

from sslm_lab.checks import ArgumentError
from sslm_lab.finetune import with_head
from sslm_lab.interop import bert_to_sslm
from sslm_lab.peft import (
    AdaptedLinear,
    Adapter,
    LoRALinear,
    ParameterCounts,
    PrefixAttention,
    apply_adapters,
    apply_lora,
    apply_prefix_tuning,
    merge_lora,
    parameter_counts,
    prepare,
    unmerge_lora,
)
from sslm_lab.transformer import LayerCache, Transformer, TransformerConfig, attention_explicit

TIGHT = {"atol": 1e-5, "rtol": 1e-5}


def small_encoder(**changes) -> Transformer:
    torch.manual_seed(0)
    settings = dict(
        vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16, causal=False,
        norm_position="post", gelu="exact", type_vocab_size=2,
    )  # fmt: skip
    return Transformer(TransformerConfig(**{**settings, **changes})).eval()


def randomise_lora(model: torch.nn.Module, seed: int) -> None:
    """B starts at 0 (an update of nothing): give every LoRA matrix random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))


def test_lora_equals_the_peft_library_on_a_bert() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=73, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=24,
    )  # fmt: skip
    bert = BertModel(config, add_pooling_layer=False).eval()
    ours = bert_to_sslm(bert)
    lora = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"])
    theirs = peft.get_peft_model(bert, lora).eval()
    wrapped = apply_lora(ours, rank=4, alpha=8, target_modules=["query", "value"])
    assert len(wrapped) == 4
    randomise_lora(ours, seed=1)
    for i in range(config.num_hidden_layers):
        for part in ("query", "value"):
            mine = ours.blocks[i].attention.get_submodule(part)
            reference = theirs.base_model.model.encoder.layer[i].attention.self.get_submodule(part)
            reference.lora_A["default"].weight.data.copy_(mine.lora_A.weight)
            reference.lora_B["default"].weight.data.copy_(mine.lora_B.weight)
    ids = torch.randint(0, 73, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types)
        expected = expected.last_hidden_state
        got = ours(ids, mask, types)
        plain = theirs.base_model.model  # the update is not zero: LoRA changed the output
        with theirs.disable_adapter():
            base = plain(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    assert (got[real] - base.last_hidden_state[real]).abs().max() > 1e-2
    assert_close(got[real], expected[real], **TIGHT)
    assert parameter_counts(ours).trainable == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad
    )


def test_merged_equals_unmerged_and_unmerge_restores_the_weights() -> None:
    model = small_encoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, rank=2, alpha=4, target_modules=["query", "value", "feed_forward.up"])
    randomise_lora(model, seed=2)
    ids = torch.randint(0, 40, (3, 9))
    with torch.no_grad():
        unmerged = model(ids)
        merge_lora(model)
        merged = model(ids)
        with pytest.raises(RuntimeError, match="already merged"):
            merge_lora(model)
        unmerge_lora(model)
        again = model(ids)
    assert_close(merged, unmerged, **TIGHT)
    assert_close(again, unmerged, **TIGHT)
    weight = model.blocks[0].attention.query.base.weight
    assert_close(weight, before["blocks.0.attention.query.weight"], **TIGHT)


def test_a_new_lora_layer_starts_as_the_base_layer() -> None:
    base = torch.nn.Linear(6, 5)
    layer = LoRALinear(base, rank=3, alpha=6, dropout=0.1).eval()
    x = torch.randn(4, 6)
    assert layer.scaling == 2.0
    assert_close(layer(x), base(x))


def test_lora_trains_under_5_percent_of_a_realistic_encoder() -> None:
    # The size of all-MiniLM-L6-v2: 6 layers, 384 wide, 12 heads, 30522 tokens.
    config = TransformerConfig(
        vocab_size=30522, block_size=512, n_layer=6, n_head=12, n_embd=384,
        intermediate_size=1536, causal=False, norm_position="post", gelu="exact",
        type_vocab_size=2,
    )  # fmt: skip
    model = with_head(Transformer(config), "sequence", num_labels=3)
    counts = prepare(model, "lora", rank=8, alpha=16)
    lora = 6 * 2 * 8 * (384 + 384)  # 6 layers, query and value, A and B
    assert counts.trainable == lora + 384 * 3 + 3  # LoRA + the head
    assert counts.total == model.num_parameters()
    print(f"LoRA r=8: {counts.trainable} of {counts.total} ({counts.fraction:.2%})")
    assert counts.fraction < 0.05


def test_only_the_new_weights_and_also_train_are_trainable() -> None:
    model = with_head(small_encoder(), "sequence", num_labels=3)
    apply_lora(model, rank=2, also_train=["head.*"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        *(f"transformer.blocks.{i}.attention.{part}.lora_{m}.weight"
          for i in range(2) for part in ("query", "value") for m in "AB"),
        "head.classifier.weight", "head.classifier.bias",
    }  # fmt: skip


def test_adapters_start_as_the_identity_and_train_alone() -> None:
    adapter = Adapter(dim=8, bottleneck=3)
    x = torch.randn(2, 5, 8)
    assert torch.equal(adapter(x), x)
    model = small_encoder()
    ids = torch.randint(0, 40, (2, 7))
    with torch.no_grad():
        before = model(ids)
    names = apply_adapters(model, bottleneck=4)
    assert names == [
        f"blocks.{i}.{part}" for i in range(2) for part in ("attention.output", "feed_forward.down")
    ]
    with torch.no_grad():
        assert_close(model(ids), before, atol=0, rtol=0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".adapter." in n for n in trainable)
    assert parameter_counts(model).trainable == 4 * (16 * 4 + 4 + 4 * 16 + 16)


def test_prefix_tuning_acts_only_through_attention() -> None:
    model = small_encoder(n_layer=1)
    ids = torch.randint(0, 40, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    reference = copy.deepcopy(model)
    apply_prefix_tuning(model, length=3)
    prefixed = model.blocks[0].attention
    assert isinstance(prefixed, PrefixAttention)
    seen = {}

    def keep_input(module, args, output) -> None:  # returns None: the output is unchanged
        seen["attended"] = args[0].detach()

    model.blocks[0].attention.attention.output.register_forward_hook(keep_input)
    with torch.no_grad():
        got = model(ids, mask)
        # By hand: the same queries over [prefix; keys] and [prefix; values].
        attention = reference.blocks[0].attention
        x = reference.embedding_norm(
            reference.token_embedding(ids)
            + reference.position_embedding(torch.arange(6))
            + reference.token_type_embedding(torch.zeros_like(ids))
        )
        query, key, value = (attention.split_heads(layer(x)) for layer in
                             (attention.query, attention.key, attention.value))  # fmt: skip
        key = torch.cat([prefixed.prefix_key.expand(2, -1, -1, -1), key], dim=2)
        value = torch.cat([prefixed.prefix_value.expand(2, -1, -1, -1), value], dim=2)
        allowed = torch.cat([torch.ones(2, 3, dtype=torch.bool), mask.bool()], dim=1)
        attended, _ = attention_explicit(query, key, value, allowed[:, None, None, :])
        assert_close(seen["attended"], attention.merge_heads(attended), **TIGHT)
        assert (got - reference(ids, mask)).abs().max() > 1e-4  # the prefix did change it
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["blocks.0.attention.prefix_key", "blocks.0.attention.prefix_value"]
    model(ids, mask).sum().backward()
    grads = [n for n, p in model.named_parameters() if p.grad is not None]
    assert grads == trainable
    with pytest.raises(ValueError, match="KVCache"):
        prefixed(torch.randn(2, 6, 16), cache=LayerCache())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: apply_lora(m, rank=0), "rank=0"),
        (lambda m: apply_lora(m, alpha=-1.0), "alpha=-1.0"),
        (
            lambda m: apply_lora(m, target_modules=["q_proj"]),
            "target_modules='q_proj'.*attention.query",
        ),
        (lambda m: apply_adapters(m, bottleneck=0), "bottleneck=0"),
        (lambda m: apply_prefix_tuning(m, length=0), "length=0"),
        (lambda m: prepare(m, "bitfit"), "method='bitfit'.*full, probe, lora, adapters, prefix"),
        (lambda m: prepare(m, "probe", also_train=["classifier.*"]), "pattern='classifier.*'"),
    ],
)
def test_bad_input_names_the_value_and_what_exists(call, message: str) -> None:
    model = small_encoder()
    with pytest.raises(ArgumentError, match=message):
        call(model)


def test_prepare_probe_and_full() -> None:
    model = with_head(small_encoder(), "sequence", num_labels=2)
    head = sum(p.numel() for p in model.head.parameters())
    assert prepare(model, "probe").trainable == head
    counts = prepare(model, "full")
    assert counts.trainable == counts.total == model.num_parameters()


# ---------------------------------------------------------------------------- refused calls


def snapshot(model: torch.nn.Module):
    """The module tree, and every parameter's requires_grad flag and value."""
    parameters = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    return [name for name, _ in model.named_modules()], parameters


def assert_unchanged(model: torch.nn.Module, before) -> None:
    modules, parameters = snapshot(model)
    assert modules == before[0], "the module tree changed"
    assert parameters.keys() == before[1].keys()
    for name, (trainable, value) in parameters.items():
        assert trainable == before[1][name][0], f"requires_grad of {name} changed"
        assert torch.equal(value, before[1][name][1]), f"{name} changed"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: apply_lora(m, dropout=1.0), "dropout=1.0"),
        (lambda m: apply_lora(m, dropout=float("nan")), "dropout=nan"),
        (lambda m: apply_lora(m, dropout="0.1"), r"dropout='0.1' \(str\)"),
        (lambda m: apply_lora(m, also_train=["classifier.*"]), "also_train pattern='classifier"),
        (lambda m: apply_lora(m, also_train=[None]), r"also_train\[0\]=None"),
        (lambda m: apply_lora(m, also_train=None), "also_train=None"),
        (lambda m: apply_lora(m, target_modules=None), "target_modules=None"),
        (lambda m: apply_lora(m, target_modules=["query", None]), r"target_modules\[1\]=None"),
        (lambda m: apply_lora(m, target_modules=[3]), r"target_modules\[0\]=3 \(int\)"),
        (lambda m: apply_adapters(m, dropout=1.5), "dropout=1.5"),
        (lambda m: apply_adapters(m, dropout=-0.1), "dropout=-0.1"),
        (lambda m: apply_adapters(m, also_train=["classifier.*"]), "also_train pattern="),
        (lambda m: apply_adapters(m, target_modules=[None]), r"target_modules\[0\]=None"),
        (lambda m: apply_prefix_tuning(m, also_train=["classifier.*"]), "also_train pattern="),
        (lambda m: apply_prefix_tuning(m, also_train=None), "also_train=None"),
        (lambda m: prepare(m, "probe", also_train=["classifier.*"]), "also_train pattern="),
        (lambda m: prepare(m, "probe", also_train=[]), r"also_train=\[\].*at least one pattern"),
        (lambda m: prepare(m, "lora", rnak=2), r"options=\['rnak'\].*rank, alpha, dropout"),
        (lambda m: prepare(m, "lora", bottleneck=2), r"options=\['bottleneck'\].*apply_lora"),
        (lambda m: prepare(m, "prefix", rank=2), r"options=\['rank'\].*apply_prefix_tuning"),
        (lambda m: prepare(m, "lora", dropout=1.0), "dropout=1.0"),
        (lambda m: prepare(m, "adapters", also_train=["x.*"]), "also_train pattern='x.*'"),
        (lambda m: prepare(m, "lora", target_modules=[3]), r"target_modules\[0\]=3"),
    ],
)
def test_a_refused_call_changes_nothing(call, message: str) -> None:
    model = with_head(small_encoder(), "sequence", num_labels=2)
    model.transformer.blocks[0].attention.key.weight.requires_grad_(False)  # some state to keep
    before = snapshot(model)
    with pytest.raises(ArgumentError, match=message):
        call(model)
    assert_unchanged(model, before)


def test_prefix_tuning_is_applied_once() -> None:
    model = small_encoder()
    apply_prefix_tuning(model, length=2)
    before = snapshot(model)
    with pytest.raises(ArgumentError, match=r"type\(model.blocks.0.attention\)=.*applied once"):
        apply_prefix_tuning(model, length=2)
    assert_unchanged(model, before)


def test_merge_checks_every_layer_before_changing_one() -> None:
    model = small_encoder()
    apply_lora(model, rank=2, alpha=4)
    randomise_lora(model, seed=3)
    model.blocks[1].attention.value.merge()  # one layer merged by hand
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="already merged"):
        merge_lora(model)
    assert_unchanged(model, before)  # the other layers were not merged
    with pytest.raises(RuntimeError, match="not merged"):
        unmerge_lora(model)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Adapter(8, 2, dropout=1.5), "dropout=1.5"),
        (lambda: Adapter(8, 2, dropout=-0.1), "dropout=-0.1"),
        (lambda: Adapter(8, 2, dropout=float("nan")), "dropout=nan"),
        (lambda: Adapter(8, 2, dropout="0.1"), r"dropout='0.1' \(str\)"),
        (lambda: Adapter(0, 2), "dim=0"),
        (lambda: Adapter(8.0, 2), r"dim=8.0 \(float\)"),
        (lambda: AdaptedLinear(torch.nn.Linear(4, 3), 2, dropout=2.0), "dropout=2.0"),
        (lambda: AdaptedLinear(torch.nn.Embedding(5, 3), 2), r"type\(base\)=.*Embedding"),
        (lambda: LoRALinear(torch.nn.Embedding(5, 3), 2, 4), r"type\(base\)=.*Embedding.*Linear"),
        (lambda: LoRALinear(None, 2, 4), r"type\(base\)=<class 'NoneType'>"),
        (lambda: PrefixAttention(torch.nn.Linear(2, 2), 2), r"type\(attention\)=.*Linear"),
        (lambda: parameter_counts(torch.nn.ReLU()), r"model=ReLU\(\).*with parameters"),
        (lambda: parameter_counts(None), r"type\(model\)=<class 'NoneType'>"),
        (lambda: ParameterCounts(trainable=5, total=3), "ParameterCounts.trainable=5"),
        (lambda: merge_lora(None), r"type\(model\)=<class 'NoneType'>"),
        (lambda: apply_lora(None), r"type\(model\)=<class 'NoneType'>"),
        (lambda: prepare(None, "full"), r"type\(model\)=<class 'NoneType'>"),
    ],
)
def test_layers_and_counts_refuse_bad_arguments(make, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        make()


def test_a_single_pattern_string_is_one_pattern() -> None:
    model = with_head(small_encoder(), "sequence", num_labels=2)
    counts = prepare(model, "probe", also_train="head.*")
    assert counts.trainable == sum(p.numel() for p in model.head.parameters())
