"""Pretraining losses as plain functions of logits and targets.

Every loss here is a mean cross-entropy in nats per predicted token. To compare a
character model with a BPE model, convert to bits per *character*: a BPE token covers
several characters, so its loss is spread over them (`bits_per_character`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslm_lab.masking import IGNORE_INDEX


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the masked positions only.

    logits: (batch, seq, vocab); labels: (batch, seq) with IGNORE_INDEX where nothing
    was masked (see `sslm_lab.masking.mask_tokens`).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits (batch, seq, vocab) {tuple(logits.shape)} do not fit labels {tuple(labels.shape)}"
        )
    if not (labels != IGNORE_INDEX).any():
        raise ValueError("labels select no position: nothing was masked in this batch")
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts token t + 1 (teacher forcing).

    logits: (batch, seq, vocab) from the model run on `input_ids` (batch, seq). The
    last position has no next token and the first token is never predicted.
    """
    if logits.shape[:-1] != input_ids.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} do not fit input_ids {tuple(input_ids.shape)}"
        )
    shifted_logits = logits[:, :-1].flatten(0, 1)  # (batch * (seq - 1), vocab)
    targets = input_ids[:, 1:].flatten()
    return F.cross_entropy(shifted_logits, targets, ignore_index=IGNORE_INDEX)


def next_sentence_loss(logits: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    """Binary next-sentence prediction from (batch, 2) logits; `is_next` is (batch,) 0/1."""
    return F.cross_entropy(logits, is_next.long())


def bits_per_character(loss_nats_per_token: float, tokens: int, characters: int) -> float:
    """Convert a mean loss in nats per token into bits per character of the same text.

    The total information is loss × tokens nats; spread over the characters and
    divided by ln 2 it is bits per character. For a character model tokens == characters.
    """
    if tokens <= 0 or characters <= 0:
        raise ValueError(f"tokens={tokens} and characters={characters} must both be positive")
    return float(loss_nats_per_token) * tokens / characters / math.log(2)
