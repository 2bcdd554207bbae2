"""Windows of consecutive tokens from one long sequence: what a language model trains on.

    random_windows(ids, batch_size, length)   the trainer's batch_fn: fresh random windows
                                              every step, drawn on the ids' device
    evenly_spaced_windows(ids, count, length) the same `count` windows every time, spread
                                              over the whole text: for evaluation

A causal LM takes windows of block_size + 1 tokens: it reads the first block_size and
predicts each one's successor, so the last position gets a target too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sslm_lab.checks import ArgumentError, check_int


def _check_windows(token_ids: Tensor, length: int) -> None:
    if not isinstance(token_ids, Tensor) or token_ids.dim() != 1:
        shape = tuple(token_ids.shape) if isinstance(token_ids, Tensor) else type(token_ids)
        raise ArgumentError(f"token_ids must be a 1-D tensor of token ids; got {shape}")
    check_int(
        "length",
        length,
        low=1,
        high=len(token_ids),
        hint=f"a window cannot be longer than the {len(token_ids)} ids it is cut from",
    )


def random_windows(
    token_ids: Tensor, batch_size: int, length: int
) -> Callable[[int, torch.Generator], Tensor]:
    """A batch_fn `(step, generator) -> (batch_size, length)` of windows at random starts.

    Keep `token_ids` (1-D) on the training device and no batch crosses from the host.
    """
    _check_windows(token_ids, length)
    check_int("batch_size", batch_size, low=1)
    offsets = torch.arange(length, device=token_ids.device)

    def batch_fn(step: int, generator: torch.Generator) -> Tensor:
        high = len(token_ids) - length + 1  # the last start that still fits a whole window
        starts = torch.randint(high, (batch_size,), generator=generator, device=generator.device)
        return token_ids[starts.to(token_ids.device)[:, None] + offsets]  # (batch, length)

    return batch_fn


def evenly_spaced_windows(token_ids: Tensor, count: int, length: int) -> Tensor:
    """`count` windows of `length` tokens spread over the whole text: (count, length)."""
    _check_windows(token_ids, length)
    check_int("count", count, low=1)
    starts = torch.linspace(0, len(token_ids) - length, count).long().to(token_ids.device)
    return token_ids[starts[:, None] + torch.arange(length, device=token_ids.device)]
