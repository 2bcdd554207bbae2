"""The Transformer, small enough to read in one sitting.

One config builds both kinds of model this course trains:

    encoder (BERT)   causal=False, norm_position="post", gelu="exact", type_vocab_size=2
    decoder (GPT-2)  causal=True,  norm_position="pre",  gelu="tanh",  type_vocab_size=0

Pieces, in reading order: `TransformerConfig`; masks; `dropout`; attention as two
interchangeable functions (`attention_explicit`, which can hand back the attention
weights, and `attention_fast`, through `F.scaled_dot_product_attention`);
`MultiHeadAttention`, which uses them; `KVCache`, the keys and values a decoder keeps for that attention while it
generates; `FeedForward`; `Block`; and `Transformer`, the body: embeddings + blocks,
input ids in, hidden states out. The heads that turn hidden states into predictions, and
the models made of body + head (`CausalLM`, `MaskedLM`, `SequenceClassifier`), are in
`sslm_lab.heads`.

Masks follow the `transformers` convention: `attention_mask` has shape (batch, seq) with
1 for a real token and 0 for padding. Padding hides keys; the causal mask hides the future.

Reference: Vaswani et al. 2017, "Attention Is All You Need" (attention, post-LN);
Radford et al. 2019 (GPT-2: pre-LN, tanh GELU, tied head); Devlin et al. 2019 (BERT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import ArgumentError, check_bool, check_choice, check_int, check_real
from sslm_lab.masking import causal_mask

NormPosition = Literal["pre", "post"]
GeluKind = Literal["exact", "tanh"]
AttentionPath = Literal["fast", "explicit"]


@dataclass
class TransformerConfig:
    """Every size and switch of a Transformer. The defaults give a small GPT-2-style decoder."""

    vocab_size: int = 256
    block_size: int = 128  # context length: the most positions the model has embeddings for
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    intermediate_size: int | None = None  # feed-forward width; None means 4 * n_embd
    dropout: float = 0.0  # on embeddings and on each residual branch
    attention_dropout: float = 0.0  # on the attention weights
    causal: bool = True  # True: decoder (sees only the past); False: encoder (sees both ways)
    norm_position: NormPosition = "pre"  # "pre": GPT-2; "post": BERT and the 2017 paper
    gelu: GeluKind = "tanh"  # "tanh": GPT-2's approximation; "exact": BERT's erf form
    type_vocab_size: int = 0  # token-type (segment) embeddings; 0 means none
    tie_weights: bool = True  # LM/MLM output layer shares the token embedding matrix
    layer_norm_eps: float = 1e-5
    bias: bool = True  # biases in the linear layers
    attention_path: AttentionPath = "fast"  # which attention function the layers use

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(name, getattr(self, name), low=1)
        check_int("intermediate_size", self.intermediate_size, low=1, allow_none=True)
        check_int("type_vocab_size", self.type_vocab_size, low=0)
        if self.intermediate_size is None:  # documented: None means 4 * n_embd
            self.intermediate_size = 4 * self.n_embd
        if self.n_embd % self.n_head != 0:
            raise ArgumentError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: each head gets "
                f"n_embd / n_head dimensions, so pick n_head from the divisors of {self.n_embd}"
            )
        for name in ("dropout", "attention_dropout"):
            check_real(name, getattr(self, name), low=0, high=1, high_open=True)
        check_real("layer_norm_eps", self.layer_norm_eps, low=0, low_open=True)
        check_choice("norm_position", self.norm_position, ("pre", "post"))
        check_choice("gelu", self.gelu, ("exact", "tanh"))
        check_choice("attention_path", self.attention_path, ("fast", "explicit"))
        for name in ("causal", "tie_weights", "bias"):
            check_bool(name, getattr(self, name))

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


# ---------------------------------------------------------------------------- masks


def validate_attention_mask(attention_mask: Tensor, batch: int, seq: int) -> Tensor:
    """Check a padding mask and return it as bool, shape (batch, seq), True = real token.

    Accepts bool, or integer/float holding only 0 and 1 (the `transformers` convention).
    A bool mask of the right shape is returned as is, so calling this again is free (and a
    bool mask skips the 0/1 value check, which costs a synchronisation on a GPU).
    """
    if not isinstance(attention_mask, Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor; got {type(attention_mask)}")
    if tuple(attention_mask.shape) != (batch, seq):
        raise ValueError(
            f"attention_mask must have shape (batch, seq) = {(batch, seq)}, matching the input; "
            f"got {tuple(attention_mask.shape)}"
        )
    if attention_mask.dtype == torch.bool:
        return attention_mask
    if attention_mask.is_complex():
        raise TypeError(
            f"attention_mask must be bool, integer or float (1 = real token, 0 = padding); "
            f"got dtype {attention_mask.dtype}"
        )
    is_binary = (attention_mask == 0) | (attention_mask == 1)
    if not bool(is_binary.all()):
        bad = attention_mask[~is_binary].unique()[:5].tolist()
        raise ValueError(
            f"attention_mask of dtype {attention_mask.dtype} must hold only 0 (padding) and "
            f"1 (real token); found {bad}. An additive mask (0 / -inf) is not accepted here."
        )
    return attention_mask == 1


def allowed_keys(
    key_mask: Tensor | None, causal: bool, seq: int, device: torch.device, past: int = 0
) -> Tensor | None:
    """Combine padding and causal masks: bool (batch or 1, 1, seq, past + seq), True = may attend.

    `past` counts keys cached before these `seq` queries (see `KVCache`): query i then sits at
    position past + i and, under the causal mask, sees keys 0 .. past + i. key_mask, if given,
    covers all past + seq keys. Returns None when nothing is masked, so the caller can take
    the fastest route.
    """
    if key_mask is None and not causal:
        return None
    allowed = torch.ones(1, 1, seq, past + seq, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed & causal_mask(past + seq, device)[past:]  # the last seq rows
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]  # (batch, 1, 1, keys): hide padded keys
    return allowed


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
    Measured on the 2-core VM, forward and backward over the weights of one attention layer
    of a small BERT (2.1 M elements): 10.3 ms this way, 14.3 ms with one uniform number per
    element and more with `F.dropout`'s `bernoulli_`. Elsewhere: `F.dropout`.
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


class Dropout(nn.Module):
    """`dropout` as a layer: active in training mode only (`model.train()` / `.eval()`)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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

    0.5 (1 + tanh z) = sigmoid(2z), and on a CPU PyTorch's sigmoid is about 3x faster than
    its tanh, so float32 CPU tensors take that form forward: measured on the 2-core VM over
    4096 x 1024 elements, 5.9 ms instead of 11.7 ms for `F.gelu(x, approximate="tanh")`.
    Its error against float64 is of the same size (4.6e-7 vs 4.1e-7 at most over 4 M normal
    draws), and the gradient is PyTorch's own. Other devices and dtypes: `F.gelu`.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _SigmoidFormGelu.apply(x)
    return F.gelu(x, approximate="tanh")


class GELU(nn.Module):
    """GELU as a layer: BERT's exact erf form ("exact") or GPT-2's tanh one ("tanh")."""

    def __init__(self, kind: GeluKind) -> None:
        super().__init__()
        check_choice("gelu", kind, ("exact", "tanh"))
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        return gelu_tanh(x) if self.kind == "tanh" else F.gelu(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


# ---------------------------------------------------------------------------- attention


def attention_explicit(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    allowed: Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ / √d_k) V written out, returning (output, weights).

    query, key, value: (batch, heads, seq, head_dim). allowed: bool, broadcastable to
    (batch, heads, seq, seq), True = may attend. Returns output (batch, heads, seq, head_dim)
    and the weights (batch, heads, seq, seq) before dropout, each row summing to 1.

    Masked scores are set to the dtype's most negative number rather than -inf, so a query
    that may see no key at all (left padding under a causal mask) gets finite, uniform
    weights instead of NaN, as in `transformers`; that position is padding and is ignored.
    """
    head_dim = query.size(-1)
    # Dividing by √d_k keeps the scores' variance near 1, so softmax does not saturate.
    if allowed is None or not bias_masking_applies(query, allowed):
        scores = query @ key.transpose(-2, -1) / math.sqrt(head_dim)  # (batch, heads, seq, seq)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    else:
        scores = masked_scores(query, key, allowed)
    weights = scores.softmax(dim=-1)  # (batch, heads, seq, seq)
    dropped = dropout(weights, dropout_p)
    return dropped @ value, weights


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
    """`(Q Kᵀ / √d_k).masked_fill(~allowed, lowest)` as one batched product, for speed.

    `torch.baddbmm(bias, Q, Kᵀ, alpha=1/√d_k)` computes bias + Q Kᵀ / √d_k in the matrix
    product itself, so a bias that is 0 where allowed and the dtype's most negative number
    where not gives the same table without the passes of dividing and masking, and with no
    mask to apply to the gradient. lowest + score rounds back to lowest, so the masked
    entries agree exactly, and the others up to rounding (exactly where √d_k is a power of
    two, as for 64-wide heads). Measured on the 2-core VM, forward and backward of one
    GPT-2 layer's attention with dropout (batch 32, 4 heads, 128 tokens): 36-38 ms instead
    of 44-48 ms.
    Not for float16, whose lowest number plus a negative score overflows to -inf; see
    `bias_masking_applies` for when `attention_explicit` uses it.
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


def attention_fast(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    allowed: Tensor | None = None,
    dropout_p: float = 0.0,
    causal_only: bool = False,
) -> Tensor:
    """The same computation through `F.scaled_dot_product_attention` (fused kernels).

    Shapes as in `attention_explicit`; returns output only. `causal_only=True` with
    `allowed=None` lets PyTorch build the causal mask itself (and use flash attention on GPU).
    Masked keys get the dtype's most negative number, matching `attention_explicit` exactly.
    """
    if allowed is None:
        return F.scaled_dot_product_attention(
            query, key, value, dropout_p=dropout_p, is_causal=causal_only
        )
    additive = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device)
    additive = additive.masked_fill(~allowed, torch.finfo(query.dtype).min)
    return F.scaled_dot_product_attention(
        query, key, value, attn_mask=additive, dropout_p=dropout_p
    )


class MultiHeadAttention(nn.Module):
    """Self-attention with `n_head` heads: project, split into heads, attend, merge, project.

    Input x: (batch, seq, n_embd); attention_mask: (batch, seq), 1 = real token, 0 = padding.
    `forward` returns (output (batch, seq, n_embd), weights or None); weights have shape
    (batch, heads, seq, seq) and are computed only when `need_weights=True`, which switches
    to the explicit path for that call. Otherwise `config.attention_path` decides.
    With a `cache` (a `LayerCache`) the new keys and values are appended to it and the
    queries attend over every cached position as well as the new ones. With `keep`, a 1-D
    index into the flattened (batch * seq) positions, only those rows go through the output
    projection: the output is then (len(keep), n_embd).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.causal = config.causal
        self.attention_dropout = config.attention_dropout
        self.path: AttentionPath = config.attention_path
        self.query = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.key = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.value = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.output = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.output_dropout = Dropout(config.dropout)

    def split_heads(self, x: Tensor) -> Tensor:
        """(batch, seq, n_embd) -> (batch, heads, seq, head_dim)."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.n_head, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(batch, heads, seq, head_dim) -> (batch, seq, n_embd)."""
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.n_head * self.head_dim)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        need_weights: bool = False,
        cache: LayerCache | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        batch, seq, _ = x.shape
        past = 0 if cache is None else cache.length
        key_mask = None
        if attention_mask is not None:
            key_mask = validate_attention_mask(attention_mask, batch, past + seq)
        query = self.split_heads(self.query(x))  # (batch, heads, seq, head_dim)
        key = self.split_heads(self.key(x))  # (batch, heads, seq, head_dim)
        value = self.split_heads(self.value(x))  # (batch, heads, seq, head_dim)
        if cache is not None:
            key, value = cache.extend(key, value)  # (batch, heads, past + seq, head_dim)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # On a CPU, PyTorch's bf16 attention (its backward above all) is slower than the
            # fp32 one; the projections around it keep autocast's bf16 matmuls. Measured on a
            # Zen 4 with AVX-512 BF16: 29.7 instead of 35 ms per baby-GPT step.
            with torch.autocast("cpu", enabled=False):
                attended, weights = self.attend(
                    query.float(), key.float(), value.float(), key_mask, need_weights, past
                )
        else:
            attended, weights = self.attend(query, key, value, key_mask, need_weights, past)
        merged = self.merge_heads(attended)  # (batch, seq, n_embd)
        if keep is not None:
            merged = merged.flatten(0, 1).index_select(0, keep)  # (kept, n_embd)
        return self.output_dropout(self.output(merged)), weights

    def attend(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_mask: Tensor | None,
        need_weights: bool,
        past: int,
    ) -> tuple[Tensor, Tensor | None]:
        """Heads in, heads out: (batch, heads, seq, head_dim) queries over (batch, heads,
        past + seq, head_dim) keys and values, on the path `forward` documents."""
        seq = query.size(2)
        dropout_p = self.attention_dropout if self.training else 0.0
        # PyTorch's CPU attention has no fused kernel with dropout: it computes the weights
        # as the explicit path does, plus passes of its own and the slower dropout mask.
        cpu_dropout = dropout_p > 0 and query.device.type == "cpu"
        if need_weights or self.path == "explicit" or cpu_dropout:
            allowed = allowed_keys(key_mask, self.causal, seq, query.device, past)
            attended, weights = attention_explicit(query, key, value, allowed, dropout_p)
            return attended, (weights if need_weights else None)
        if key_mask is None and past == 0:
            return attention_fast(query, key, value, None, dropout_p, self.causal), None
        allowed = allowed_keys(key_mask, self.causal, seq, query.device, past)
        return attention_fast(query, key, value, allowed, dropout_p), None


# ---------------------------------------------------------------------------- the KV cache


class LayerCache:
    """One layer's keys and values for the positions a decoder has already read."""

    def __init__(self) -> None:
        self.key: Tensor | None = None  # (batch, heads, cached, head_dim)
        self.value: Tensor | None = None  # (batch, heads, cached, head_dim)

    @property
    def length(self) -> int:
        return 0 if self.key is None else self.key.size(2)

    def extend(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new positions' keys and values; return all of them, cached ones first."""
        if self.key is not None and self.value is not None:
            key = torch.cat([self.key, key], dim=2)
            value = torch.cat([self.value, value], dim=2)
        self.key, self.value = key, value
        return key, value


class KVCache:
    """The keys and values of every layer for the tokens a decoder has already read.

    Under a causal mask a token's key and value never change once computed: later tokens
    cannot influence earlier ones. So while generating, each step only has to run the one
    new token through the model and attend over the stored keys and values, instead of
    recomputing the whole sequence. Pass one cache to successive calls of `CausalLM`:

        cache = KVCache(model.config.n_layer)
        logits = model(prompt_ids, cache=cache)        # fills the cache
        logits = model(next_ids[:, None], cache=cache)  # one new position, sees the prompt

    `length` is the number of positions cached, which is also the position of the next
    token. Positions are absolute, so cache + new tokens must fit in `block_size`.
    """

    def __init__(self, n_layer: int) -> None:
        self.layers = [LayerCache() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length


# ---------------------------------------------------------------------------- blocks


class FeedForward(nn.Module):
    """Position-wise MLP: n_embd -> intermediate_size -> GELU -> n_embd. (batch, seq, n_embd)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        assert config.intermediate_size is not None  # set by TransformerConfig.__post_init__
        self.up = nn.Linear(config.n_embd, config.intermediate_size, bias=config.bias)
        self.activation = GELU(config.gelu)
        self.down = nn.Linear(config.intermediate_size, config.n_embd, bias=config.bias)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down(self.activation(self.up(x))))


class Block(nn.Module):
    """One Transformer layer: attention then feed-forward, each with a residual connection.

    pre-LN  (GPT-2): x = x + attention(norm(x));  x = x + feed_forward(norm(x))
    post-LN (BERT):  x = norm(x + attention(x));  x = norm(x + feed_forward(x))
    Pre-LN keeps an untouched residual path from input to output, which is why it trains
    stably without warmup tricks; post-LN is what BERT and the 2017 paper used.

    With `keep` (a 1-D index into the flattened batch * seq positions) every position still
    serves as a key and value, but only the kept ones are computed past the attention:
    output projection, residuals, norms and feed-forward are all position-wise, so the
    block returns (len(keep), n_embd), exactly those rows of its full output.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_position = config.norm_position
        self.attention = MultiHeadAttention(config)
        self.attention_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        need_weights: bool = False,
        cache: LayerCache | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x: (batch, seq, n_embd) -> ((batch, seq, n_embd), weights or None)."""
        # the residual stream at the positions this block outputs
        residual = x if keep is None else x.flatten(0, 1).index_select(0, keep)
        if self.norm_position == "pre":
            normed = self.attention_norm(x)
            attended, weights = self.attention(normed, attention_mask, need_weights, cache, keep)
            x = residual + attended
            x = x + self.feed_forward(self.feed_forward_norm(x))
        else:
            attended, weights = self.attention(x, attention_mask, need_weights, cache, keep)
            x = self.attention_norm(residual + attended)
            x = self.feed_forward_norm(x + self.feed_forward(x))
        return x, weights


# ---------------------------------------------------------------------------- models


class TransformerModel(nn.Module):
    """What every sslm_lab Transformer model shares: its config, size and cost per token.

    A model with a head (`sslm_lab.heads`) keeps its body in `self.transformer` and its head
    in `self.head`; `hidden_states` runs the body alone, so probes, classifiers, LoRA and
    adapters reach the hidden states without hooks.
    """

    config: TransformerConfig
    # True for a model whose head projects onto the vocabulary (a language model): with
    # tie_weights that projection is the token embedding matrix, used as a real matmul.
    writes_vocabulary: ClassVar[bool] = False

    def hidden_states(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        """The body's last hidden states (batch, seq, n_embd), before any head; with a bool
        `positions` mask, those positions' only, (selected, n_embd) (see `Transformer.run`)."""
        return self.transformer(
            input_ids, attention_mask, token_type_ids, cache=cache, positions=positions
        )

    def embedding_tables(self) -> list[nn.Embedding]:
        """The lookup tables (token, position, token type): parameters that cost no FLOPs."""
        return self.transformer.embedding_tables()

    def output_matmul_is_tied(self) -> bool:
        """True when an output layer multiplies by the (tied) token embedding matrix."""
        return self.writes_vocabulary and self.config.tie_weights

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters, tied ones counted once.

        exclude_embeddings=True leaves out the embedding lookup tables (token, position,
        token type), the convention of Kaplan et al. 2020 for scaling laws. A tied output
        layer shares the token table, so it is left out with it.
        """
        total = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            total -= sum(table.weight.numel() for table in self.embedding_tables())
        return total

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward), the PaLM estimate (Chowdhery et al.
        2022, appendix B):

            6 · N  +  12 · n_layer · n_embd · seq_len

        N counts every weight used in a matrix multiply for each token: the non-embedding
        parameters, plus the vocab × n_embd output matrix when it is tied to the token
        embedding (a lookup is free, but the output layer is a real matmul; as nanoGPT does).
        6 = 2 FLOPs per multiply-add × (1 forward + 2 backward). The second term is the
        attention scores and weighted sum (Q·Kᵀ and A·V), counted over the full seq × seq
        square even under a causal mask, as PaLM does. seq_len defaults to block_size.
        """
        config = self.config
        seq_len = config.block_size if seq_len is None else seq_len
        matmul_params = self.num_parameters(exclude_embeddings=True)
        if self.output_matmul_is_tied():
            matmul_params += config.vocab_size * config.n_embd
        return float(6 * matmul_params + 12 * config.n_layer * config.n_embd * seq_len)

    def init_weights(self) -> None:
        """GPT-2 / BERT initialisation: linear and embedding weights ~ N(0, 0.02), biases 0,
        LayerNorm 1 and 0. For pre-LN (GPT-2) the projections that write into the residual
        stream get std 0.02 / √(2·n_layer), so the residual's variance does not grow with depth.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.config.norm_position == "pre":
            residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
            for name, parameter in self.named_parameters():
                if name.endswith(("attention.output.weight", "feed_forward.down.weight")):
                    nn.init.normal_(parameter, mean=0.0, std=residual_std)


class Transformer(TransformerModel):
    """Embeddings and the stack of blocks: input_ids (batch, seq) -> hidden (batch, seq, n_embd).

    Post-LN models (BERT) normalise the embeddings; pre-LN models (GPT-2) instead normalise
    the output of the last block (`final_norm`), since their residual stream is never normed.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.token_type_embedding = (
            nn.Embedding(config.type_vocab_size, config.n_embd) if config.type_vocab_size else None
        )
        eps = config.layer_norm_eps
        post = config.norm_position == "post"
        self.embedding_norm = nn.LayerNorm(config.n_embd, eps=eps) if post else None
        self.dropout = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.final_norm = None if post else nn.LayerNorm(config.n_embd, eps=eps)
        self.init_weights()

    def embedding_tables(self) -> list[nn.Embedding]:
        tables = [self.token_embedding, self.position_embedding]
        if self.token_type_embedding is not None:
            tables.append(self.token_type_embedding)
        return tables

    def check_inputs(
        self, input_ids: Tensor, token_type_ids: Tensor | None, cache: KVCache | None = None
    ) -> None:
        """Fail early, naming what was expected, on inputs the model cannot take."""
        if input_ids.ndim != 2 or input_ids.is_floating_point() or input_ids.dtype == torch.bool:
            raise ValueError(
                f"input_ids must be an integer tensor of shape (batch, seq); "
                f"got shape {tuple(input_ids.shape)}, dtype {input_ids.dtype}"
            )
        seq = input_ids.size(1)
        if cache is not None:
            self.check_cache(cache, seq)
        if seq > self.config.block_size:
            raise ValueError(
                f"sequence length {seq} is longer than the context, block_size="
                f"{self.config.block_size}: crop the input to the last {self.config.block_size} "
                f"tokens or build the model with a larger block_size"
            )
        if token_type_ids is not None:
            if self.token_type_embedding is None:
                raise ValueError(
                    "token_type_ids were given but the model has no token-type embeddings "
                    "(type_vocab_size=0)"
                )
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}; "
                    f"got {tuple(token_type_ids.shape)}"
                )

    def check_cache(self, cache: KVCache, seq: int) -> None:
        """A cache belongs to a decoder with as many layers, and its positions must fit."""
        if not self.config.causal:
            raise ValueError(
                "a KVCache needs a causal model: in an encoder (causal=False) every token sees "
                "the later ones too, so earlier keys and values change as text is added"
            )
        if len(cache.layers) != self.config.n_layer:
            raise ValueError(
                f"the KVCache has {len(cache.layers)} layers but the model has "
                f"n_layer={self.config.n_layer}; build it with KVCache(model.config.n_layer)"
            )
        if cache.length + seq > self.config.block_size:
            raise ValueError(
                f"the KVCache holds {cache.length} positions and {seq} new tokens were given: "
                f"{cache.length + seq} is more than block_size={self.config.block_size}; "
                "start a new cache on the last block_size tokens (or run without a cache)"
            )

    def run(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        need_weights: bool = False,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """Hidden states (batch, seq, n_embd) and, if need_weights, one attention map per layer
        (else an empty list), each (batch, heads, seq, past + seq).

        With a `cache` holding `past` positions, input_ids are the *next* tokens: they get
        positions past .. past + seq - 1, attend over the cached keys too, and are added to
        the cache. attention_mask, if given, then covers all past + seq positions.

        With `positions`, a bool (batch, seq) mask, the hidden states are those of the True
        positions only, (number of True, n_embd) in row-major order (that of
        `labels[positions]`). The last block then computes no other position past its
        attention: what a masked-LM loss reads, at a fraction of that block's cost.
        """
        self.check_inputs(input_ids, token_type_ids, cache)
        batch, seq = input_ids.shape
        keep = None
        if positions is not None:
            if positions.dtype != torch.bool or positions.shape != input_ids.shape:
                raise ValueError(
                    f"positions must be a bool tensor shaped like input_ids "
                    f"{tuple(input_ids.shape)}; got {positions.dtype} {tuple(positions.shape)}"
                )
            # Found before the body runs, so a GPU waits at this sync only for the masking.
            keep = positions.flatten().nonzero().squeeze(1)  # (kept,)
        past = 0 if cache is None else cache.length
        if attention_mask is not None:
            # Validate and convert once here, so every layer receives a ready bool mask.
            attention_mask = validate_attention_mask(attention_mask, batch, past + seq)
        positions = torch.arange(past, past + seq, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        if self.token_type_embedding is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)  # BERT's default: all segment A
            x = x + self.token_type_embedding(token_type_ids)
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = self.dropout(x)  # (batch, seq, n_embd)
        maps = []
        layer_caches = [None] * len(self.blocks) if cache is None else cache.layers
        last = len(self.blocks) - 1
        for index, (block, layer_cache) in enumerate(zip(self.blocks, layer_caches, strict=True)):
            block_keep = keep if index == last else None
            x, weights = block(x, attention_mask, need_weights, layer_cache, block_keep)
            if weights is not None:
                maps.append(weights)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, maps

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        """input_ids (batch, seq) -> last hidden states (batch, seq, n_embd), or at
        `positions` only, (selected, n_embd) (see `run`)."""
        return self.run(
            input_ids, attention_mask, token_type_ids, cache=cache, positions=positions
        )[0]

    def hidden_states(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        """The body has no head: its hidden states are its output."""
        return self(input_ids, attention_mask, token_type_ids, cache=cache, positions=positions)


def attention_maps(
    model: TransformerModel,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    token_type_ids: Tensor | None = None,
) -> list[Tensor]:
    """One attention map per layer, each (batch, heads, seq, seq), for any sslm_lab model.

    Runs the explicit path for this call only; the model's default path is untouched.
    """
    transformer = model if isinstance(model, Transformer) else model.transformer
    with torch.no_grad():
        return transformer.run(input_ids, attention_mask, token_type_ids, need_weights=True)[1]
