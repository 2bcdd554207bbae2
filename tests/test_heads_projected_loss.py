"""`projected_cross_entropy`, the chunked vocabulary projection + cross-entropy that a
CausalLM uses on a CPU when it is handed `targets`: equal to the full logits' loss and
gradients, in every chunking, with ignored rows, in fp64 and bf16."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from sslm_lab import heads
from sslm_lab.heads import CausalLM
from sslm_lab.kernels import IGNORED, projected_cross_entropy
from sslm_lab.masking import IGNORE_INDEX
from sslm_lab.objectives import causal_lm_loss, next_token_targets
from sslm_lab.peft import apply_lora
from sslm_lab.training.hardware import keep_freed_memory
from sslm_lab.transformer import TransformerConfig


def problem(rows: int, vocab: int, seed: int, ignored: int = 0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(rows, 8, generator=generator, dtype=dtype).requires_grad_()
    weight = torch.randn(vocab, 8, generator=generator, dtype=dtype).requires_grad_()
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    targets[torch.randperm(rows, generator=generator)[:ignored]] = IGNORED
    return hidden, weight, targets


def full_loss(hidden, weight, targets):
    return F.cross_entropy(hidden @ weight.T, targets, ignore_index=IGNORE_INDEX)


def test_ignored_is_the_masking_modules_ignore_index() -> None:
    assert IGNORED == IGNORE_INDEX == -100


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    vocab=st.integers(2, 30),
    chunk_rows=st.integers(1, 50),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_equals_the_full_logits_loss_and_gradients(rows, vocab, chunk_rows, seed, data) -> None:
    ignored = data.draw(st.integers(0, rows - 1))
    hidden, weight, targets = problem(rows, vocab, seed, ignored)
    chunked = projected_cross_entropy(hidden, weight, targets, chunk_rows)
    expected = full_loss(hidden, weight, targets)
    assert_close(chunked, expected, atol=1e-12, rtol=1e-12)
    # a non-unit upstream gradient, as when the loss is scaled or summed with another
    got = torch.autograd.grad(3.0 * chunked, (hidden, weight))
    want = torch.autograd.grad(3.0 * expected, (hidden, weight))
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, atol=1e-12, rtol=1e-12)


def test_passes_gradcheck() -> None:
    hidden, weight, targets = problem(7, 5, seed=1, ignored=2)
    assert torch.autograd.gradcheck(
        lambda h, w: projected_cross_entropy(h, w, targets, 3), (hidden, weight)
    )


def test_only_the_inputs_that_want_a_gradient_get_one() -> None:
    hidden, weight, targets = problem(6, 5, seed=2)
    frozen = weight.detach()  # e.g. a frozen tied embedding under LoRA
    (grad,) = torch.autograd.grad(projected_cross_entropy(hidden, frozen, targets, 4), hidden)
    assert_close(grad, torch.autograd.grad(full_loss(hidden, frozen, targets), hidden)[0])
    with torch.no_grad():  # evaluation: the loss alone
        loss = projected_cross_entropy(hidden, weight, targets, 4)
    assert not loss.requires_grad
    assert_close(loss, full_loss(hidden, weight, targets).detach())


def test_bf16_hidden_states_are_scored_in_fp32_and_get_bf16_gradients() -> None:
    hidden, weight, targets = problem(12, 9, seed=3, dtype=torch.float32)
    low = hidden.detach().bfloat16().requires_grad_()
    loss = projected_cross_entropy(low, weight, targets, 5)
    assert loss.dtype == torch.float32
    assert_close(loss, full_loss(low.float(), weight, targets))
    loss.backward()
    assert low.grad.dtype == torch.bfloat16 and weight.grad.dtype == torch.float32


def test_no_scored_row_gives_nan_as_cross_entropy_does() -> None:
    hidden, weight, _ = problem(4, 5, seed=4)
    nothing = torch.full((4,), IGNORED)
    assert projected_cross_entropy(hidden, weight, nothing).isnan()
    assert full_loss(hidden, weight, nothing).isnan()


def test_bad_shapes_and_chunk_rows_are_named() -> None:
    hidden, weight, targets = problem(4, 5, seed=5)
    with pytest.raises(ValueError, match=r"hidden \(4, 8\) must be \(rows, n_embd\).*\(5, 7\)"):
        projected_cross_entropy(hidden, weight[:, :7], targets)
    with pytest.raises(ValueError, match=r"targets \(3,\) must be \(4,\)"):
        projected_cross_entropy(hidden, weight, targets[:3])
    with pytest.raises(ValueError, match=r"targets hold -3; allowed: token ids 0 to 4, or -100"):
        projected_cross_entropy(hidden, weight, torch.tensor([0, 1, -3, -100]))
    with pytest.raises(ValueError, match=r"targets hold 5; allowed: token ids 0 to 4"):
        projected_cross_entropy(hidden, weight, torch.tensor([0, 5, 2, 1]))
    with pytest.raises(ValueError, match="chunk_rows"):
        projected_cross_entropy(hidden, weight, targets, chunk_rows=0)


def small_causal_lm() -> CausalLM:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=23, block_size=9, n_layer=2, n_head=2, n_embd=16)
    return CausalLM(config)


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30], ids=["chunked", "full logits"])
def test_causal_lm_with_targets_is_causal_lm_loss_with_the_same_gradients(
    chunk_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Logits over CHUNK_BYTES go through projected_cross_entropy, smaller ones do not.
    monkeypatch.setattr(heads, "CHUNK_BYTES", chunk_bytes)
    calls = []
    real = heads.projected_cross_entropy
    monkeypatch.setattr(heads, "projected_cross_entropy", lambda *a: calls.append(1) or real(*a))
    model = small_causal_lm().eval()  # no dropout, so both calls see the same network
    ids = torch.randint(0, 23, (3, 9), generator=torch.Generator().manual_seed(6))
    fused = model(ids, targets=next_token_targets(ids))
    fused.backward()
    fused_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    plain = causal_lm_loss(model(ids), ids)
    plain.backward()
    assert_close(fused, plain, atol=1e-6, rtol=0)
    for name, p in model.named_parameters():
        assert_close(fused_grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert calls == ([1] if chunk_bytes == 1 else [])


def test_causal_lm_names_targets_of_the_wrong_shape() -> None:
    model = small_causal_lm()
    ids = torch.randint(0, 23, (3, 9))
    with pytest.raises(ValueError, match=r"targets \(3, 8\) must have input_ids' shape \(3, 9\)"):
        model(ids, targets=ids[:, 1:])


def test_keep_freed_memory_is_set_once_on_linux_glibc() -> None:
    import platform

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected  # cached: set once per process


def test_under_bf16_autocast_the_loss_is_close_to_the_plain_projections() -> None:
    hidden, weight, targets = problem(16, 9, seed=7, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked = projected_cross_entropy(hidden, weight, targets, 5)
        plain = F.cross_entropy((hidden @ weight.T).float(), targets)
    assert chunked.dtype == torch.float32
    assert_close(chunked, plain, atol=1e-5, rtol=1e-5)  # the same bf16 logits, fp32 softmax
    got = torch.autograd.grad(chunked, (hidden, weight))
    want = torch.autograd.grad(plain, (hidden, weight))
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, atol=2e-2, rtol=2e-2)  # bf16 matmuls on both sides


def test_a_wrapped_head_is_run_itself_not_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "CHUNK_BYTES", 1)  # every loss would take the chunked path
    model = small_causal_lm()
    apply_lora(model, rank=2, target_modules=["head"])
    nn.init.normal_(model.head.lora_B.weight)  # a LoRA delta that changes the logits
    model.eval()
    ids = torch.randint(0, 23, (3, 9), generator=torch.Generator().manual_seed(8))
    assert_close(model(ids, targets=next_token_targets(ids)), causal_lm_loss(model(ids), ids))
