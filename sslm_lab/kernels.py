"""Speed tricks for the CPU, kept out of the architecture's way.

`sslm_lab.transformer` and `sslm_lab.heads` read as the papers write them; where the
plain PyTorch operation is slow on a CPU, they call one function from here instead. Each
computes exactly what its docstring's formula says (tested against that formula) and
falls back to the plain operation wherever it would not pay: on a GPU, PyTorch's fused
kernels are already the fast way.

    dropout, Dropout          inverted dropout with 15 random bits per element
    gelu_tanh, GELU           GPT-2's GELU through sigmoid, which is cheaper than tanh
    masked_scores             scaled and masked attention scores in one batched product
    outside_cpu_autocast      attention in fp32 when the matmuls around it run in bf16
    projected_cross_entropy   the vocabulary projection and its loss, a chunk of rows at a time

Why each one pays is said beside it; what each one measured, against the operation it
replaces, is `benchmarks/bench_kernels.py` (figures in `benchmarks/README.md`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_choice, check_int

# ---------------------------------------------------------------------------- dropout

DROPOUT_LEVELS = 2**15  # a CPU keep mask's resolution: p is a multiple of 2^-15


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout (Srivastava et al. 2014): zero each element with probability `p` and
    scale the others by 1 / (1 - p), so that the expected value is unchanged. Any shape.

    On a CPU, drawing the keep mask is most of dropout's cost, and a 32-bit uniform number
    per element is more randomness than a keep-or-drop decision needs. So each element
    gets 15 random bits, four elements per 64-bit draw, kept where the bits, read as an
    integer in [0, 2^15), are at least p * 2^15. That rounds p to a multiple of 2^-15
    (0.1 becomes 0.100006) and scales by that p's 1 / (1 - p), so the mean stays exact.
    Elsewhere: `F.dropout`.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)  # one fused kernel on a GPU
    threshold = round(p * DROPOUT_LEVELS)
    if threshold >= DROPOUT_LEVELS:
        return x * 0.0  # p = 1 (or within 2^-16 of it): everything dropped
    count = x.numel()
    bits = torch.empty((count + 3) // 4, dtype=torch.int64, device=x.device).random_()
    # random_() fills an int64 with 63 random bits, so every 16-bit lane's low 15 are random.
    lanes = bits.view(torch.int16)[:count].view(x.shape) & (DROPOUT_LEVELS - 1)
    keep = lanes >= threshold
    scale = DROPOUT_LEVELS / (DROPOUT_LEVELS - threshold)  # 1 / (1 - p as drawn)
    return torch.where(keep, x * scale, 0.0)


# ---------------------------------------------------------------------------- GELU

GELU_TANH_SCALE = math.sqrt(2 / math.pi)  # GPT-2's GELU: 0.5 x (1 + tanh(this (x + 0.044715 x³)))


class _SigmoidFormGelu(torch.autograd.Function):
    """Forward as x · sigmoid(2z), backward by PyTorch's own tanh-GELU derivative."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        two_z = torch.addcmul(x, x * x, x, value=0.044715).mul_(2 * GELU_TANH_SCALE)
        return two_z.sigmoid_().mul_(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.gelu_backward(grad_output, x, approximate="tanh")


def gelu_tanh(x: Tensor) -> Tensor:
    """GPT-2's GELU, 0.5 · x · (1 + tanh(√(2/π) (x + 0.044715 x³))). Any shape.

    0.5 (1 + tanh z) = sigmoid(2z), and on a CPU PyTorch's sigmoid is much cheaper than its
    tanh, so float32 CPU tensors take that form forward. Its error against float64 is of
    the same size as `F.gelu`'s, and the gradient is PyTorch's own. Other devices and
    dtypes: `F.gelu(x, approximate="tanh")`.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _SigmoidFormGelu.apply(x)
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------- as layers


class Dropout(nn.Module):
    """`dropout` as a layer, active in training mode only (`model.train()` / `.eval()`)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(nn.Module):
    """GELU, x · Φ(x): BERT's exact erf form ("exact") or GPT-2's tanh approximation ("tanh")."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        check_choice("gelu", kind, ("exact", "tanh"))
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        return gelu_tanh(x) if self.kind == "tanh" else F.gelu(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


# ---------------------------------------------------------------------------- attention scores


def scores_dtype(query: Tensor) -> torch.dtype:
    """The dtype `query @ key.T` comes out in: autocast's where it is on, else the query's."""
    device = query.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return query.dtype


def bias_masking_applies(query: Tensor, allowed: Tensor) -> bool:
    """Whether `masked_scores` may stand in for scaling then filling: on a CPU, outside
    float16, and with every query allowed at least one key (a query with none gets uniform
    weights either way, but the bias form would send gradient through its masked scores)."""
    if query.device.type != "cpu" or scores_dtype(query) == torch.float16:
        return False
    return bool(allowed.any(dim=-1).all())


def masked_scores(query: Tensor, key: Tensor, allowed: Tensor) -> Tensor:
    """`(Q Kᵀ / √d_k).masked_fill(~allowed, lowest)` as one batched product.

    `torch.baddbmm(bias, Q, Kᵀ, alpha=1/√d_k)` computes bias + Q Kᵀ / √d_k in the matrix
    product itself, so a bias that is 0 where allowed and the dtype's most negative number
    where not gives the same table without the passes of dividing and masking, and with no
    mask to apply to the gradient. lowest + score rounds back to lowest, so the masked
    entries agree exactly, and the others up to rounding (exactly where √d_k is a power of
    two, as for 64-wide heads). Not for float16, whose lowest number plus a negative score
    overflows to -inf: `bias_masking_applies` says when it may be used.
    """
    *lead, seq, head_dim = query.shape
    n_keys = key.size(-2)
    lowest = torch.finfo(scores_dtype(query)).min
    bias = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device)
    bias = bias.masked_fill_(~allowed, lowest)
    if all(size == 1 for size in bias.shape[:-2]):
        bias = bias.reshape(1, *bias.shape[-2:])  # broadcast over every batch and head
    else:
        bias = bias.expand(*lead, seq, n_keys).reshape(-1, seq, n_keys)
    queries = query.reshape(-1, seq, head_dim)
    keys_t = key.expand(*lead, n_keys, head_dim).reshape(-1, n_keys, head_dim).transpose(1, 2)
    scores = torch.baddbmm(bias, queries, keys_t, alpha=1 / math.sqrt(head_dim))
    return scores.view(*lead, seq, n_keys)


def outside_cpu_autocast(
    attend: Callable[..., Any], query: Tensor, key: Tensor, value: Tensor, *args: Any
) -> Any:
    """`attend(query, key, value, *args)`, in fp32 when a CPU autocast is on, else as is.

    On a CPU, PyTorch's bf16 attention (its backward above all) is slower than its fp32
    one, while the projections around it gain from bf16 matmuls: so under autocast the
    attention alone runs in fp32.
    """
    if query.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return attend(query, key, value, *args)
    with torch.autocast("cpu", enabled=False):
        return attend(query.float(), key.float(), value.float(), *args)


# ---------------------------------------------------------------------------- output layer

IGNORED = -100  # a target that is not scored, as in F.cross_entropy (`masking.IGNORE_INDEX`)
# The logits of one chunk of rows in `projected_cross_entropy` take this many bytes at most
# (fp32): the fastest of 4, 8, 16 and 32 MiB in benchmarks/bench_kernels.py.
CHUNK_BYTES = 16 << 20


def projected_cross_entropy(
    hidden: Tensor, weight: Tensor, targets: Tensor, chunk_rows: int | None = None
) -> Tensor:
    """`F.cross_entropy(hidden @ weight.T, targets)` without ever holding all the logits.

    hidden: (rows, n_embd); weight: (vocab, n_embd), the vocabulary projection's; targets:
    (rows,) token ids, or IGNORED (-100) for rows no loss reads. Returns the mean over the
    scored rows, as F.cross_entropy does (NaN if none is scored), computed in fp32 (fp64
    for fp64 inputs) whatever the dtype of `hidden`.

    A causal LM scores every position, so its logits are the largest tensor of a training
    step: 32 rows x 128 tokens x a 4096-token vocabulary is 67 MB in fp32, written by the
    projection, read and written again by log-softmax and by its backward. On a CPU that
    traffic, and the kernel's page faults for so large a fresh allocation each step, cost
    more than the arithmetic. So this function walks `chunk_rows` rows at a time (default:
    CHUNK_BYTES of logits) and, for each chunk, computes the logits, the loss, and at once
    the gradient of the loss with respect to the logits, softmax(logits) - onehot(target):
    two matrix products turn it into the gradients of `hidden` and `weight`, and the chunk's
    logits are dropped. Backward only scales the stored gradients. The idea is the one of
    Liger Kernel's fused linear cross-entropy and of Apple's Cut Cross-Entropy (2024); the
    same FLOPs as the plain projection, equal to it up to float rounding (tested).
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden {tuple(hidden.shape)} must be (rows, n_embd) and weight "
            f"{tuple(weight.shape)} (vocab, n_embd) with the same n_embd"
        )
    if targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"targets {tuple(targets.shape)} must be ({hidden.shape[0]},), one per row"
        )
    vocab = weight.shape[0]
    outside = (targets != IGNORED) & ((targets < 0) | (targets >= vocab))
    if outside.any():
        raise ValueError(
            f"targets hold {targets[outside][0].item()}; allowed: token ids 0 to {vocab - 1}, "
            f"or {IGNORED} for a row not scored"
        )
    if chunk_rows is None:
        chunk_rows = max(64, CHUNK_BYTES // (4 * vocab))
    check_int("chunk_rows", chunk_rows, low=1)
    # Inside an autograd Function's forward grad mode is always off, so decide here.
    grads = torch.is_grad_enabled()
    return _ProjectedCrossEntropy.apply(hidden, weight, targets, chunk_rows, grads)


class _ProjectedCrossEntropy(torch.autograd.Function):
    """The autograd side of `projected_cross_entropy`: gradients are made in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_rows: int, grads: bool) -> Tensor:
        want_hidden, want_weight = (grads and wanted for wanted in ctx.needs_input_grad[:2])
        # fp32 logits and loss (as `.float()` before F.cross_entropy), fp64 for fp64 inputs
        dtype = torch.promote_types(torch.promote_types(hidden.dtype, weight.dtype), torch.float32)
        rows, matrix = hidden.to(dtype), weight.to(dtype)
        scored = targets != IGNORED  # (rows,)
        count = scored.sum()
        total = torch.zeros((), dtype=dtype, device=hidden.device)
        grad_hidden = torch.empty_like(rows) if want_hidden else None
        grad_weight = torch.zeros_like(matrix) if want_weight else None
        for start in range(0, len(rows), chunk_rows):
            part = slice(start, start + chunk_rows)
            h, keep = rows[part], scored[part]  # (chunk, n_embd), (chunk,)
            t = targets[part].clamp(min=0)[:, None]  # ignored rows read token 0, weighted 0
            # Under autocast (bf16 on a CPU that has it) the matmuls run in its dtype, as
            # the plain projection's would; the softmax and the loss always in `dtype`.
            logits = (h @ matrix.T).to(dtype)  # (chunk, vocab)
            picked = logits.gather(1, t)  # (chunk, 1): the target's logit
            # log-softmax by hand, so that one exp serves the loss and the gradient:
            # log Σ exp(l) = max + log Σ exp(l - max), and exp(l - max) / Σ is the softmax.
            top = logits.amax(dim=-1, keepdim=True)  # (chunk, 1)
            probs = logits.sub_(top).exp_()  # unnormalised, over the logits
            sums = probs.sum(dim=-1, keepdim=True)  # (chunk, 1)
            total += ((top + sums.log() - picked).squeeze(1) * keep).sum()
            if not (want_hidden or want_weight):
                continue
            # d loss / d logits = (softmax - onehot(target)) / count, written over the logits.
            grad_logits = probs.div_(sums)
            grad_logits.scatter_add_(1, t, torch.full_like(t, -1, dtype=logits.dtype))
            grad_logits.mul_((keep.to(dtype) / count)[:, None])
            if want_hidden:
                grad_hidden[part] = grad_logits @ matrix
            if want_weight:
                grad_weight += grad_logits.T @ h
        ctx.hidden_dtype, ctx.weight_dtype = hidden.dtype, weight.dtype
        ctx.save_for_backward(
            *(g if g is not None else torch.empty(0) for g in (grad_hidden, grad_weight))
        )
        return total / count

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        want_hidden, want_weight = ctx.needs_input_grad[:2]
        return (
            (grad_hidden * grad_loss).to(ctx.hidden_dtype) if want_hidden else None,
            (grad_weight * grad_loss).to(ctx.weight_dtype) if want_weight else None,
            None,
            None,
            None,
        )
