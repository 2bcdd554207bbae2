"""Property-based tests of LoRA: merged == unmerged for any rank and alpha, unmerge restores
the base weight, and the output is W x + b + (alpha / r) · B A x."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from sslm_lab.peft import LoRALinear, apply_lora, merge_lora, unmerge_lora
from sslm_lab.transformer import Transformer, TransformerConfig

ALPHAS = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    in_features=st.integers(1, 12),
    out_features=st.integers(1, 12),
    rank=st.integers(1, 16),
    alpha=ALPHAS,
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_a_merged_lora_layer_equals_the_unmerged_one(
    in_features, out_features, rank, alpha, bias, seed
) -> None:
    torch.manual_seed(seed)
    layer = LoRALinear(torch.nn.Linear(in_features, out_features, bias=bias), rank, alpha)
    layer = layer.double().eval()  # fp64: the comparison tests the algebra, not rounding
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.weight.normal_(generator=generator)  # B starts at 0: give it values
    x = torch.randn(3, in_features, dtype=torch.float64, generator=generator)
    weight = layer.base.weight.detach().clone()
    with torch.no_grad():
        unmerged = layer(x)
        update = (alpha / rank) * (x @ layer.lora_A.weight.T) @ layer.lora_B.weight.T
        by_formula = x @ weight.T + (0 if layer.base.bias is None else layer.base.bias) + update
        layer.merge()
        merged = layer(x)
        layer.unmerge()
        again = layer(x)
    # rounding grows with the terms' size (alpha up to 1e3), not with the output's
    size = x.abs() @ weight.abs().T + (alpha / rank) * (
        (x.abs() @ layer.lora_A.weight.abs().T) @ layer.lora_B.weight.abs().T
    )
    scale = 1 + size.max().item()
    assert_close(unmerged, by_formula, rtol=0, atol=1e-12 * scale)
    assert_close(merged, unmerged, rtol=0, atol=1e-12 * scale)
    assert_close(again, unmerged, rtol=0, atol=1e-12 * scale)
    delta = (alpha / rank) * layer.lora_B.weight @ layer.lora_A.weight
    assert_close(layer.base.weight, weight, rtol=0, atol=1e-13 * (1 + delta.abs().max().item()))


@settings(max_examples=12, deadline=None)
@given(
    rank=st.integers(1, 8),
    alpha=st.floats(min_value=0.01, max_value=64, allow_nan=False),
    targets=st.sets(
        st.sampled_from(["query", "key", "value", "attention.output", "feed_forward.up"]),
        min_size=1,
    ),
    seed=st.integers(0, 2**16),
)
def test_a_merged_encoder_equals_the_unmerged_one(rank, alpha, targets, seed) -> None:
    torch.manual_seed(seed)
    config = TransformerConfig(
        vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=8, causal=False,
        norm_position="post", gelu="exact",
    )  # fmt: skip
    model = Transformer(config).double().eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, rank=rank, alpha=alpha, target_modules=sorted(targets))
    model.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(generator=generator)
    ids = torch.randint(0, 30, (2, 8), generator=generator)
    with torch.no_grad():
        unmerged = model(ids)
        merge_lora(model)
        merged = model(ids)
        unmerge_lora(model)
    assert_close(merged, unmerged, rtol=1e-9, atol=1e-9)
    for name, parameter in model.named_parameters():
        if "lora_" not in name:
            original = weights[name.replace(".base.", ".")]
            assert_close(parameter.detach(), original, rtol=1e-9, atol=1e-9, msg=name)
