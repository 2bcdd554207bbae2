"""Property-based tests of few-shot sampling: exactly k of each class, indices of the
pool, sorted and distinct, the same for the same seed, and nested budgets (the k=8
draw is inside the k=32 draw). A class with fewer than k examples is an error."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sslm_lab.checks import ArgumentError
from sslm_lab.finetune import few_shot_indices

# 1 to 5 classes; a pool of up to 80 labelled examples
LABELS = st.integers(1, 5).flatmap(
    lambda classes: st.lists(st.integers(0, classes - 1), min_size=1, max_size=80)
)
SEEDS = st.integers(0, 2**31 - 1)


@settings(max_examples=80, deadline=None)
@given(labels=LABELS, seed=SEEDS, data=st.data())
def test_exactly_k_of_each_class_from_the_pool_sorted_and_reproducible(labels, seed, data):
    counts = Counter(labels)
    k = data.draw(st.integers(1, min(counts.values())), label="k")
    chosen = few_shot_indices(labels, k, seed)
    assert chosen == sorted(set(chosen))  # sorted, no index twice
    assert all(0 <= i < len(labels) for i in chosen)  # within the pool
    assert Counter(labels[i] for i in chosen) == {c: k for c in counts}  # exactly k each
    assert chosen == few_shot_indices(labels, k, seed)  # reproducible
    assert chosen == few_shot_indices(torch.tensor(labels), k, seed)  # whatever holds them
    assert chosen == few_shot_indices(np.array(labels), k, seed)


@settings(max_examples=80, deadline=None)
@given(labels=LABELS, seed=SEEDS, data=st.data())
def test_budgets_are_nested_for_one_seed(labels, seed, data):
    smallest = min(Counter(labels).values())
    large = data.draw(st.integers(1, smallest), label="large k")
    small = data.draw(st.integers(1, large), label="small k")
    assert set(few_shot_indices(labels, small, seed)) <= set(few_shot_indices(labels, large, seed))
    everything = few_shot_indices(labels, None, seed)
    assert everything == list(range(len(labels)))
    assert set(few_shot_indices(labels, large, seed)) <= set(everything)


@settings(max_examples=40, deadline=None)
@given(labels=LABELS, seed=SEEDS, extra=st.integers(1, 5))
def test_a_class_with_fewer_than_k_is_an_error_naming_it(labels, seed, extra):
    counts = Counter(labels)
    smallest = min(counts, key=lambda c: (counts[c], c))
    k = counts[smallest] + extra
    with pytest.raises(ArgumentError, match=f"class {smallest} has: it has {counts[smallest]} "):
        few_shot_indices(labels, k, seed)
