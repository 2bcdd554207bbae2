"""How a notebook's sizes are written: one row per knob, one column per profile.

    @sizes_table
    class CausalLMSizes:
        #                        smoke    laptop   gpu
        n_layer: int = knob(     1,       4,       6)
        n_embd: int = knob(      32,      128,     384)

`sizes_table` turns the class into a frozen dataclass with one field per row, and
`sizes_for(CausalLMSizes, "gpu")` builds the gpu column as an instance. Every row must
give all three values: a knob that is missing for one profile fails at import, and a
typo in a field name fails where it is read (frozen dataclasses have no defaults here).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

PROFILE_NAMES = ("smoke", "laptop", "gpu")

SizesClass = TypeVar("SizesClass", bound=type)


@dataclass(frozen=True)
class Knob:
    """One row of a sizes table: the value for each profile."""

    smoke: Any
    laptop: Any
    gpu: Any


def knob(smoke: Any, laptop: Any, gpu: Any) -> Any:
    """A row of a sizes table (see the module docstring)."""
    return Knob(smoke, laptop, gpu)


def sizes_table(cls: SizesClass) -> SizesClass:
    """Make a frozen dataclass of `cls`, whose annotated attributes are `knob(...)` rows."""
    rows = {name: value for name, value in vars(cls).items() if isinstance(value, Knob)}
    missing = [name for name in cls.__annotations__ if name not in rows]
    if missing:
        raise TypeError(f"{cls.__name__}: {missing} have no knob(smoke, laptop, gpu) row")
    for name in rows:
        delattr(cls, name)  # the values live in TABLE; the dataclass fields have no defaults
    sizes = dataclass(frozen=True)(cls)
    sizes.TABLE = rows
    return sizes


def sizes_for(cls: type, profile: str) -> Any:
    """The `profile` column of a sizes table, as an instance of `cls`."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"profile={profile!r}: choose one of {', '.join(PROFILE_NAMES)}")
    return cls(**{field.name: getattr(cls.TABLE[field.name], profile) for field in fields(cls)})
