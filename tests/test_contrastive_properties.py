"""Properties of the contrastive losses for any batch >= 2, any width, any temperature in
range: finite, >= 0 where the loss is a cross-entropy, equal to the formula written out
here in float64 numpy, and unchanged when a row is scaled (embeddings are normalised)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sslm_lab.contrastive import (
    MIN_TEMPERATURE,
    alignment,
    info_nce,
    nt_xent,
    symmetric_info_nce,
    uniformity,
)

FAST = settings(max_examples=40, deadline=None)
CLOSE = {"rel": 1e-7, "abs": 1e-9}

# log-uniform over the whole allowed range, from MIN_TEMPERATURE = 1e-4 up to 100
temperatures = st.floats(math.log10(MIN_TEMPERATURE), 2.0).map(lambda exponent: 10.0**exponent)
entries = st.floats(-10.0, 10.0, allow_subnormal=False)
scales = arrays(np.float64, st.integers(1, 12), elements=st.floats(1e-2, 1e2))


@st.composite
def paired_views(draw, extra_rows: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two views (batch, dim) and `extra_rows` (0 to that many) negatives (K, dim), every
    row long enough to have a direction."""
    batch, dim = draw(st.integers(2, 6)), draw(st.integers(1, 6))
    count = draw(st.integers(0, extra_rows))
    first = draw(arrays(np.float64, (batch, dim), elements=entries))
    second = draw(arrays(np.float64, (batch, dim), elements=entries))
    negatives = draw(arrays(np.float64, (count, dim), elements=entries))
    for rows in (first, second, negatives):
        assume(rows.size == 0 or np.linalg.norm(rows, axis=1).min() > 1e-3)
    return first, second, negatives


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def logsumexp(values: np.ndarray) -> float:
    top = values.max()
    return float(top + np.log(np.exp(values - top).sum()))


def direct_info_nce(queries, keys, temperature, negatives) -> float:
    """Mean over i of -log softmax(cos(q_i, candidates) / τ) at the positive k_i."""
    candidates = unit(np.concatenate([keys, negatives]))
    logits = unit(queries) @ candidates.T / temperature  # (batch, batch + K)
    return float(np.mean([logsumexp(row) - row[i] for i, row in enumerate(logits)]))


def direct_nt_xent(first, second, temperature) -> float:
    views = unit(np.concatenate([first, second]))  # (2 batch, dim)
    batch = len(first)
    losses = []
    for i in range(2 * batch):
        others = [j for j in range(2 * batch) if j != i]
        logits = views[others] @ views[i] / temperature
        partner = others.index((i + batch) % (2 * batch))
        losses.append(logsumexp(logits) - logits[partner])
    return float(np.mean(losses))


def scaled(rows: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each row multiplied by its own positive factor (the factors repeat as needed)."""
    return rows * np.resize(factors, len(rows))[:, None]


def tensor(rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rows)


@FAST
@given(views=paired_views(extra_rows=4), temperature=temperatures, factors=scales)
def test_info_nce_is_the_softmax_cross_entropy_at_the_positive(views, temperature, factors):
    first, second, negatives = views
    loss = info_nce(tensor(first), tensor(second), temperature, tensor(negatives)).item()
    assert math.isfinite(loss) and loss >= 0
    assert loss == pytest.approx(direct_info_nce(first, second, temperature, negatives), **CLOSE)
    again = info_nce(
        tensor(scaled(first, factors)),
        tensor(scaled(second, factors[::-1])),
        temperature,
        tensor(scaled(negatives, factors)),
    ).item()
    assert again == pytest.approx(loss, **CLOSE)
    in_float32 = info_nce(tensor(first).float(), tensor(second).float(), temperature).item()
    assert math.isfinite(in_float32) and in_float32 >= 0


@FAST
@given(views=paired_views(), temperature=temperatures, factors=scales)
def test_symmetric_info_nce_averages_both_directions(views, temperature, factors):
    first, second, nothing = views
    loss = symmetric_info_nce(tensor(first), tensor(second), temperature).item()
    both = direct_info_nce(first, second, temperature, nothing) + direct_info_nce(
        second, first, temperature, nothing
    )
    assert math.isfinite(loss) and loss >= 0
    assert loss == pytest.approx(both / 2, **CLOSE)
    again = symmetric_info_nce(
        tensor(scaled(first, factors)), tensor(scaled(second, factors)), temperature
    ).item()
    assert again == pytest.approx(loss, **CLOSE)


@FAST
@given(views=paired_views(), temperature=temperatures, factors=scales)
def test_nt_xent_scores_every_view_against_the_other_2n_minus_1(views, temperature, factors):
    first, second, _ = views
    loss = nt_xent(tensor(first), tensor(second), temperature).item()
    assert math.isfinite(loss) and loss >= 0
    assert loss == pytest.approx(direct_nt_xent(first, second, temperature), **CLOSE)
    again = nt_xent(
        tensor(scaled(first, factors)), tensor(scaled(second, factors)), temperature
    ).item()
    assert again == pytest.approx(loss, **CLOSE)
    in_float32 = nt_xent(tensor(first).float(), tensor(second).float(), temperature).item()
    assert math.isfinite(in_float32) and in_float32 >= 0


@FAST
@given(views=paired_views(), alpha=st.floats(1.0, 4.0), factors=scales)
def test_alignment_is_the_mean_distance_to_the_power_alpha(views, alpha, factors):
    # α >= 1: below it d^α has an infinite slope at 0, where rounding (1e-16) becomes 1e-8
    first, second, _ = views
    value = alignment(tensor(first), tensor(second), alpha).item()
    direct = float(np.mean(np.linalg.norm(unit(first) - unit(second), axis=1) ** alpha))
    assert math.isfinite(value) and 0 <= value <= 2**alpha + 1e-12
    assert value == pytest.approx(direct, **CLOSE)
    again = alignment(tensor(scaled(first, factors)), tensor(scaled(second, factors)), alpha)
    assert again.item() == pytest.approx(value, **CLOSE)


@FAST
@given(views=paired_views(), t=st.floats(-1.0, 3.0).map(lambda e: 10.0**e), factors=scales)
def test_uniformity_is_the_log_mean_gaussian_potential(views, t, factors):
    embeddings = views[0]
    value = uniformity(tensor(embeddings), t).item()
    points = unit(embeddings)
    pairs = [(i, j) for i in range(len(points)) for j in range(i + 1, len(points))]
    potentials = np.array([-t * np.sum((points[i] - points[j]) ** 2) for i, j in pairs])
    direct = logsumexp(potentials) - math.log(len(pairs))
    assert math.isfinite(value) and -4 * t - 1e-9 <= value <= 1e-12
    assert value == pytest.approx(direct, **CLOSE)
    again = uniformity(tensor(scaled(embeddings, factors)), t).item()
    assert again == pytest.approx(value, **CLOSE)
