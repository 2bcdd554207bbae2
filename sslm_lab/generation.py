"""Text generation from a causal language model, one token at a time.

The loop is always the same: run the model on the tokens so far, take the logits of the
last position, let a *strategy* pick the next token, append it, repeat. Strategies are
plain functions from logits (batch, vocab) to token ids (batch,); `greedy` is the first.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

Strategy = Callable[[Tensor], Tensor]  # logits (batch, vocab) -> next token ids (batch,)


def greedy(logits: Tensor) -> Tensor:
    """The single most likely next token. (batch, vocab) -> (batch,)."""
    return logits.argmax(dim=-1)


def check_generation_inputs(model: nn.Module, input_ids: Tensor, max_new_tokens: int) -> None:
    """Fail before the loop, naming what was expected, on inputs generation cannot use."""
    config = getattr(model, "config", None)
    if config is None or not getattr(config, "causal", False):
        raise ValueError(
            "generation needs a causal (decoder) model such as sslm_lab.transformer.CausalLM; "
            f"got {type(model).__name__} with causal={getattr(config, 'causal', None)}"
        )
    if input_ids.ndim != 2 or input_ids.size(1) == 0 or input_ids.is_floating_point():
        raise ValueError(
            "input_ids must be an integer tensor of shape (batch, seq) with seq >= 1; got "
            f"shape {tuple(input_ids.shape)}, dtype {input_ids.dtype}"
        )
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer; got {max_new_tokens!r}")


@torch.no_grad()
def generate(
    model: nn.Module,
    input_ids: Tensor,
    max_new_tokens: int,
    strategy: Strategy = greedy,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Tensor:
    """Extend each prompt by up to `max_new_tokens` tokens chosen by `strategy`.

    input_ids: (batch, seq) prompts of equal length (no padding). Returns
    (batch, seq + generated): the prompts followed by the new tokens. Once a row emits
    `eos_token_id` it is filled with `pad_token_id` (default: the eos id, as `transformers`
    does), and the loop stops early when every row has finished. The model sees at most its
    last `config.block_size` tokens, so generation can run past the context length.
    """
    check_generation_inputs(model, input_ids, max_new_tokens)
    block_size = model.config.block_size
    pad_token_id = eos_token_id if pad_token_id is None else pad_token_id
    finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
    was_training = model.training
    model.eval()  # no dropout while generating
    try:
        for _ in range(max_new_tokens):
            context = input_ids[:, -block_size:]
            logits = model(context)[:, -1, :]  # (batch, vocab): the next-token prediction
            next_token = strategy(logits)  # (batch,)
            if eos_token_id is not None:
                next_token = next_token.masked_fill(finished, pad_token_id)
                finished = finished | (next_token == eos_token_id)
            input_ids = torch.cat([input_ids, next_token[:, None]], dim=1)
            if bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return input_ids
