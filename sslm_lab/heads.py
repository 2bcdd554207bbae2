"""Heads on the Transformer body, and the models they make.

The body (`sslm_lab.transformer.Transformer`) turns token ids into hidden states
(batch, seq, n_embd). A head turns hidden states into what an objective scores, and
takes nothing else, so any head fits on any body and a fine-tuning method (a probe,
LoRA, adapters) can work on the hidden states directly:

    vocab_projection  hidden -> vocabulary logits (the GPT-2 LM head), usually the token
                      embedding matrix itself ("tied": one matrix reads tokens in and
                      writes them out)
    MaskedLMHead      hidden -> dense, GELU, LayerNorm -> vocabulary logits + bias (BERT)
    ClassificationHead  hidden -> one vector per sequence ([CLS] or mean) -> class logits

A model is a body in `self.transformer` plus a head in `self.head`:

    CausalLM            decoder + vocab_projection       next-token logits (batch, seq, vocab)
    MaskedLM            encoder + MaskedLMHead           logits at every position, or only at
                                                         the `positions` a loss asks about
    SequenceClassifier  encoder + ClassificationHead     logits (batch, num_labels)

`model.hidden_states(...)` runs the body alone; `model.head(hidden)` the head alone. A
head accepts any leading shape, so `MaskedLM(..., positions=mask)` gathers the few masked
positions first and projects only those, as NVIDIA's BERT does: the vocabulary projection
is a large share of a small model's work, and 85 % of it would go to positions no loss
reads (`sslm_lab.objectives.masked_lm_objective` uses it).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_choice, check_int
from sslm_lab.transformer import (
    GELU,
    Dropout,
    KVCache,
    Transformer,
    TransformerConfig,
    TransformerModel,
    validate_attention_mask,
)

Pooling = Literal["cls", "mean"]


def vocab_projection(config: TransformerConfig, token_embedding: nn.Embedding) -> nn.Linear:
    """n_embd -> vocab_size, without bias: the token embedding matrix itself when
    `config.tie_weights` (one matrix reads tokens in and writes them out), else new."""
    layer = nn.Linear(config.n_embd, config.vocab_size, bias=False)
    if config.tie_weights:
        layer.weight = token_embedding.weight
    else:
        nn.init.normal_(layer.weight, mean=0.0, std=0.02)
    return layer


IGNORED = -100  # a target that is not scored: `sslm_lab.masking.IGNORE_INDEX`, as in PyTorch

# The logits of one chunk of rows in `projected_cross_entropy` take this many bytes at most
# (fp32). Measured on the 2-core VM, 4096 rows x 256 onto 4096 tokens, forward + backward,
# median of three: 4, 8, 16 and 32 MiB chunks 310, 283, 270 and 319 ms; full logits 408 ms.
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


class MaskedLMHead(nn.Module):
    """BERT's MLM head: (..., n_embd) -> (..., vocab_size).

    Each hidden state is transformed (dense, GELU, LayerNorm) before the vocabulary
    projection, which has a per-token output bias of its own.
    """

    def __init__(self, config: TransformerConfig, token_embedding: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Linear(config.n_embd, config.n_embd)
        self.transform_activation = GELU(config.gelu)
        self.transform_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.vocab_projection = vocab_projection(config, token_embedding)
        self.vocab_bias = nn.Parameter(torch.zeros(config.vocab_size))
        nn.init.normal_(self.transform.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.transform.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        hidden = self.transform_norm(self.transform_activation(self.transform(hidden)))
        return self.vocab_projection(hidden) + self.vocab_bias


def pool(hidden: Tensor, attention_mask: Tensor | None, pooling: Pooling) -> Tensor:
    """(batch, seq, n_embd) -> (batch, n_embd): the first ([CLS]) position, or the mean over
    real tokens only, so padding does not dilute the average."""
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = validate_attention_mask(attention_mask, *hidden.shape[:2]).to(hidden.dtype)
    counts = weights.sum(dim=1, keepdim=True).clamp(min=1.0)  # (batch, 1); 1 avoids 0 / 0
    return (hidden * weights[:, :, None]).sum(dim=1) / counts


class ClassificationHead(nn.Module):
    """(batch, seq, n_embd) -> (batch, num_labels): pool, dropout, one linear layer."""

    def __init__(self, config: TransformerConfig, num_labels: int, pooling: Pooling = "cls"):
        super().__init__()
        check_choice("pooling", pooling, ("cls", "mean"))
        check_int("num_labels", num_labels, low=1)
        self.pooling: Pooling = pooling
        self.dropout = Dropout(config.dropout)
        self.classifier = nn.Linear(config.n_embd, num_labels)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.classify(pool(hidden, attention_mask, self.pooling))

    def classify(self, pooled: Tensor) -> Tensor:
        """(batch, n_embd) pooled features -> (batch, num_labels): dropout, linear layer."""
        return self.classifier(self.dropout(pooled))


# ---------------------------------------------------------------------------- models


class CausalLM(TransformerModel):
    """Decoder language model: input_ids (batch, seq) -> next-token logits (batch, seq, vocab)."""

    writes_vocabulary = True

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.head = vocab_projection(config, self.transformer.token_embedding)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """With a `cache`, input_ids are the tokens after the cached ones (see `KVCache`).

        With `targets` (batch, seq), the token each position should predict (IGNORED = -100
        for positions not scored), it returns the mean cross-entropy instead of the logits.
        On a CPU, when the fp32 logits would take more than CHUNK_BYTES, through
        `projected_cross_entropy`, which never holds all of them; otherwise, and on other
        devices, from the full fp32 logits. On the 2-core VM, benchmarks/bench_vs_hf.py's
        GPT-2 shape (4096 rows onto 4096 tokens, 64 MiB of logits) trains at 0.790 steps/s
        this way (median of three) where the full logits gave 0.749 (one run); notebook
        03's shapes (1,024 rows onto 65 or 2,048 tokens) were 1-5 % slower through it, so
        they take the full logits. It is an argument of `forward`, as
        MaskedLM's `positions` is, so that DistributedDataParallel sees the whole step.
        """
        hidden = self.hidden_states(input_ids, attention_mask, cache=cache)
        if targets is None:
            return self.head(hidden)  # (batch, seq, vocab)
        if targets.shape != input_ids.shape:
            raise ValueError(
                f"targets {tuple(targets.shape)} must have input_ids' shape {tuple(input_ids.shape)}"
            )
        large = targets.numel() * self.config.vocab_size * 4 > CHUNK_BYTES  # fp32 logits
        # Only a plain projection: a wrapped head (LoRA on `head`, say) must run itself.
        if hidden.device.type == "cpu" and large and type(self.head) is nn.Linear:
            return projected_cross_entropy(
                hidden.flatten(0, 1), self.head.weight, targets.flatten()
            )
        logits = self.head(hidden).float()  # (batch, seq, vocab)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORED)


class MaskedLM(TransformerModel):
    """Encoder with BERT's MLM head: input_ids (batch, seq) -> logits (batch, seq, vocab).

    With `positions`, a bool (batch, seq) tensor, only the positions where it is True go
    through the head: the logits are (number of True, vocab), in row-major order, the
    order of `labels[positions]`. That is the point during training, where a loss reads
    15 % of the positions: the head's dense layer and its vocabulary projection run on
    those alone, and so does the last block past its attention (`Transformer.run`). It is
    an argument of `forward`, not a separate call, because a model wrapped by
    DistributedDataParallel averages gradients only for calls of its forward.
    """

    writes_vocabulary = True

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.head = MaskedLMHead(config, self.transformer.token_embedding)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids, positions=positions)
        return self.head(hidden)  # (batch, seq, vocab), or (selected, vocab)


class SequenceClassifier(TransformerModel):
    """Encoder + pooling + linear layer: input_ids (batch, seq) -> logits (batch, num_labels).

    A text longer than the block comes as chunks, input_ids (batch, chunks, seq): each
    chunk is encoded and pooled on its own, and the chunks' pooled features are averaged
    before the linear layer, so a passage of four blocks is read as four short ones.
    """

    def __init__(self, config: TransformerConfig, num_labels: int, pooling: Pooling = "cls"):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.head = ClassificationHead(config, num_labels, pooling)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        if input_ids.dim() != 3:
            hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
            return self.head(hidden, attention_mask)
        batch, chunks, seq = input_ids.shape
        inputs = (input_ids, attention_mask, token_type_ids)
        flat = [None if t is None else t.reshape(batch * chunks, seq) for t in inputs]
        hidden = self.hidden_states(*flat)  # (batch * chunks, seq, n_embd)
        pooled = pool(hidden, flat[1], self.head.pooling).view(batch, chunks, -1)
        return self.head.classify(pooled.mean(dim=1))
