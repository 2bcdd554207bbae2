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


def random_windows(
    token_ids: Tensor, batch_size: int, length: int
) -> Callable[[int, torch.Generator], Tensor]:
    """A batch_fn `(step, generator) -> (batch_size, length)` of windows at random starts.

    Keep `token_ids` (1-D) on the training device and no batch crosses from the host.
    """
    if token_ids.dim() != 1 or not 1 <= length <= len(token_ids):
        raise ValueError(
            f"length={length} windows need a 1-D tensor of at least that many ids; got shape "
            f"{tuple(token_ids.shape)}"
        )
    offsets = torch.arange(length, device=token_ids.device)

    def batch_fn(step: int, generator: torch.Generator) -> Tensor:
        high = len(token_ids) - length + 1  # the last start that still fits a whole window
        starts = torch.randint(high, (batch_size,), generator=generator, device=generator.device)
        return token_ids[starts.to(token_ids.device)[:, None] + offsets]  # (batch, length)

    return batch_fn


def evenly_spaced_windows(token_ids: Tensor, count: int, length: int) -> Tensor:
    """`count` windows of `length` tokens spread over the whole text: (count, length)."""
    if token_ids.dim() != 1 or not 1 <= length <= len(token_ids):
        raise ValueError(
            f"length={length} windows need a 1-D tensor of at least that many ids; got shape "
            f"{tuple(token_ids.shape)}"
        )
    starts = torch.linspace(0, len(token_ids) - length, count).long().to(token_ids.device)
    return token_ids[starts[:, None] + torch.arange(length, device=token_ids.device)]
