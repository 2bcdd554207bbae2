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
    TokenClassificationHead  hidden -> class logits at every position

A model is a body in `self.transformer` plus a head in `self.head`:

    CausalLM            decoder + vocab_projection       next-token logits (batch, seq, vocab)
    MaskedLM            encoder + MaskedLMHead           logits at every position, or only at
                                                         the `positions` a loss asks about
    SequenceClassifier  encoder + ClassificationHead     logits (batch, num_labels)
    TokenClassifier     encoder + TokenClassificationHead  logits (batch, seq, num_labels)

`model.hidden_states(...)` runs the body alone; `model.head(hidden)` the head alone. A
head accepts any leading shape, so `MaskedLM(..., positions=mask)` gathers the few masked
positions first and projects only those, as NVIDIA's BERT does: the vocabulary projection
is a large share of a small model's work, and 85 % of it would go to positions no loss
reads (`sslm_lab.objectives.masked_lm_objective` uses it). A causal LM's loss goes through
`sslm_lab.kernels.projected_cross_entropy` on a CPU when its logits are large.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_choice, check_int
from sslm_lab.kernels import CHUNK_BYTES, GELU, IGNORED, Dropout, projected_cross_entropy
from sslm_lab.masking import MASK_RATE, validate_attention_mask
from sslm_lab.transformer import KVCache, Transformer, TransformerConfig, TransformerModel

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


class TokenClassificationHead(nn.Module):
    """(..., n_embd) -> (..., num_labels): dropout and one linear layer at every position."""

    def __init__(self, config: TransformerConfig, num_labels: int) -> None:
        super().__init__()
        check_int("num_labels", num_labels, low=1)
        self.dropout = Dropout(config.dropout)
        self.classifier = nn.Linear(config.n_embd, num_labels)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.classifier(self.dropout(hidden))


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
        On a CPU, when the fp32 logits would take more than CHUNK_BYTES, it goes through
        `kernels.projected_cross_entropy`, which never holds all of them (small logits are
        faster whole); otherwise, and on other devices, from the full fp32 logits. It is an
        argument of `forward`, as MaskedLM's `positions` is, so that DistributedDataParallel
        sees the whole step.
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
    those alone, and so does the last block past its attention (`Transformer.forward`);
    `flops_per_token` counts the head at that share (`head_share`). It is
    an argument of `forward`, not a separate call, because a model wrapped by
    DistributedDataParallel averages gradients only for calls of its forward.
    """

    writes_vocabulary = True
    head_share = MASK_RATE  # the head runs at the masked positions only, in training

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


class TokenClassifier(TransformerModel):
    """Encoder + a label per token: input_ids (batch, seq) -> logits (batch, seq, num_labels)."""

    def __init__(self, config: TransformerConfig, num_labels: int) -> None:
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.head = TokenClassificationHead(config, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        return self.head(self.hidden_states(input_ids, attention_mask, token_type_ids))
