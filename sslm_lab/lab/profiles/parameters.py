"""A notebook's parameters, described once: the spec each must meet.

Each notebook's table in `lab/profiles` declares its parameters besides `profile` as
specs (`Integer`, `Real`, `Choice`, `Boolean`, `Text`) that check a value by the rules of
`sslm_lab.checks`. `Parameters(...).validate(...)` checks a notebook's parameters cell in
one call, before anything is loaded or trained, and the parameter sweep test
(tests/test_parameter_sweep.py) reads the same specs to try wrong types, values out of
range and every boundary (`bad_values`, `good_values`), and runs each notebook with every
parameter at the low end of what is allowed, then at the high end (`ends`). A spec's good
values run from its low end to its high end, None (where allowed) last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sslm_lab.checks import ArgumentError, check_bool, check_choice, check_int, check_real, invalid

# The largest seed a notebook takes. A notebook seeds torch, whose manual_seed takes up to
# 2**64 - 1, and numpy's legacy generators (np.random.seed, and scikit-learn's random_state),
# which take 0 <= seed < 2**32 only: a seed must suit both, so the smaller bound.
MAX_SEED = 2**32 - 1
OPEN_END_STEP = 1e-3  # how far inside an open end of an interval its nearest good value lies
LONG_TEXT = 4000  # characters: longer than any model's context here (MiniLM: 512 pieces)


@dataclass(frozen=True)
class Integer:
    """A notebook parameter that is an integer in [low, high]; `none` says what None means."""

    low: int | None = None
    high: int | None = None
    none: str | None = None  # e.g. "the profile's max_steps"; None: None is not allowed

    @classmethod
    def seed(cls) -> Integer:
        """A random seed: an integer in [0, MAX_SEED], which torch and numpy both accept."""
        return cls(low=0, high=MAX_SEED)

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
            values.append(self.low + OPEN_END_STEP if self.low_open else self.low)
        if self.high is not None:
            values.append(self.high - OPEN_END_STEP if self.high_open else self.high)
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
        return [False, True] + ([None] if self.none else [])


@dataclass(frozen=True)
class Text:
    """A notebook parameter that is a string with at least one character besides
    whitespace, and at most `max_length` characters (None: any length).

    Whitespace alone is refused: a tokenizer turns it into nothing (or a lone space), and
    a notebook would fail on it much later, after minutes of training.
    """

    max_length: int | None = None

    def check(self, name: str, value: Any) -> Any:
        allowed = "a string with at least one character besides whitespace" + (
            f", at most {self.max_length} characters long" if self.max_length is not None else ""
        )
        if not isinstance(value, str) or not value.strip():
            raise invalid(name, value, allowed)
        if self.max_length is not None and len(value) > self.max_length:
            raise invalid(name, value, allowed, f"it has {len(value)} characters")
        return value

    def bad_values(self) -> list[Any]:
        too_long = [self.longest() + "a"] if self.max_length is not None else []
        return [3, "", " ", "\t\n", None, *too_long]

    def good_values(self) -> list[Any]:
        return ["a", " a ", self.longest()]

    def longest(self) -> str:
        """The longest text allowed: words of the plays, `max_length` characters of them
        (without a bound, LONG_TEXT characters, which a notebook must cut to its model)."""
        length = self.max_length if self.max_length is not None else LONG_TEXT
        return ("lend me your ears " * length)[:length]


Spec = Integer | Real | Choice | Boolean | Text


def ends(spec: Spec) -> tuple[Any, Any]:
    """The least and the greatest value `spec` allows: the first and the last of its good
    values besides None. A count without an upper bound (training steps) has no greatest
    worth running, so its least stands at both ends."""
    values = [value for value in spec.good_values() if value is not None] or [None]
    return values[0], values[-1]


Rule = Callable[[dict[str, Any]], str | None]  # all values -> a complaint, or None
TOGETHER = "these parameters do not fit together"  # how a rule's refusal begins


class Parameters:
    """The parameters a notebook declares, with the spec each must meet.

        PARAMETERS = Parameters(seed=Integer.seed(), max_steps=Integer(low=1, none="..."))
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
