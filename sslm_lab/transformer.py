"""The Transformer, small enough to read in one sitting.

One config builds both kinds of model this course trains:

    encoder (BERT)   causal=False, norm_position="post", gelu="exact", type_vocab_size=2
    decoder (GPT-2)  causal=True,  norm_position="pre",  gelu="tanh",  type_vocab_size=0

In reading order:

    TransformerConfig     every size and switch
    attention_explicit    softmax(Q Kᵀ / √d_k) V written out, returning the weights too
    attention_fast        the same through `F.scaled_dot_product_attention` (fused kernels)
    MultiHeadAttention    project, split into heads, attend, merge, project
    LayerCache, KVCache   the keys and values a decoder keeps while it generates
    FeedForward           the position-wise MLP (its `GELU` and `Dropout` layers: kernels)
    Block                 attention then feed-forward, each around a residual connection
    TransformerModel      what every model shares: its body, size, FLOPs, initialisation
    Transformer           the body: embeddings + blocks, input ids in, hidden states out
    attention_maps        every layer's attention weights, for pictures
    check_inputs          what the body refuses, and why (last: it is not the idea), with
                          check_cache

The heads that turn hidden states into predictions, and the models made of body + head
(`CausalLM`, `MaskedLM`, the classifiers), are in `sslm_lab.heads`; the attention masks
in `sslm_lab.masking`; the CPU speed tricks some layers call in `sslm_lab.kernels`.

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

from sslm_lab import kernels
from sslm_lab.checks import ArgumentError, check_bool, check_choice, check_int, check_real
from sslm_lab.kernels import GELU, Dropout
from sslm_lab.masking import allowed_keys, validate_attention_mask

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
    if allowed is None or not kernels.bias_masking_applies(query, allowed):
        # Dividing by √d_k keeps the scores' variance near 1, so softmax does not saturate.
        scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))  # (b, h, seq, seq)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    else:
        scores = kernels.masked_scores(query, key, allowed)  # the same table, one product (CPU)
    weights = scores.softmax(dim=-1)  # (batch, heads, seq, seq)
    return kernels.dropout(weights, dropout_p) @ value, weights


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
    projection: the output is then (len(keep), n_embd) (see `Block`).
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
        attended, weights = kernels.outside_cpu_autocast(
            self.attend, query, key, value, key_mask, need_weights, past
        )
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
    block returns (len(keep), n_embd), exactly those rows of its full output. A masked-LM
    loss reads 15 % of the positions; the body's last block computes only those.
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
    """What every sslm_lab Transformer model shares: its body, its size and cost per token.

    A model with a head (`sslm_lab.heads`) keeps its body in `self.transformer` and its head
    in `self.head`. `hidden_states` runs the body alone, on any model and on the body
    itself, so probes, classifiers, LoRA and adapters reach the hidden states without hooks.
    """

    config: TransformerConfig
    # True for a model whose head projects onto the vocabulary (a language model): with
    # tie_weights that projection is the token embedding matrix, used as a real matmul.
    writes_vocabulary: ClassVar[bool] = False
    # The share of positions the head runs at in training: 1 for a head on every position;
    # a masked LM gathers the masked positions first (`heads.MaskedLM`).
    head_share: ClassVar[float] = 1.0

    @property
    def body(self) -> Transformer:
        """The embeddings and blocks: everything but the head."""
        return self.transformer

    def hidden_states(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        """The body's last hidden states (batch, seq, n_embd), before any head; with a bool
        `positions` mask, those positions' only (see `Transformer.forward`)."""
        return self.body(
            input_ids, attention_mask, token_type_ids, cache=cache, positions=positions
        )

    def embedding_tables(self) -> list[nn.Embedding]:
        """The lookup tables (token, position, token type): parameters that cost no FLOPs."""
        body = self.body
        tables = [body.token_embedding, body.position_embedding, body.token_type_embedding]
        return [table for table in tables if table is not None]

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

    def flops_per_token(
        self,
        seq_len: int | None = None,
        head_share: float | None = None,
        output_layer: bool | None = None,
    ) -> float:
        """Training FLOPs per token (forward + backward), the PaLM estimate (Chowdhery et al.
        2022, appendix B), with the head counted where it runs:

            6 · N_body  +  12 · n_layer · n_embd · seq_len  +  6 · N_head · head_share

        N_body counts the body's weights used in a matrix multiply for each token: its
        non-embedding parameters (a lookup is free). N_head counts the head's; a tied
        vocab × n_embd output matrix is a lookup table's weight but a real matmul there, so
        it is added (as nanoGPT counts it) when `output_layer` is True (None: when the
        model's head writes the vocabulary through it). 6 = 2 FLOPs per multiply-add ×
        (1 forward + 2 backward). The middle term is the attention scores and weighted sum
        (Q·Kᵀ and A·V), over the full seq × seq square even under a causal mask, as PaLM
        does. `head_share` is the share of positions the head runs at (None: the model's
        `head_share`, e.g. the mask rate for a masked LM). seq_len defaults to block_size.
        """
        config = self.config
        seq_len = config.block_size if seq_len is None else seq_len
        head_share = self.head_share if head_share is None else head_share
        check_real("head_share", head_share, low=0, high=1)
        body = self.body.num_parameters(exclude_embeddings=True)
        head = self.num_parameters(exclude_embeddings=True) - body
        if output_layer is None:  # a language model's tied output layer
            output_layer = self.writes_vocabulary and config.tie_weights
        if output_layer:
            head += config.vocab_size * config.n_embd
        attention = 12 * config.n_layer * config.n_embd * seq_len
        return float(6 * body + attention + 6 * head * head_share)

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

    @property
    def body(self) -> Transformer:
        return self

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        positions: Tensor | None = None,
        conditioning: Tensor | None = None,
        attention_maps: list[Tensor] | None = None,
    ) -> Tensor:
        """input_ids (batch, seq) -> the last hidden states (batch, seq, n_embd).

        cache: with a `KVCache` holding `past` positions, input_ids are the *next* tokens:
            they get positions past .. past + seq - 1, attend over the cached keys too, and
            are added to the cache. attention_mask then covers all past + seq positions.
        positions: a bool (batch, seq) mask; the hidden states are then those of the True
            positions only, (number of True, n_embd) in row-major order (that of
            `labels[positions]`), and the last block computes no other position past its
            attention: what a masked-LM loss reads, at a fraction of that block's cost.
        conditioning: (batch, 1 or seq, n_embd), added to the input embeddings at every
            position (the sentence VAE's code z reaches its decoder this way).
        attention_maps: a list that receives one attention map per layer, each (batch,
            heads, seq, past + seq); the explicit attention path runs for this call.
        """
        check_inputs(self, input_ids, token_type_ids, cache, positions, conditioning)
        batch, seq = input_ids.shape
        past = 0 if cache is None else cache.length
        if attention_mask is not None:
            # Validate and convert once here, so every layer receives a ready bool mask.
            attention_mask = validate_attention_mask(attention_mask, batch, past + seq)
        # Found before the body runs, so a GPU waits at this sync only for the masking.
        keep = None if positions is None else positions.flatten().nonzero().squeeze(1)
        position_ids = torch.arange(past, past + seq, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(position_ids)
        if self.token_type_embedding is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)  # BERT's default: all segment A
            x = x + self.token_type_embedding(token_type_ids)
        if conditioning is not None:
            x = x + conditioning
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = self.dropout(x)  # (batch, seq, n_embd)
        need_weights = attention_maps is not None
        layer_caches = [None] * len(self.blocks) if cache is None else cache.layers
        last = len(self.blocks) - 1
        for index, (block, layer_cache) in enumerate(zip(self.blocks, layer_caches, strict=True)):
            block_keep = keep if index == last else None
            x, weights = block(x, attention_mask, need_weights, layer_cache, block_keep)
            if need_weights:
                attention_maps.append(weights)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x


def attention_maps(
    model: TransformerModel,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    token_type_ids: Tensor | None = None,
) -> list[Tensor]:
    """One attention map per layer, each (batch, heads, seq, seq), for any sslm_lab model.

    Runs the explicit path for this call only; the model's default path is untouched.
    """
    maps: list[Tensor] = []
    with torch.no_grad():
        model.body(input_ids, attention_mask, token_type_ids, attention_maps=maps)
    return maps


# ---------------------------------------------------------------------------- input checks


def check_inputs(
    body: Transformer,
    input_ids: Tensor,
    token_type_ids: Tensor | None = None,
    cache: KVCache | None = None,
    positions: Tensor | None = None,
    conditioning: Tensor | None = None,
) -> None:
    """Fail early, naming what was expected, on inputs `body` cannot take."""
    config, shape = body.config, tuple(input_ids.shape)
    if input_ids.ndim != 2 or input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        raise ValueError(
            "input_ids must be an integer tensor of shape (batch, seq); "
            f"got shape {shape}, dtype {input_ids.dtype}"
        )
    seq = shape[1]
    if cache is not None:
        check_cache(config, cache, seq)
    if seq > config.block_size:
        raise ValueError(
            f"sequence length {seq} is longer than the context, block_size={config.block_size}: "
            "crop the input to the last block_size tokens or build a larger block_size"
        )
    if token_type_ids is not None and body.token_type_embedding is None:
        raise ValueError("token_type_ids were given but the model has none (type_vocab_size=0)")
    if token_type_ids is not None and token_type_ids.shape != input_ids.shape:
        raise ValueError(f"token_type_ids {tuple(token_type_ids.shape)} must be shaped {shape}")
    if positions is not None and (positions.dtype != torch.bool or positions.shape != shape):
        raise ValueError(
            f"positions must be a bool tensor shaped like input_ids {shape}; "
            f"got {positions.dtype} {tuple(positions.shape)}"
        )
    wanted = (shape[0], (1, seq), config.n_embd)
    if conditioning is not None and (
        conditioning.dim() != 3 or conditioning.shape[1] not in wanted[1]
        or (conditioning.shape[0], conditioning.shape[2]) != (wanted[0], wanted[2])
    ):  # fmt: skip
        raise ValueError(
            f"conditioning must be (batch, 1 or seq, n_embd) = ({shape[0]}, 1 or {seq}, "
            f"{config.n_embd}); got {tuple(conditioning.shape)}"
        )


def check_cache(config: TransformerConfig, cache: KVCache, seq: int) -> None:
    """A cache belongs to a decoder with as many layers, and its positions must fit."""
    if not config.causal:
        raise ValueError(
            "a KVCache needs a causal model: in an encoder every token sees the later ones "
            "too, so earlier keys and values change as text is added"
        )
    if len(cache.layers) != config.n_layer:
        raise ValueError(
            f"the KVCache has {len(cache.layers)} layers but the model has n_layer="
            f"{config.n_layer}; build it with KVCache(model.config.n_layer)"
        )
    if cache.length + seq > config.block_size:
        raise ValueError(
            f"the KVCache holds {cache.length} positions and {seq} new tokens were given, more "
            f"than block_size={config.block_size}: start a new cache on the last block_size tokens"
        )
