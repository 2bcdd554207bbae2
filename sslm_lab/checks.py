"""The one way to check an argument: before any work starts, with a message that says
which argument, what it was given (value and type) and what is allowed.

    check_int("max_steps", max_steps, low=1)             an integer, optionally in a range
    check_real("mask_rate", rate, low=0, high=1, low_open=True, high_open=True)
    check_choice("strategy", strategy, STRATEGIES)       one of a set
    check_bool("nsp_ablation", value, allow_none=True)   True or False (or None)
    check_type("model", model, nn.Module, "an nn.Module")  an instance, refused by its type
    check_tensor("images", images, shape="(batch, 8, 8)")  a tensor of a kind of dtype
    check_generator("rng", rng, device)                  None or a torch.Generator there
    check_token_ids("input_ids", ids, vocab_size=V)      integer ids (batch, seq) in 0..V-1

Each returns the value as a plain Python int / float / bool, so numpy scalars are
accepted wherever a Python number is. Booleans are not numbers here (`True` is not a
step count), and neither are NaN or strings. A refusal raises `ArgumentError`, which is
both a ValueError and a TypeError, so callers may catch either.

A notebook's parameters are checked by the same rules through the specs in
`sslm_lab.lab.profiles.parameters`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch


class ArgumentError(ValueError, TypeError):
    """An argument is of the wrong type or outside what is allowed."""


def invalid(name: str, value: Any, allowed: str, hint: str = "") -> ArgumentError:
    """The one shape of refusal: `name=value (type) is not allowed; allowed: ...`."""
    message = f"{name}={value!r} ({type(value).__name__}) is not allowed; allowed: {allowed}"
    return ArgumentError(message + (f". {hint}" if hint else ""))


def _range_text(low: Any, high: Any, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def _or_none(text: str, allow_none: bool) -> str:
    return f"{text}, or None" if allow_none else text


def check_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
    hint: str = "",
) -> int | None:
    """`value` as an int if it is an integer (not a bool) in [low, high]."""
    allowed = _or_none("an integer" + _range_text(low, high), allow_none)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(name, value, allowed, hint)
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(name, value, allowed, hint)
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    hint: str = "",
) -> float | None:
    """`value` as a float if it is a finite real number (not a bool) in the interval."""
    allowed = _or_none("a finite number" + _range_text(low, high, low_open, high_open), allow_none)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(name, value, allowed, hint)
    number = float(value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if not math.isfinite(number) or too_low or too_high:
        raise invalid(name, value, allowed, hint)  # the value as given, not as converted
    return number


def check_choice(
    name: str, value: Any, allowed: Iterable[Any], *, allow_none: bool = False, hint: str = ""
) -> Any:
    """`value` if it is one of `allowed` (compared by equality, so 'gpu' but not 3)."""
    options = list(allowed)
    text = _or_none("one of " + ", ".join(str(option) for option in options), allow_none)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) and not any(isinstance(o, bool) for o in options):
        raise invalid(name, value, text, hint)
    try:
        known = value in options
    except TypeError:  # an unhashable or incomparable value is not one of them either
        known = False
    if not known:
        raise invalid(name, value, text, hint)
    return value


def check_bool(name: str, value: Any, *, allow_none: bool = False, hint: str = "") -> bool | None:
    """`value` if it is True or False (numpy's bool too), not 0, 1 or "yes"."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool | np.bool_):
        raise invalid(name, value, _or_none("True or False", allow_none), hint)
    return bool(value)


# ---------------------------------------------------------------------------- objects and tensors


def check_type(name: str, value: Any, kind: type | tuple[type, ...], allowed: str) -> Any:
    """`value` if it is a `kind`; refused by its type, not its repr (a model's runs to pages)."""
    if not isinstance(value, kind):
        raise invalid(f"type({name})", type(value), allowed)
    return value


def check_tensor(
    name: str, value: Any, *, dtype: str = "float", shape: str = "", hint: str = ""
) -> torch.Tensor:
    """`value` if it is a torch.Tensor whose dtype is of the kind: "float", "integer" (not
    bool or complex) or "any". Shapes are the caller's to check; `shape` says which in words."""
    check_choice("dtype", dtype, ("float", "integer", "any"))
    if not isinstance(value, torch.Tensor):
        raise invalid(f"type({name})", type(value), f"a torch.Tensor {shape}".rstrip(), hint)
    integer = not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
    if (dtype == "float" and not value.is_floating_point()) or (dtype == "integer" and not integer):
        kind = "an integer dtype (not bool)" if dtype == "integer" else "a floating-point dtype"
        raise invalid(f"{name}.dtype", value.dtype, f"{kind} {shape}".rstrip(), hint)
    return value


def check_generator(
    name: str, generator: Any, device: torch.device | str | None = None
) -> torch.Generator | None:
    """None (torch's global generator) or a torch.Generator of the device type it draws on."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        allowed = "a torch.Generator or None"
        raise invalid(f"type({name})", type(generator), allowed, "torch.Generator().manual_seed(0)")
    wanted = None if device is None else torch.device(device).type
    if wanted is not None and generator.device.type != wanted:
        raise invalid(f"{name}.device", str(generator.device), f"{wanted}, where the tensors are")
    return generator


def check_token_ids(
    name: str,
    ids: Any,
    *,
    vocab_size: int | None = None,
    block_size: int | None = None,
    dims: tuple[int, ...] = (2,),
) -> torch.Tensor:
    """Token ids: an integer tensor with one of `dims` dimensions ((batch, seq) by default),
    none of them 0, the last at most `block_size` when given.

    With `vocab_size`, every id must lie in [0, vocab_size): a pass over the ids and, on a
    GPU, a wait for it, so call it where ids enter (a dataset, a tokenizer, an objective's
    first step), not on every layer."""
    check_tensor(name, ids, dtype="integer", shape="of token ids")
    longest = "" if block_size is None else f", the last <= block_size={block_size}"
    if ids.dim() not in dims or ids.numel() == 0 or (block_size and ids.size(-1) > block_size):
        allowed = f"{' or '.join(f'{d}-D' for d in dims)}, no dimension 0{longest}"
        raise invalid(f"{name}.shape", tuple(ids.shape), allowed)
    if vocab_size is not None:
        low, high = torch.stack(torch.aminmax(ids)).tolist()  # one host sync
        allowed = f"ids in [0, {vocab_size - 1}], the vocabulary"
        if low < 0:
            raise invalid(f"min({name})", low, allowed)
        if high >= vocab_size:
            raise invalid(f"max({name})", high, allowed)
    return ids
