"""sslm_lab.transformer: attention paths, masks, blocks, heads, sizes, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab import kernels
from sslm_lab import transformer as T
from sslm_lab.heads import CausalLM, MaskedLM, SequenceClassifier
from sslm_lab.masking import causal_mask, padding_mask, validate_attention_mask
from sslm_lab.transformer import (
    Block,
    MultiHeadAttention,
    Transformer,
    TransformerConfig,
    attention_maps,
)

TIGHT = {"atol": 1e-5, "rtol": 1e-5}


def small_config(**overrides) -> TransformerConfig:
    sizes = {"vocab_size": 61, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32}
    return TransformerConfig(**{**sizes, **overrides})


def encoder_config(**overrides) -> TransformerConfig:
    fields = {"causal": False, "norm_position": "post", "gelu": "exact", "type_vocab_size": 2}
    return small_config(**{**fields, **overrides})


def right_padding_mask(lengths: list[int], seq: int) -> torch.Tensor:
    """(batch, seq) long, 1 for the first `length` positions of each row."""
    return padding_mask(torch.tensor(lengths), seq)


# ---------------------------------------------------------------------------- attention paths


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_explicit_path_equals_fast_path(causal: bool, padded: bool) -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(small_config(causal=causal)).eval()
    x = torch.randn(3, 9, 32)
    mask = right_padding_mask([9, 6, 2], 9) if padded else None
    fast, no_weights = attention(x, mask)
    explicit, weights = attention(x, mask, need_weights=True)
    error = (fast - explicit).abs().max()
    print(f"\n[parity] explicit vs fast (causal={causal}, padded={padded}): {error:.2e}")
    assert no_weights is None
    assert weights.shape == (3, 4, 9, 9)
    assert_close(fast, explicit, **TIGHT)


def test_explicit_path_equals_fast_path_with_left_padding_and_no_nan() -> None:
    """Left padding under a causal mask leaves some queries with no key at all."""
    torch.manual_seed(0)
    attention = MultiHeadAttention(small_config(causal=True)).eval()
    x = torch.randn(2, 7, 32, requires_grad=True)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[0, :3] = 0
    fast, _ = attention(x, mask)
    explicit, _ = attention(x, mask, need_weights=True)
    assert_close(fast, explicit, **TIGHT)
    fast.sum().backward()
    assert torch.isfinite(fast).all() and torch.isfinite(x.grad).all()


def test_whole_model_explicit_path_equals_fast_path() -> None:
    torch.manual_seed(0)
    fast_model = MaskedLM(encoder_config()).eval()
    explicit_model = MaskedLM(encoder_config(attention_path="explicit")).eval()
    explicit_model.load_state_dict(fast_model.state_dict())
    ids = torch.randint(0, 61, (3, 12))
    mask = right_padding_mask([12, 7, 3], 12)
    assert_close(fast_model(ids, mask), explicit_model(ids, mask), **TIGHT)


def test_weights_are_probabilities_that_respect_masks() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(small_config(causal=True)).eval()
    mask = right_padding_mask([5, 3], 5)
    _, weights = attention(torch.randn(2, 5, 32), mask, need_weights=True)
    assert_close(weights.sum(-1), torch.ones(2, 4, 5))
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert (weights[:, :, future] == 0).all()
    assert (weights[1, :, :, 3:] == 0).all()  # padded keys get no weight


def test_default_forward_never_runs_the_explicit_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attention maps are opt-in: the default call must stay on the fused kernel."""

    def forbidden(*args, **kwargs):
        raise AssertionError("explicit path used without need_weights")

    monkeypatch.setattr(T, "attention_explicit", forbidden)
    model = CausalLM(small_config())
    ids = torch.randint(0, 61, (2, 8))
    model(ids)
    model(ids, right_padding_mask([8, 5], 8))


@pytest.mark.parametrize("model_class", [CausalLM, MaskedLM])
def test_attention_inside_cpu_autocast_runs_in_fp32(model_class, monkeypatch) -> None:
    """bf16 autocast on a CPU: projections in bf16, attention itself in fp32; the result
    stays within bf16 rounding of the fp32 model, and without autocast nothing changes."""
    seen = []
    fast = T.attention_fast

    def recording(query, key, value, *args, **kwargs):
        seen.append((query.dtype, torch.is_autocast_enabled("cpu")))
        return fast(query, key, value, *args, **kwargs)

    monkeypatch.setattr(T, "attention_fast", recording)
    torch.manual_seed(0)
    config = small_config() if model_class is CausalLM else encoder_config()
    model = model_class(config)
    ids = torch.randint(5, 61, (2, 12))
    reference = model(ids)
    assert set(seen) == {(torch.float32, False)}  # the fp32 path: no casts, no autocast
    reference.square().mean().backward()
    reference_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    seen.clear()
    projected = []
    model.transformer.blocks[0].attention.output.register_forward_hook(
        lambda module, inputs, output: projected.append(output.dtype)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(ids)
    assert set(seen) == {(torch.float32, False)}  # attention in fp32, outside autocast
    assert projected == [torch.bfloat16]  # the projections around it stay in bf16
    assert_close(mixed.float(), reference, atol=3e-2, rtol=3e-2)  # bf16 keeps 8 bits
    mixed.float().square().mean().backward()
    for name, p in model.named_parameters():
        scale = reference_grads[name].abs().max().item() + 1e-6
        assert (p.grad - reference_grads[name]).abs().max().item() < 0.1 * scale, name


def test_attention_maps_for_every_layer_and_default_path_unchanged() -> None:
    torch.manual_seed(0)
    model = MaskedLM(encoder_config()).eval()
    ids = torch.randint(0, 61, (2, 6))
    mask = right_padding_mask([6, 4], 6)
    maps = attention_maps(model, ids, mask)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 6, 6)
    assert (maps[1][1, :, :, 4:] == 0).all()
    assert model.config.attention_path == "fast"
    collected: list[torch.Tensor] = []
    hidden = model.transformer(ids, mask, attention_maps=collected)  # the explicit path
    assert len(collected) == 2 and all(
        torch.equal(a, b) for a, b in zip(maps, collected, strict=True)
    )
    assert_close(hidden, model.transformer(ids, mask), **TIGHT)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_torch_multihead_attention(padded: bool, causal: bool) -> None:
    torch.manual_seed(0)
    ours = MultiHeadAttention(small_config(causal=causal)).eval()
    reference = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        # nn.MultiheadAttention stacks [query; key; value] in one (3·E, E) projection.
        reference.in_proj_weight.copy_(
            torch.cat([ours.query.weight, ours.key.weight, ours.value.weight])
        )
        reference.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        reference.out_proj.weight.copy_(ours.output.weight)
        reference.out_proj.bias.copy_(ours.output.bias)
    x = torch.randn(3, 8, 32)
    mask = right_padding_mask([8, 5, 1], 8) if padded else None
    key_padding_mask = (mask == 0) if padded else None  # torch: True = ignore
    future = torch.ones(8, 8, dtype=torch.bool).triu(1) if causal else None  # True = ignore
    expected, expected_weights = reference(
        x, x, x, key_padding_mask=key_padding_mask, attn_mask=future, average_attn_weights=False
    )
    for need_weights in (False, True):
        output, weights = ours(x, mask, need_weights=need_weights)
        print(
            f"\n[parity] vs nn.MultiheadAttention (causal={causal}, padded={padded}): "
            f"{(output - expected).abs().max():.2e}"
        )
        assert_close(output, expected, **TIGHT)
    assert_close(weights, expected_weights, **TIGHT)


def test_dropout_zeroes_a_share_p_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    y = kernels.dropout(x, 0.1)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - 0.1) < 4 * (0.1 * 0.9 / len(x)) ** 0.5
    kept = y[y != 0]
    # inverted: the mean stays 1, for p as drawn on a CPU (a multiple of 2^-15)
    p_drawn = round(0.1 * kernels.DROPOUT_LEVELS) / kernels.DROPOUT_LEVELS
    assert abs(p_drawn - 0.1) < 1e-4
    assert_close(kept, torch.full_like(kept, 1 / (1 - p_drawn)))
    assert not torch.equal(kernels.dropout(x, 0.1), y)  # a fresh mask every call
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient goes through the same mask
    assert kernels.dropout(x, 0.1, training=False) is x and kernels.dropout(x, 0.0) is x
    layer = kernels.Dropout(0.3).eval()
    assert layer(x) is x and repr(layer) == "Dropout(p=0.3)"
    assert kernels.dropout(torch.ones(8, dtype=torch.bfloat16), 0.5).dtype == torch.bfloat16


def reference_scores(query, key, allowed):
    """The masked score table as the formula reads: scale, then fill the masked entries."""
    scores = query @ key.transpose(-2, -1) / query.size(-1) ** 0.5
    return scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)


@pytest.mark.parametrize("mask", ["causal", "padding", "2-d", "3-d heads"])
def test_masked_scores_equal_scale_then_fill_in_value_and_gradient(mask: str) -> None:
    torch.manual_seed(0)
    batch, heads, seq, head_dim = 3, 2, 7, 8
    shape = (batch, heads, seq, head_dim)
    query, key = (torch.randn(shape, dtype=torch.float64, requires_grad=True) for _ in range(2))
    causal = causal_mask(seq, torch.device("cpu"))  # (seq, seq) bool
    real = right_padding_mask([7, 4, 1], seq).bool()  # (batch, seq)
    allowed = {
        "causal": causal[None, None],
        "padding": real[:, None, None, :],
        "2-d": causal,
        "3-d heads": (torch.rand(heads, seq, seq) > 0.3) | torch.eye(seq, dtype=torch.bool),
    }[mask]
    fast = kernels.masked_scores(query, key, allowed)
    expected = reference_scores(query, key, allowed)
    lowest = torch.finfo(torch.float64).min
    assert torch.equal(fast == lowest, ~allowed.expand(fast.shape))  # lowest + score = lowest
    assert_close(fast, expected, atol=1e-12, rtol=1e-12)  # 1/√8 times, against ÷ √8
    weights = torch.randn(fast.shape, dtype=torch.float64)
    grads = torch.autograd.grad((fast.softmax(-1) * weights).sum(), (query, key))
    expected_grads = torch.autograd.grad((expected.softmax(-1) * weights).sum(), (query, key))
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert_close(grad, expected_grad, atol=1e-12, rtol=1e-12)


def test_a_query_with_no_key_keeps_scale_then_fill_and_its_gradient() -> None:
    """Left padding under a causal mask: the padded queries see no key at all."""
    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 2, 6, 8, requires_grad=True) for _ in range(3))
    real = right_padding_mask([6, 4, 1], 6).bool().flip(-1)  # left padded
    allowed = causal_mask(6, torch.device("cpu")) & real[:, None, None, :]
    assert not kernels.bias_masking_applies(query, allowed)
    assert kernels.bias_masking_applies(query, allowed[:1])  # the unpadded row alone: yes
    output, weights = T.attention_explicit(query, key, value, allowed)
    expected = reference_scores(query, key, allowed).softmax(-1)
    assert torch.equal(weights, expected)
    upstream = torch.randn(output.shape)
    grads = torch.autograd.grad((output * upstream).sum(), (query, key, value))
    expected_grads = torch.autograd.grad(((expected @ value) * upstream).sum(), (query, key, value))
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert torch.equal(grad, expected_grad)


def test_attention_explicit_with_a_mask_matches_the_formula_in_float32_and_bfloat16() -> None:
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 3, 5, 4) for _ in range(3))
    allowed = causal_mask(5, torch.device("cpu"))[None, None]
    for dtype, tolerance in ((torch.float32, 1e-6), (torch.bfloat16, 1e-2)):
        q, k, v = (t.to(dtype) for t in (query, key, value))
        output, weights = T.attention_explicit(q, k, v, allowed)
        expected = reference_scores(q, k, allowed).softmax(-1)
        assert weights.dtype == dtype
        assert_close(weights, expected, atol=tolerance, rtol=tolerance)
        assert_close(output, expected @ v, atol=tolerance, rtol=tolerance)
        assert (weights[..., 0, 1:] == 0).all()  # the first query sees only itself
    assert kernels.scores_dtype(query.half()) == torch.float16  # float16 keeps scale-then-fill


def test_tanh_gelu_sigmoid_form_equals_pytorchs_in_value_and_gradient() -> None:
    torch.manual_seed(0)
    x = (torch.randn(4096) * 4).requires_grad_()
    reference = x.detach().clone().requires_grad_()
    y = kernels.gelu_tanh(x)
    expected = torch.nn.functional.gelu(reference, approximate="tanh")
    assert y.grad_fn is not None and "SigmoidFormGelu" in type(y.grad_fn).__name__
    assert_close(y, expected, atol=2e-6, rtol=1e-6)
    upstream = torch.randn(4096)
    y.backward(upstream)
    expected.backward(upstream)
    assert torch.equal(x.grad, reference.grad)  # PyTorch's own derivative, at the same x
    x64 = torch.randn(12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kernels._SigmoidFormGelu.apply, (x64,))
    for other in (x64.detach(), x.detach().bfloat16()):  # other dtypes: F.gelu itself
        exact = torch.nn.functional.gelu(other, approximate="tanh")
        assert torch.equal(kernels.gelu_tanh(other), exact)
    layer = kernels.GELU("tanh")
    assert torch.equal(layer(x.detach()), y.detach()) and repr(layer) == "GELU(kind='tanh')"
    assert torch.equal(kernels.GELU("exact")(x.detach()), torch.nn.functional.gelu(x.detach()))
    with pytest.raises(ValueError, match="gelu"):
        kernels.GELU("relu")


def test_attention_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(small_config(attention_dropout=0.5))
    x = torch.randn(2, 6, 32)
    attention.train()
    assert not torch.allclose(attention(x)[0], attention(x)[0])
    attention.eval()
    assert_close(attention(x)[0], attention(x)[0])


# ---------------------------------------------------------------------------- blocks and models


def test_pre_and_post_ln_blocks_follow_their_formulas() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32)
    for position in ("pre", "post"):
        block = Block(small_config(norm_position=position)).eval()
        attention, feed_forward = block.attention, block.feed_forward
        if position == "pre":
            h = x + attention(block.attention_norm(x))[0]
            expected = h + feed_forward(block.feed_forward_norm(h))
        else:
            h = block.attention_norm(x + attention(x)[0])
            expected = block.feed_forward_norm(h + feed_forward(h))
        assert_close(block(x)[0], expected)


def test_decoder_is_causal_and_encoder_ignores_padding() -> None:
    torch.manual_seed(0)
    decoder = CausalLM(small_config()).eval()
    ids = torch.randint(0, 61, (1, 10))
    changed = ids.clone()
    changed[0, 6] = (changed[0, 6] + 1) % 61
    assert_close(decoder(ids)[:, :6], decoder(changed)[:, :6])
    assert not torch.allclose(decoder(ids)[:, 6:], decoder(changed)[:, 6:])

    encoder = Transformer(encoder_config()).eval()
    short = torch.randint(1, 61, (1, 5))
    padded = torch.cat([short, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = right_padding_mask([5], 9)
    assert_close(encoder(padded, mask)[:, :5], encoder(short), **TIGHT)


def test_heads_shapes_and_tied_weights() -> None:
    ids = torch.randint(0, 61, (2, 7))
    lm = CausalLM(small_config())
    assert lm(ids).shape == (2, 7, 61)
    assert lm.head.weight is lm.transformer.token_embedding.weight
    untied = CausalLM(small_config(tie_weights=False))
    assert untied.head.weight is not untied.transformer.token_embedding.weight
    mlm = MaskedLM(encoder_config())
    assert mlm(ids, token_type_ids=torch.ones_like(ids)).shape == (2, 7, 61)
    assert mlm.head.vocab_projection.weight is mlm.transformer.token_embedding.weight
    classifier = SequenceClassifier(encoder_config(), num_labels=3)
    assert classifier(ids).shape == (2, 3)


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_masked_lm_computes_only_the_positions_asked_for(norm_position: str) -> None:
    torch.manual_seed(0)
    mlm = MaskedLM(encoder_config(norm_position=norm_position)).eval()
    ids = torch.randint(5, 61, (3, 9))
    mask = right_padding_mask([9, 7, 4], 9)
    positions = (torch.rand(3, 9) < 0.3) & mask.bool()
    positions[0, 0] = True  # at least one
    rows = {"head": [], "last feed-forward": [], "first feed-forward": []}
    watched = {
        "head": mlm.head.vocab_projection,
        "last feed-forward": mlm.transformer.blocks[-1].feed_forward.up,
        "first feed-forward": mlm.transformer.blocks[0].feed_forward.up,
    }
    hooks = [
        module.register_forward_hook(
            lambda module, inputs, output, name=name: rows[name].append(inputs[0].shape[:-1])
        )
        for name, module in watched.items()
    ]
    gathered = mlm(ids, mask, positions=positions)
    for hook in hooks:
        hook.remove()
    selected = int(positions.sum())
    # the head and the last block past its attention saw the selected positions alone
    assert rows["head"] == rows["last feed-forward"] == [(selected,)]
    assert rows["first feed-forward"] == [(3, 9)]  # every position is context below
    assert gathered.shape == (selected, 61)
    assert_close(gathered, mlm(ids, mask)[positions], atol=1e-6, rtol=0)  # row-major order
    assert_close(
        mlm.hidden_states(ids, mask, positions=positions),
        mlm.hidden_states(ids, mask)[positions],
        atol=1e-6,
        rtol=0,
    )
    with pytest.raises(ValueError, match=r"positions must be a bool tensor shaped like input_ids"):
        mlm(ids, positions=positions.long())
    with pytest.raises(ValueError, match=r"\(3, 9\); got torch.bool \(3, 8\)"):
        mlm(ids, positions=positions[:, :8])


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_pooling_ignores_padding(pooling: str) -> None:
    torch.manual_seed(0)
    classifier = SequenceClassifier(encoder_config(), num_labels=3, pooling=pooling).eval()
    short = torch.randint(1, 61, (1, 4))
    padded = torch.cat([short, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    assert_close(classifier(padded, right_padding_mask([4], 9)), classifier(short), **TIGHT)


def test_parameter_count_matches_the_formula() -> None:
    config = small_config()
    n, vocab, context, layers = 32, 61, 16, 2
    per_layer = 12 * n * n + 13 * n  # q, k, v, output, up, down (+ biases), two LayerNorms
    embeddings = vocab * n + context * n
    model = CausalLM(config)
    assert model.num_parameters() == embeddings + layers * per_layer + 2 * n  # + final norm
    assert model.num_parameters(exclude_embeddings=True) == layers * per_layer + 2 * n
    assert CausalLM(small_config(tie_weights=False)).num_parameters() == (
        model.num_parameters() + vocab * n
    )


def test_flops_per_token_is_the_palm_estimate_on_every_model() -> None:
    config = small_config()
    lm = CausalLM(config)
    matmul_params = lm.num_parameters(exclude_embeddings=True) + 61 * 32  # tied output layer
    assert lm.flops_per_token() == 6 * matmul_params + 12 * 2 * 32 * 16
    assert lm.flops_per_token(seq_len=4) == 6 * matmul_params + 12 * 2 * 32 * 4
    for model in (Transformer(config), MaskedLM(encoder_config()), SequenceClassifier(config, 2)):
        assert isinstance(model.flops_per_token(), float)
        assert model.flops_per_token() > 6 * model.num_parameters(exclude_embeddings=True) - 1


def test_init_is_gpt2_style() -> None:
    torch.manual_seed(0)
    model = CausalLM(small_config(n_embd=64, n_head=4, vocab_size=500))
    assert abs(model.transformer.token_embedding.weight.std().item() - 0.02) < 0.002
    residual = model.transformer.blocks[0].feed_forward.down.weight.std().item()
    assert abs(residual - 0.02 / 2) < 0.002  # 0.02 / sqrt(2 * n_layer), n_layer = 2
    assert (model.transformer.blocks[0].attention.query.bias == 0).all()


# ---------------------------------------------------------------------------- bad input


def test_n_embd_not_divisible_by_n_head_names_both() -> None:
    with pytest.raises(ValueError, match=r"n_embd=30 .*n_head=4"):
        TransformerConfig(n_embd=30, n_head=4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("norm_position", "middle"), ("gelu", "relu"), ("attention_path", "flash"), ("dropout", 1.5)],
)
def test_bad_config_values_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        small_config(**{field: value})


def test_sequence_longer_than_context_names_both_numbers() -> None:
    model = CausalLM(small_config())
    with pytest.raises(ValueError, match=r"sequence length 17 .*block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_mask_of_wrong_shape_names_both_shapes() -> None:
    model = CausalLM(small_config())
    with pytest.raises(ValueError, match=r"\(2, 5\).*got \(2, 6\)"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 6))
    with pytest.raises(ValueError, match=r"\(2, 5\).*got \(2, 1, 1, 5\)"):
        MultiHeadAttention(small_config())(torch.randn(2, 5, 32), torch.ones(2, 1, 1, 5))


def test_mask_of_wrong_dtype_or_values_is_refused() -> None:
    with pytest.raises(TypeError, match=r"bool, integer or float.*complex64"):
        validate_attention_mask(torch.ones(2, 3, dtype=torch.complex64), 2, 3)
    additive = torch.tensor([[0.0, 0.0, float("-inf")]])
    with pytest.raises(ValueError, match=r"only 0 \(padding\) and 1.*-inf"):
        validate_attention_mask(additive, 1, 3)
    with pytest.raises(TypeError, match="torch.Tensor"):
        validate_attention_mask([[1, 1, 0]], 1, 3)


def test_mask_dtypes_agree() -> None:
    as_bool = torch.tensor([[True, True, False]])
    for mask in (as_bool, as_bool.long(), as_bool.float(), as_bool.to(torch.uint8)):
        assert torch.equal(validate_attention_mask(mask, 1, 3), as_bool)


def test_other_bad_inputs() -> None:
    with pytest.raises(ValueError, match="type_vocab_size=0"):
        Transformer(small_config())(
            torch.zeros(1, 3, dtype=torch.long), token_type_ids=torch.zeros(1, 3)
        )
    with pytest.raises(ValueError, match="integer tensor of shape"):
        CausalLM(small_config())(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(encoder_config(), num_labels=2, pooling="max")
