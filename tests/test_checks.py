"""sslm_lab.checks: the one way to check an argument, and the notebook parameter specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sslm_lab.checks import ArgumentError, check_bool, check_choice, check_int, check_real
from sslm_lab.lab.profiles import NOTEBOOK_PARAMETERS
from sslm_lab.lab.profiles.parameters import (
    MAX_SEED,
    Boolean,
    Choice,
    Integer,
    Parameters,
    Real,
    Text,
    ends,
)


def test_a_refusal_names_the_argument_the_value_its_type_and_what_is_allowed() -> None:
    with pytest.raises(ArgumentError) as caught:
        check_int("max_steps", 0, low=1)
    assert str(caught.value) == "max_steps=0 (int) is not allowed; allowed: an integer >= 1"
    with pytest.raises(ValueError, match=r"seed='x' \(str\) is not allowed"):
        check_int("seed", "x")
    with pytest.raises(TypeError, match=r"mask_rate='x' \(str\).*a finite number in \(0, 1\)"):
        check_real("mask_rate", "x", low=0, high=1, low_open=True, high_open=True)


def test_numpy_scalars_are_numbers_and_come_back_as_python_numbers() -> None:
    assert check_int("n", np.int64(3), low=1) == 3 and type(check_int("n", np.int32(3))) is int
    assert type(check_real("x", np.float32(0.5), low=0)) is float
    assert check_bool("b", np.bool_(True)) is True


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, [1]])
def test_an_integer_is_never_a_bool_a_float_a_string_or_none(value) -> None:
    with pytest.raises(ArgumentError, match=r"n=.*is not allowed; allowed: an integer"):
        check_int("n", value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.5", None])
def test_a_real_is_finite_and_never_a_bool_or_a_string(value) -> None:
    with pytest.raises(ArgumentError, match=r"x=.*allowed: a finite number"):
        check_real("x", value)


def test_none_is_allowed_only_when_asked_for() -> None:
    assert check_int("n", None, allow_none=True) is None
    assert check_real("x", None, allow_none=True) is None
    assert check_choice("c", None, ("a",), allow_none=True) is None
    with pytest.raises(ArgumentError, match=r"an integer >= 1, or None"):
        check_int("n", 0, low=1, allow_none=True)


def test_choices_compare_by_equality_and_list_what_is_allowed() -> None:
    assert check_choice("profile", "gpu", ("smoke", "laptop", "gpu")) == "gpu"
    with pytest.raises(ArgumentError, match=r"profile=3 \(int\).*one of smoke, laptop, gpu"):
        check_choice("profile", 3, ("smoke", "laptop", "gpu"))
    with pytest.raises(ArgumentError, match=r"c=\[1\] \(list\)"):
        check_choice("c", [1], ("a", "b"))
    with pytest.raises(ArgumentError):  # True == 1, but a bool is not the integer option 1
        check_choice("c", True, (0, 1))


def test_the_hint_follows_the_allowed_values() -> None:
    with pytest.raises(ArgumentError, match=r"allowed: an integer >= 1\. try 8"):
        check_int("n", 0, low=1, hint="try 8")


@given(st.integers(), st.integers(-50, 50), st.integers(-50, 50))
def test_check_int_accepts_exactly_the_integers_in_range(value, low, high) -> None:
    inside = low <= value <= high
    try:
        assert check_int("n", value, low=low, high=high) == value
        assert inside
    except ArgumentError as error:
        assert not inside and f"n={value} (int)" in str(error)


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
    st.floats(-10, 10),
    st.booleans(),
    st.booleans(),
)
def test_check_real_accepts_exactly_the_finite_numbers_in_the_interval(
    value, low, high, low_open, high_open
) -> None:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    inside = math.isfinite(value) and above and below
    try:
        check_real("x", value, low=low, high=high, low_open=low_open, high_open=high_open)
        assert inside
    except ArgumentError as error:
        assert not inside and str(error).startswith("x=")


@given(st.one_of(st.text(), st.none(), st.lists(st.integers()), st.binary()))
def test_non_numbers_are_refused_by_every_numeric_check(value) -> None:
    for check in (check_int, check_real):
        if value is None:
            continue
        with pytest.raises(ArgumentError):
            check("v", value)


@pytest.mark.parametrize(
    "spec",
    [
        Integer(low=1, high=10),
        Integer(low=0, none="the profile's value"),
        Real(low=0, high=1, low_open=True, high_open=True),
        Real(low=0.0, high=1.0, none="the profile's value"),
        Choice(("token", "span")),
        Boolean(none="the profile's choice"),
        Text(),
        Text(max_length=5),
        Integer.seed(),
    ],
    ids=repr,
)
def test_every_spec_refuses_its_bad_values_and_takes_its_good_ones(spec) -> None:
    for value in spec.bad_values():
        with pytest.raises(ArgumentError, match=r"^p="):
            spec.check("p", value)
    for value in spec.good_values():
        spec.check("p", value)


@pytest.mark.parametrize("text", ["", " ", "\t", "\n  \r\n", "\u00a0\u3000"])
def test_text_that_is_only_whitespace_is_refused_and_the_message_says_so(text) -> None:
    with pytest.raises(ArgumentError, match=r"^query=.*at least one character besides whitespace"):
        Text().check("query", text)


def test_text_longer_than_its_bound_is_refused_with_its_length() -> None:
    assert Text(max_length=3).check("prompt", " ab") == " ab"
    with pytest.raises(ArgumentError, match=r"prompt='abcd' .*at most 3 characters.*has 4"):
        Text(max_length=3).check("prompt", "abcd")


def test_a_seed_is_bounded_by_what_torch_and_numpy_both_accept() -> None:
    # The bound is numpy's (legacy seeding, and scikit-learn's random_state, which 06 uses);
    # torch takes up to 2**64 - 1. Fresh generators: the tests' global RNGs stay as they are.
    assert MAX_SEED == 2**32 - 1
    torch.Generator().manual_seed(MAX_SEED)
    np.random.RandomState(MAX_SEED)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        np.random.RandomState(MAX_SEED + 1)
    with pytest.raises(ValueError, match="Overflow"):  # what a seed of 2**64 met before
        torch.Generator().manual_seed(2**64)
    for name, parameters in NOTEBOOK_PARAMETERS.items():
        seed = parameters.specs["seed"]
        assert seed.check("seed", MAX_SEED) == MAX_SEED, name
        assert MAX_SEED + 1 in seed.bad_values(), name
        for too_large in (MAX_SEED + 1, 2**64):
            with pytest.raises(ArgumentError, match=rf"seed={too_large} .*\[0, {MAX_SEED}\]"):
                seed.check("seed", too_large)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (Integer(low=1, high=10), (1, 10)),
        (Integer(low=1, none="the profile's steps"), (1, 1)),  # no greatest count to run
        (Real(low=0, high=1, low_open=True), (1e-3, 1)),
        (Real(low=0, high=5, high_open=True, none="the profile's"), (0, 5 - 1e-3)),
        (Choice(("token", "whole_word", "span")), ("token", "span")),
        (Boolean(none="the profile's"), (False, True)),
        (Text(max_length=13), ("a", "lend me your ")),
    ],
    ids=repr,
)
def test_the_ends_of_a_spec_are_its_least_and_greatest_allowed_values(spec, expected) -> None:
    assert ends(spec) == expected
    for value in expected:
        spec.check("p", value)


def test_the_long_end_of_unbounded_text_is_longer_than_any_model_reads() -> None:
    short, long = ends(Text())
    assert short == "a" and len(long) == 4000 and long.strip()


def test_parameters_validate_all_at_once_and_name_each_bad_one() -> None:
    parameters = Parameters(seed=Integer(low=0), rate=Real(low=0, high=1), name=Text())
    parameters.validate(seed=0, rate=0.5, name="x")
    with pytest.raises(ArgumentError) as caught:
        parameters.validate(seed=-1, rate=0.5, name="")
    assert "seed=-1" in str(caught.value) and "name=''" in str(caught.value)
    assert "rate" not in str(caught.value)
    with pytest.raises(ArgumentError, match=r"missing \['name'\], unknown \['sede'\]"):
        parameters.validate(sede=0, rate=0.5, seed=0)


def test_rules_check_values_that_depend_on_each_other_after_each_is_allowed() -> None:
    def whole_heads(values):
        return None if values["n_embd"] % values["n_head"] == 0 else "n_embd=6, n_head=4"

    parameters = Parameters(n_embd=Integer(low=1), n_head=Integer(low=1), rules=(whole_heads,))
    parameters.validate(n_embd=8, n_head=4)
    with pytest.raises(ArgumentError, match=r"^these parameters do not fit together: n_embd=6"):
        parameters.validate(n_embd=6, n_head=4)
    with pytest.raises(ArgumentError, match=r"^n_head=0 \(int\)"):  # the value first, then rules
        parameters.validate(n_embd=6, n_head=0)
