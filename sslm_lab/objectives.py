"""Pretraining losses: as plain functions of logits and targets, and in the trainer's shape.

Every loss here is a mean cross-entropy in nats per predicted token. To compare a
character model with a BPE model, convert to bits per *character*: a BPE token covers
several characters, so its loss is spread over them (`bits_per_character`).

The functions named `*_objective` take the trainer's arguments, `(model, batch, step)`,
and return `(loss, metrics)` (see `sslm_lab.training.trainer`): pass one to a `Phase`.
Their metrics hold "targets", the number of tokens the mean loss is over: the trainer's
`TARGETS`, by which it weights micro-batches that hold different numbers of targets
(a masked LM's random masks), so accumulated gradients are the large batch's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_int, check_real
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
    # Shift the targets, not the logits: the last position gets the ignored target, so the
    # logits stay one (batch * seq, vocab) view instead of a copy without their last rows.
    targets = next_token_targets(input_ids)  # (batch, seq)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def next_token_targets(input_ids: torch.Tensor) -> torch.Tensor:
    """(batch, seq) -> (batch, seq): each position's successor, IGNORE_INDEX at the last.
    `CausalLM(input_ids, targets=next_token_targets(input_ids))` is `causal_lm_loss`."""
    return F.pad(input_ids[:, 1:], (0, 1), value=IGNORE_INDEX)


def next_sentence_loss(logits: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    """Binary next-sentence prediction from (batch, 2) logits; `is_next` is (batch,) 0/1."""
    return F.cross_entropy(logits, is_next.long())


def bits_per_character(loss_nats_per_token: float, tokens: int, characters: int) -> float:
    """Convert a mean loss in nats per token into bits per character of the same text.

    The total information is loss × tokens nats; spread over the characters and
    divided by ln 2 it is bits per character. For a character model tokens == characters.
    """
    check_int("tokens", tokens, low=1)
    check_int("characters", characters, low=1)
    check_real("loss_nats_per_token", loss_nats_per_token, low=0)
    return float(loss_nats_per_token) * tokens / characters / math.log(2)


# ---------------------------------------------------------------------------- for the trainer


def causal_lm_objective(model: nn.Module, windows: Tensor, step: int) -> tuple[Tensor, dict]:
    """Teacher forcing on windows (batch, block_size + 1): the model (a
    `sslm_lab.heads.CausalLM`) reads the first block_size tokens and is scored on each
    one's successor. Mean nats per predicted token, computed in fp32 even in a bf16 run.

    The model is handed the targets and returns the loss itself, so that on a CPU a model
    with large logits never holds them all at once (`sslm_lab.kernels.projected_cross_entropy`,
    see `CausalLM.forward` for when); the value is
    `F.cross_entropy(model(windows[:, :-1]).flatten(0, 1).float(), windows[:, 1:].flatten())`."""
    return model(windows[:, :-1], targets=windows[:, 1:]), {"targets": windows[:, 1:].numel()}


def next_token_objective(model: nn.Module, input_ids: Tensor, step: int) -> tuple[Tensor, dict]:
    """Teacher forcing on windows (batch, seq) read whole: every token whose successor is
    in the window is scored (`next_token_targets`), seq - 1 predictions per window, where
    `causal_lm_objective` reads seq + 1 tokens to score seq. The model computes the loss."""
    targets = next_token_targets(input_ids)
    return model(input_ids, targets=targets), {"targets": (targets != IGNORE_INDEX).sum()}


def masked_lm_objective(
    model: nn.Module, batch: tuple[Tensor, Tensor], step: int
) -> tuple[Tensor, dict[str, Any]]:
    """`masked_lm_loss` on a batch (masked input_ids, labels), each (batch, seq), as
    `sslm_lab.masking.mask_tokens` returns it; also reports the top-1 accuracy at the
    masked positions.

    The model (a `sslm_lab.heads.MaskedLM`) is asked for logits at the masked positions
    only (`positions=`), gathered before its head as NVIDIA's BERT does: the same loss and
    accuracy as from full logits, without projecting the ~85 % of positions no label reads
    onto the vocabulary. The logits are cast to fp32, as in `causal_lm_objective`.
    """
    inputs, labels = batch
    selected = labels != IGNORE_INDEX  # (batch, seq)
    targets = labels[selected]  # (selected,), in the row-major order of the logits below
    if len(targets) == 0:
        raise ValueError("labels select no position: nothing was masked in this batch")
    logits = model(inputs, positions=selected).float()  # (selected, vocab)
    accuracy = (logits.argmax(-1) == targets).float().mean()
    return F.cross_entropy(logits, targets), {"accuracy": accuracy, "targets": len(targets)}
