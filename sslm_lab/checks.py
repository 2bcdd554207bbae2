"""The one way to check an argument: before any work starts, with a message that says
which argument, what it was given (value and type) and what is allowed.

    check_int("max_steps", max_steps, low=1)             an integer, optionally in a range
    check_real("mask_rate", rate, low=0, high=1, low_open=True, high_open=True)
    check_choice("strategy", strategy, STRATEGIES)       one of a set
    check_bool("nsp_ablation", value, allow_none=True)   True or False (or None)

Each returns the value as a plain Python int / float / bool, so numpy scalars are
accepted wherever a Python number is. Booleans are not numbers here (`True` is not a
step count), and neither are NaN or strings. A refusal raises `ArgumentError`, which is
both a ValueError and a TypeError, so callers may catch either.

Notebook parameters are described with the same rules as specs (`Integer`, `Real`,
`Choice`, `Boolean`, `Text`): `Parameters(...).validate(...)` checks a notebook's
parameters cell in one call, and the parameter sweep test reads the same specs to
try wrong types, values out of range and every boundary.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


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


# ---------------------------------------------------------------------------- notebook parameters


@dataclass(frozen=True)
class Integer:
    """A notebook parameter that is an integer in [low, high]; `none` says what None means."""

    low: int | None = None
    high: int | None = None
    none: str | None = None  # e.g. "the profile's max_steps"; None: None is not allowed

    def check(self, name: str, value: Any) -> Any:
        return check_int(name, value, low=self.low, high=self.high, allow_none=bool(self.none))

    def bad_values(self) -> list[Any]:
        values: list[Any] = ["x", 1.5, True]
        values += [self.low - 1] if self.low is not None else []
        values += [self.high + 1] if self.high is not None else []
        return values + ([] if self.none else [None])

    def good_values(self) -> list[Any]:
        return [v for v in (self.low, self.high) if v is not None] + ([None] if self.none else [])


@dataclass(frozen=True)
class Real:
    """A notebook parameter that is a finite number in an interval; `none` as in `Integer`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: str | None = None

    def check(self, name: str, value: Any) -> Any:
        return check_real(
            name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            allow_none=bool(self.none),
        )

    def bad_values(self) -> list[Any]:
        values: list[Any] = ["x", True, math.nan, math.inf]
        if self.low is not None:
            values.append(self.low if self.low_open else self.low - 1)
        if self.high is not None:
            values.append(self.high if self.high_open else self.high + 1)
        return values + ([] if self.none else [None])

    def good_values(self) -> list[Any]:
        # A closed end is allowed itself; an open one only just inside it.
        values = []
        if self.low is not None:
            values.append(self.low + 1e-3 if self.low_open else self.low)
        if self.high is not None:
            values.append(self.high - 1e-3 if self.high_open else self.high)
        return values + ([None] if self.none else [])


@dataclass(frozen=True)
class Choice:
    """A notebook parameter that is one of `options`; `none` as in `Integer`."""

    options: tuple[Any, ...]
    none: str | None = None

    def check(self, name: str, value: Any) -> Any:
        return check_choice(name, value, self.options, allow_none=bool(self.none))

    def bad_values(self) -> list[Any]:
        return [3, "not-an-option"] + ([] if self.none else [None])

    def good_values(self) -> list[Any]:
        return list(self.options) + ([None] if self.none else [])


@dataclass(frozen=True)
class Boolean:
    """A notebook parameter that is True or False; `none` as in `Integer`."""

    none: str | None = None

    def check(self, name: str, value: Any) -> Any:
        return check_bool(name, value, allow_none=bool(self.none))

    def bad_values(self) -> list[Any]:
        return [1, "yes"] + ([] if self.none else [None])

    def good_values(self) -> list[Any]:
        return [True, False] + ([None] if self.none else [])


@dataclass(frozen=True)
class Text:
    """A notebook parameter that is a non-empty string."""

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise invalid(name, value, "a non-empty string")
        return value

    def bad_values(self) -> list[Any]:
        return [3, "", None]

    def good_values(self) -> list[Any]:
        return ["a"]


Spec = Integer | Real | Choice | Boolean | Text


Rule = Callable[[dict[str, Any]], str | None]  # all values -> a complaint, or None
TOGETHER = "these parameters do not fit together"  # how a rule's refusal begins


class Parameters:
    """The parameters a notebook declares, with the spec each must meet.

        PARAMETERS = Parameters(seed=Integer(low=0), max_steps=Integer(low=1, none="..."))
        PARAMETERS.validate(seed=seed, max_steps=max_steps)   # in the notebook

    `validate` checks every parameter and raises one ArgumentError naming each that is
    not allowed; the values themselves are never changed. `rules` check values that
    depend on each other (e.g. n_embd divisible by n_head), once each value is allowed.
    """

    def __init__(self, *, rules: tuple[Rule, ...] = (), **specs: Spec) -> None:
        self.specs: dict[str, Spec] = specs
        self.rules = rules

    def validate(self, **values: Any) -> None:
        missing = sorted(set(self.specs) - set(values))
        unknown = sorted(set(values) - set(self.specs))
        if missing or unknown:
            raise ArgumentError(
                f"validate() needs exactly the notebook's parameters {sorted(self.specs)}; "
                f"missing {missing}, unknown {unknown}"
            )
        problems = []
        for name, spec in self.specs.items():
            try:
                spec.check(name, values[name])
            except ArgumentError as error:
                problems.append(str(error))
        if problems:
            raise ArgumentError("; ".join(problems))
        clashes = [clash for clash in (rule(values) for rule in self.rules) if clash]
        if clashes:
            raise ArgumentError(f"{TOGETHER}: " + "; ".join(clashes))
