"""09_known_language's profile: its parameters (comma-separated lists), the label budgets
the pool can give, and its objectives against the recipes' table."""

from __future__ import annotations

import pytest

from sslm_lab.checks import ArgumentError
from sslm_lab.lab import profiles, recipes
from sslm_lab.lab.profiles.known_language import (
    OBJECTIVES,
    PARAMETERS,
    CommaSeparated,
    check_budgets,
)
from sslm_lab.lab.profiles.parameters import Choice, Integer


def test_the_objectives_are_the_recipes_less_random_init() -> None:
    assert set(OBJECTIVES) == set(recipes.OBJECTIVES) - {"random"}
    assert len(OBJECTIVES) == len(set(OBJECTIVES))
    for name in profiles.PROFILE_NAMES:
        sizes = profiles.get_profile(name).known_language
        assert set(sizes.objectives) <= set(OBJECTIVES)
        check_budgets(list(sizes.budgets), sizes.labelled_pool, 4)
        assert set(sizes.finetune_budgets) <= set(sizes.budgets)
        assert sizes.n_embd % sizes.n_head == 0
        assert 0 < min(sizes.snapshot_shares) and max(sizes.snapshot_shares) < 1


def test_a_list_of_names_is_parsed_and_checked_item_by_item() -> None:
    names = CommaSeparated(Choice(OBJECTIVES), none="the profile's")
    assert names.check("objectives", " mlm, clm ") == " mlm, clm "
    assert names.parse(" mlm, clm ") == ["mlm", "clm"]
    assert names.check("objectives", None) is None
    with pytest.raises(ArgumentError, match=r"objectives='mlm,bert'.*one of mlm, clm"):
        names.check("objectives", "mlm,bert")
    with pytest.raises(ArgumentError, match=r"objectives='mlm,mlm'.*no item twice"):
        names.check("objectives", "mlm,mlm")
    for bad in names.bad_values():
        with pytest.raises(ArgumentError, match=r"objectives="):
            names.check("objectives", bad)
    for good in names.good_values():
        names.check("objectives", good)


def test_a_list_of_budgets_must_rise_and_be_whole_numbers() -> None:
    budgets = CommaSeparated(Integer(low=1))
    assert budgets.parse("1,4,16") == [1, 4, 16]
    for bad in ("4,1", "1,1", "0,1", "1.5", "1,x", "", None, 3):
        with pytest.raises(ArgumentError, match=r"budgets="):
            budgets.check("budgets", bad)
    assert None in budgets.bad_values() and None not in budgets.good_values()


def test_a_budget_larger_than_the_pool_is_refused_before_anything_runs() -> None:
    check_budgets([1, 4, 16, 64], labelled_pool=1024, num_dialects=4)
    with pytest.raises(ArgumentError, match=r"budgets='1,300'.*k <= 256.*1024 sequences"):
        check_budgets([1, 300], labelled_pool=1024, num_dialects=4)


def test_the_notebook_parameters_name_the_bad_value() -> None:
    PARAMETERS.validate(seed=0, objectives=None, budgets="1,2", pretrain_steps=None)
    with pytest.raises(ArgumentError, match=r"objectives='gpt'") as caught:
        PARAMETERS.validate(seed=0, objectives="gpt", budgets="2,1", pretrain_steps=0)
    assert "budgets='2,1'" in str(caught.value) and "pretrain_steps=0" in str(caught.value)
