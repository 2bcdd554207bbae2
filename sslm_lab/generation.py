"""Text generation from a causal language model, one token at a time.

The loop is always the same: run the model on the tokens so far, take the logits of the
last position, let a *strategy* pick the next token, append it, repeat. Strategies are
plain functions from logits (batch, vocab) to token ids (batch,):

    greedy                          the most likely token, every time
    sampling(temperature, top_k, top_p, generator)
                                    draw from softmax(logits / temperature), after
                                    keeping only the k most likely tokens (top-k) and/or
                                    the smallest set holding probability p (top-p, nucleus)

Temperature reshapes the distribution: below 1 it sharpens it toward greedy, above 1 it
flattens it toward uniform. Top-k and top-p cut off the long tail of unlikely tokens,
where most of a sample's nonsense comes from (Fan et al. 2018; Holtzman et al. 2020).

`generate` keeps a `KVCache` so each step runs only the newest token through the model;
the tokens it produces are the same as without the cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sslm_lab.checks import (
    ArgumentError,
    check_bool,
    check_generator,
    check_int,
    check_real,
    invalid,
)
from sslm_lab.data.tokenizers import TextTokenizer
from sslm_lab.eval_mode import evaluating
from sslm_lab.heads import CausalLM
from sslm_lab.transformer import KVCache

Strategy = Callable[[Tensor], Tensor]  # logits (batch, vocab) -> next token ids (batch,)


def greedy(logits: Tensor) -> Tensor:
    """The single most likely next token. (batch, vocab) -> (batch,)."""
    return logits.argmax(dim=-1)


# ---------------------------------------------------------------------------- checks


def check_temperature(temperature: float) -> float:
    return check_real(
        "temperature",
        temperature,
        low=0,
        low_open=True,
        hint="1 samples from the model's own distribution; for temperature -> 0 use greedy",
    )


def check_top_k(top_k: int) -> int:
    return check_int("top_k", top_k, low=1, hint="the number of most likely tokens kept")


def check_top_p(top_p: float) -> float:
    return check_real(
        "top_p", top_p, low=0, high=1, low_open=True, hint="the probability mass kept; 1 keeps all"
    )


# ---------------------------------------------------------------------------- filters


def top_k_filter(logits: Tensor, top_k: int) -> Tensor:
    """Keep the `top_k` largest logits of each row, set the rest to -inf. (batch, vocab).

    Ties with the k-th largest are kept, so a row may keep a few more than k.
    """
    top_k = min(check_top_k(top_k), logits.size(-1))
    kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth_largest, -math.inf)


def top_p_filter(logits: Tensor, top_p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability adds up to >= `top_p`.

    Nucleus sampling (Holtzman et al. 2020). A token is kept when the tokens more likely
    than it hold less than `top_p` together, so the most likely token is always kept and
    top_p=1 keeps every token. logits (batch, vocab) -> (batch, vocab), dropped ones -inf.
    """
    top_p = check_top_p(top_p)
    if top_p == 1:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probabilities = sorted_logits.float().softmax(dim=-1)
    mass_before = probabilities.cumsum(dim=-1) - probabilities  # of the more likely tokens
    drop_sorted = mass_before >= top_p  # the set was already complete without this token
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, -math.inf)


def sample(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one token per row from softmax(logits). (batch, vocab) -> (batch,).

    The draw happens on the generator's device, so a CPU generator gives the same tokens
    whether the model runs on a CPU or a GPU.
    """
    probabilities = logits.float().softmax(dim=-1)
    if generator is not None:
        probabilities = probabilities.to(generator.device)
    drawn = torch.multinomial(probabilities, num_samples=1, generator=generator)
    return drawn.squeeze(-1).to(logits.device)


def sampling(
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Strategy:
    """A strategy that samples: logits / temperature, then top-k, then top-p, then a draw.

    The same order as `transformers`. A seeded `generator` makes the draws repeatable.
    """
    temperature = check_temperature(temperature)
    top_k = None if top_k is None else check_top_k(top_k)
    top_p = None if top_p is None else check_top_p(top_p)

    def strategy(logits: Tensor) -> Tensor:
        logits = logits.float() / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        return sample(logits, generator)

    return strategy


def entropy_bits(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) in bits, over the last dimension. (..., vocab) -> (...)."""
    log_probabilities = logits.float().log_softmax(dim=-1)
    probabilities = log_probabilities.exp()
    # 0 · log 0 counts as 0: tokens a filter removed (-inf) contribute nothing.
    terms = torch.where(probabilities > 0, probabilities * log_probabilities, 0.0)
    return -terms.sum(dim=-1) / math.log(2)


# ---------------------------------------------------------------------------- the loop


def check_generation_inputs(model: nn.Module, input_ids: Tensor, max_new_tokens: int) -> None:
    """Fail before the loop, naming what was expected, on inputs generation cannot use.

    The prompt's ids are checked against the vocabulary here, once: the loop then feeds
    the model only ids it chose itself.
    """
    config = getattr(model, "config", None)
    if config is None or not getattr(config, "causal", False):
        raise ValueError(
            "generation needs a causal (decoder) model such as sslm_lab.heads.CausalLM; "
            f"got {type(model).__name__} with causal={getattr(config, 'causal', None)}"
        )
    if not isinstance(input_ids, Tensor):
        raise invalid("type(input_ids)", type(input_ids), "torch.Tensor: torch.tensor([ids])")
    integer = not (input_ids.is_floating_point() or input_ids.dtype == torch.bool)
    if input_ids.ndim != 2 or input_ids.numel() == 0 or not integer:
        raise ArgumentError(
            "input_ids must be an integer tensor of shape (batch, seq) with batch, seq >= 1; got "
            f"shape {tuple(input_ids.shape)}, dtype {input_ids.dtype}"
        )
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    if parameter is not None and parameter.device != input_ids.device:
        raise invalid("input_ids.device", str(input_ids.device), f"the model's, {parameter.device}")
    low, high = torch.stack(torch.aminmax(input_ids)).tolist()
    allowed = f"ids in [0, {config.vocab_size - 1}], the model's vocabulary"
    if low < 0:
        raise invalid("min(input_ids)", low, allowed)
    if high >= config.vocab_size:
        raise invalid("max(input_ids)", high, allowed)
    check_int("max_new_tokens", max_new_tokens, low=0)


def choose_strategy(
    strategy: Strategy | None,
    temperature: float | None,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> Strategy:
    """`strategy` if given; else sampling when any sampling setting is given; else greedy."""
    settings = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "generator": generator}
    given = [name for name, value in settings.items() if value is not None]
    if strategy is not None:
        if given:
            raise ValueError(
                f"pass either strategy= or the sampling settings, not both; got a strategy and "
                f"{', '.join(given)}"
            )
        return strategy
    if not given or given == ["generator"]:
        return greedy  # a generator alone changes nothing: greedy draws no random numbers
    return sampling(1.0 if temperature is None else temperature, top_k, top_p, generator)


def generate(
    model: nn.Module,
    input_ids: Tensor,
    max_new_tokens: int,
    strategy: Strategy | None = None,
    *,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
) -> Tensor:
    """Extend each prompt by up to `max_new_tokens` tokens.

    input_ids: (batch, seq) prompts of equal length (no padding). Returns
    (batch, seq + generated): the prompts followed by the new tokens.

    The next token is chosen by `strategy`; or, when any of temperature, top_k, top_p is
    given, by `sampling(...)` with them (temperature defaults to 1); else greedily.
    `generator` (a seeded `torch.Generator`) makes sampling repeatable.

    Once a row emits `eos_token_id` it is filled with `pad_token_id` (default: the eos id,
    as `transformers` does), and the loop stops early when every row has finished. Both
    ids must be in the vocabulary: the model reads them at the next step. The model sees
    at most its last `config.block_size` tokens, so generation can run past the context
    length.

    use_cache=True keeps a `KVCache`: each step runs only the newest token. Past
    block_size the window slides, and since positions are learned per index every
    token's position changes, so nothing cached stays valid: from there each step
    recomputes the window, exactly as use_cache=False does.
    """
    check_generation_inputs(model, input_ids, max_new_tokens)
    if strategy is not None and not callable(strategy):
        raise invalid("strategy", strategy, "None or a function: logits (batch, vocab) -> ids")
    check_generator("generator", generator)
    use_cache = check_bool("use_cache", use_cache)
    last_id = model.config.vocab_size - 1
    eos_token_id = check_int("eos_token_id", eos_token_id, low=0, high=last_id, allow_none=True)
    pad_token_id = check_int("pad_token_id", pad_token_id, low=0, high=last_id, allow_none=True)
    if pad_token_id is not None and eos_token_id is None:
        raise invalid("pad_token_id", pad_token_id, "None without an eos_token_id: nothing ends")
    strategy = choose_strategy(strategy, temperature, top_k, top_p, generator)
    if use_cache and not isinstance(model, CausalLM):
        raise ValueError(
            f"use_cache=True needs an sslm_lab CausalLM (its forward takes cache=); got "
            f"{type(model).__name__}: pass use_cache=False"
        )
    block_size = model.config.block_size
    pad_token_id = eos_token_id if pad_token_id is None else pad_token_id
    finished = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
    cache = KVCache(model.config.n_layer) if use_cache else None
    with evaluating(model):  # no dropout while generating
        for _ in range(max_new_tokens):
            if cache is not None and input_ids.size(1) <= block_size:
                new = input_ids[:, cache.length :]  # the whole prompt first, then one token
                logits = model(new, cache=cache)[:, -1, :]  # (batch, vocab)
            else:
                logits = model(input_ids[:, -block_size:])[:, -1, :]  # (batch, vocab)
            next_token = strategy(logits)  # (batch,)
            if eos_token_id is not None:
                next_token = next_token.masked_fill(finished, pad_token_id)
                finished = finished | (next_token == eos_token_id)
            input_ids = torch.cat([input_ids, next_token[:, None]], dim=1)
            if bool(finished.all()):
                break
    return input_ids


def encode_prompt(tokenizer: TextTokenizer, prompt: str) -> list[int]:
    """The prompt's token ids, or an ArgumentError naming what the tokenizer cannot encode."""
    if not isinstance(prompt, str) or not prompt:
        raise invalid("prompt", prompt, "a non-empty string")
    try:
        return tokenizer.encode(prompt)
    except ValueError:  # the character tokenizer has no id for some character
        known = set(getattr(tokenizer, "characters", ()))
        position, character = next((i, c) for i, c in enumerate(prompt) if c not in known)
        raise ArgumentError(
            f"the prompt {prompt!r} cannot be encoded: character {character!r} "
            f"(U+{ord(character):04X}) at position {position} is not one of the tokenizer's "
            f"{len(known)} characters; write the prompt with characters of the Shakespeare "
            "corpus (tokenizer.characters lists them)"
        ) from None


def generate_text(
    model: nn.Module,
    tokenizer: TextTokenizer,
    prompt: str,
    max_new_tokens: int,
    *,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> str:
    """Continue `prompt` by `max_new_tokens` tokens; return the continuation (prompt excluded).

    Greedy unless a sampling setting is given (see `generate`); `seed` seeds the draws, so
    the same seed and settings give the same text. The tokenizer's special tokens ([PAD],
    [MASK], ...) are never chosen: they are not text.
    """
    check_int("seed", seed, low=0, allow_none=True)
    ids = encode_prompt(tokenizer, prompt)
    device = next(model.parameters()).device
    sampled = any(value is not None for value in (temperature, top_k, top_p))
    generator = torch.Generator().manual_seed(seed) if sampled and seed is not None else None
    choose = choose_strategy(None, temperature, top_k, top_p, generator)
    specials = torch.tensor(sorted(tokenizer.special_ids.values()), device=device)

    def without_specials(logits: Tensor) -> Tensor:
        return choose(logits.index_fill(-1, specials, -math.inf))

    output = generate(
        model,
        torch.tensor([ids], device=device),
        max_new_tokens,
        without_specials,
        use_cache=use_cache,
    )
    return tokenizer.decode(output[0, len(ids) :].tolist())
