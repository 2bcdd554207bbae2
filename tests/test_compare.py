"""The one way to compare two systems (sslm_lab.lab.compare).

Each test can fail: a known difference must be found and its mirror must be "worse"; equal
systems must mostly stay "not established"; the interval must cover the truth at about its
level in a simulation; seeds must be averaged inside each resample, and a few seed-level
numbers must get a t-interval; a loss flips the sides; bad input is refused by name; and
the sentence follows the verdict. Simulations use 999 resamples (not 9,999) to stay fast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sslm_lab.checks import ArgumentError
from sslm_lab.lab import compare as compare_module
from sslm_lab.lab.compare import (
    ALL_EQUAL,
    BOOTSTRAP_BCA,
    BOOTSTRAP_PERCENTILE,
    BOOTSTRAP_PERCENTILE_FALLBACK,
    T_INTERVAL,
    Comparison,
    compare,
    markdown_table,
    verdict,
)

NAMES = ("pretrained", "random init")


def correct(p: Any, size: Any, rng: np.random.Generator) -> np.ndarray:
    """0/1 correctness: each unit right with probability p (a number or an array of them)."""
    return (rng.random(size) < p).astype(float)


def paired_units(
    n: int, shift: float, rng: np.random.Generator, seeds: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two systems on the same n units: unit i is right with p_i + shift for a, p_i for b.

    The unit difficulty p_i is shared, so the two systems' scores are correlated, as on a
    real test set; the true difference of means is `shift` exactly.
    """
    p = rng.uniform(0.3, 0.8, size=n)
    size = (n,) if seeds is None else (seeds, n)
    return correct(p + shift, size, rng), correct(p, size, rng)


# ------------------------------------------------------------------- a known difference is found


def test_a_known_difference_is_better_and_its_mirror_worse() -> None:
    rng = np.random.default_rng(1)
    a, b = correct(0.8, 400, rng), correct(0.5, 400, rng)
    result = compare(a, b, names=NAMES, metric="accuracy")
    low, high = result.interval
    assert result.verdict == "better"
    assert result.method == BOOTSTRAP_BCA
    assert 0 < low < 0.3 < high, result.interval
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert (result.mean_a, result.mean_b, result.n_units, result.n_seeds) == (
        pytest.approx(a.mean()),
        pytest.approx(b.mean()),
        400,
        None,
    )

    mirror = compare(b, a, names=NAMES[::-1], metric="accuracy")
    assert mirror.verdict == "worse"
    assert mirror.difference == pytest.approx(-result.difference)
    assert mirror.interval == pytest.approx((-high, -low), abs=1e-9)


def test_the_same_scores_and_seed_give_the_same_interval() -> None:
    rng = np.random.default_rng(2)
    a, b = paired_units(150, 0.05, rng)
    first = compare(a, b, names=NAMES, metric="accuracy", seed=3)
    assert compare(a, b, names=NAMES, metric="accuracy", seed=3) == first
    assert compare(a, b, names=NAMES, metric="accuracy", seed=4).interval != first.interval


def test_the_interval_agrees_with_scipys_paired_bootstrap_of_the_difference() -> None:
    rng = np.random.default_rng(3)
    a, b = paired_units(120, 0.1, rng)
    for method, expected in (("BCa", BOOTSTRAP_BCA), ("percentile", BOOTSTRAP_PERCENTILE)):
        result = compare(
            a, b, names=NAMES, metric="accuracy", method=method, seed=5, confidence=0.8
        )
        reference = stats.bootstrap(
            (a, b),
            lambda x, y, axis: x.mean(axis) - y.mean(axis),
            paired=True,
            vectorized=True,
            confidence_level=0.8,
            method=method,
            rng=np.random.default_rng(5),
        ).confidence_interval
        assert result.method == expected
        assert result.interval == pytest.approx((reference.low, reference.high), abs=1e-12)


# ------------------------------------------------------- equal systems are mostly not established


def test_equal_systems_are_not_established_in_the_large_majority_of_datasets() -> None:
    rng = np.random.default_rng(4)
    verdicts = [
        compare(
            *paired_units(200, 0.0, rng), names=NAMES, metric="accuracy", n_resamples=999
        ).verdict
        for _ in range(100)
    ]
    # At 95 % about 5 in 100 datasets cross 0 by chance (binomial sd 2.2); allow 12.
    assert verdicts.count("not established") >= 88, verdicts


# ------------------------------------------------------------------------ coverage by simulation


def bootstrap_coverage(datasets: int = 200, confidence: float = 0.9) -> float:
    """How often the interval holds the true difference (0.1) over simulated test sets."""
    rng = np.random.default_rng(5)
    covered = 0
    for index in range(datasets):
        a, b = paired_units(100, 0.1, rng)
        low, high = compare(
            a,
            b,
            names=NAMES,
            metric="accuracy",
            confidence=confidence,
            n_resamples=999,
            seed=index,
        ).interval
        covered += low <= 0.1 <= high
    return covered / datasets


def test_the_bootstrap_interval_covers_the_true_difference_at_about_its_level() -> None:
    coverage = bootstrap_coverage(datasets=200, confidence=0.9)
    # Binomial sd of a coverage of 0.9 over 200 datasets: sqrt(0.9 * 0.1 / 200) = 0.021.
    # Measured here: 0.915 on these 200 (0.897 on 1,000), BCa on 100 units, 999 resamples.
    # Allow 3 sd either side.
    assert abs(coverage - 0.9) <= 3 * math.sqrt(0.9 * 0.1 / 200), coverage


def test_the_t_interval_over_three_seeds_covers_at_about_its_level() -> None:
    rng = np.random.default_rng(6)
    covered = 0
    for _ in range(2000):  # no resampling here, so many datasets are cheap
        b = rng.normal(0.45, 0.02, size=3)
        a = b + 0.3 + rng.normal(0, 0.02, size=3)
        low, high = compare(a, b, names=NAMES, metric="accuracy", unit="seeds").interval
        covered += low <= 0.3 <= high
    assert abs(covered / 2000 - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / 2000), covered


# --------------------------------------------------------------------------------- seeds x units


def test_seeds_are_averaged_inside_each_resample_of_the_units() -> None:
    rng = np.random.default_rng(7)
    a, b = paired_units(320, 0.1, rng, seeds=3)
    result = compare(a, b, names=NAMES, metric="accuracy", seed=11)
    assert (result.n_units, result.n_seeds) == (320, 3)
    assert result.mean_a == pytest.approx(a.mean())
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert "320 test examples × 3 seeds" in result.sentence()
    # Resampling units and averaging over seeds inside each resample is, for a mean, the
    # bootstrap of each unit's seed-averaged difference: one value per unit, 320 of them.
    per_unit = (a - b).mean(axis=0)
    for method in ("percentile", "BCa"):
        ours = compare(a, b, names=NAMES, metric="accuracy", seed=11, method=method).interval
        reference = stats.bootstrap(
            (per_unit,), np.mean, vectorized=True, method=method, rng=np.random.default_rng(11)
        ).confidence_interval
        # The same resamples; BCa may still land one step (1/960) apart, because its bias
        # correction counts resamples tied with the estimate and rounding breaks those ties.
        step = 1 / a.size if method == "BCa" else 1e-12
        assert ours == pytest.approx((reference.low, reference.high), abs=step * 1.01)


def test_the_seed_axis_is_not_taken_for_more_units() -> None:
    # Seeds that agree (the same scores three times) carry no more information than one
    # seed: the interval must be the one-seed interval, not one sqrt(3) times narrower.
    rng = np.random.default_rng(8)
    a, b = paired_units(200, 0.05, rng)
    once = compare(a, b, names=NAMES, metric="accuracy")
    thrice = compare(np.tile(a, (3, 1)), np.tile(b, (3, 1)), names=NAMES, metric="accuracy")
    assert thrice.interval == pytest.approx(once.interval, abs=1e-12)
    assert thrice.n_units == 200


def test_per_seed_scores_get_a_t_interval_not_a_bootstrap() -> None:
    a, b = [0.75, 0.74, 0.77], [0.43, 0.45, 0.44]
    result = compare(a, b, names=NAMES, metric="probe accuracy", unit="seeds")
    reference = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert result.method == T_INTERVAL
    assert result.interval == pytest.approx((reference.low, reference.high), abs=1e-12)
    # A bare bootstrap over these three values said 0.29-0.33 (PITFALLS.md): far too sure.
    assert result.interval[0] < 0.29 and result.interval[1] > 0.33
    assert result.verdict == "better"
    assert "by paired t-interval; 3 seeds" in result.sentence()


def test_fewer_than_ten_units_use_the_t_interval_whatever_method_is_asked() -> None:
    a, b = np.arange(9.0), np.arange(9.0)[::-1]
    assert compare(a, b, names=NAMES, metric="score", method="BCa").method == T_INTERVAL
    assert compare(a, b, names=NAMES, metric="score", method="t").method == T_INTERVAL
    many = np.arange(10.0)
    assert compare(many, many[::-1], names=NAMES, metric="score").method == BOOTSTRAP_BCA
    # With seeds, the t-interval is over the units' seed-averaged differences (df = units - 1),
    # not over every (seed, unit) score as if there were 3 x 6 independent units.
    rng = np.random.default_rng(12)
    a, b = rng.normal(1.0, 1.0, size=(3, 6)), rng.normal(0.0, 1.0, size=(3, 6))
    result = compare(a, b, names=NAMES, metric="score", confidence=0.9)
    reference = stats.ttest_rel(a.mean(axis=0), b.mean(axis=0)).confidence_interval(0.9)
    assert (result.method, result.n_units, result.n_seeds) == (T_INTERVAL, 6, 3)
    assert result.interval == pytest.approx((reference.low, reference.high), abs=1e-12)


# ------------------------------------------------------------------------ losses, margins, ties


def test_a_lower_loss_is_better() -> None:
    rng = np.random.default_rng(9)
    shared = rng.gamma(4.0, 0.5, size=300)  # per-sequence difficulty, shared by both systems
    low_loss = shared + rng.normal(0.0, 0.2, size=300)
    high_loss = shared + 0.15 + rng.normal(0.0, 0.2, size=300)
    better = compare(low_loss, high_loss, names=NAMES, metric="loss", higher_is_better=False)
    assert better.difference < 0 and better.interval[1] < 0
    assert better.verdict == "better"
    assert "loss (lower is better)" in better.sentence()
    worse = compare(high_loss, low_loss, names=NAMES, metric="loss", higher_is_better=False)
    assert worse.verdict == "worse"


def test_a_margin_asks_the_whole_interval_to_clear_it() -> None:
    assert verdict((0.2, 0.4)) == "better"
    assert verdict((0.2, 0.4), margin=0.1) == "better"
    assert verdict((0.2, 0.4), margin=0.25) == "not established"
    assert verdict((-0.4, -0.2), margin=0.1) == "worse"
    assert verdict((-0.4, -0.2), margin=0.1, higher_is_better=False) == "better"
    assert verdict((0.0, 0.4)) == "not established"  # an end on 0 does not clear it
    assert verdict((1e-17, 0.4)) == "not established"  # nor does float rounding of 0
    rng = np.random.default_rng(10)
    a, b = paired_units(400, 0.1, rng)
    result = compare(a, b, names=NAMES, metric="accuracy", margin=0.5)
    assert result.verdict == "not established"
    assert "smaller than the margin 0.500" in result.sentence()


def test_equal_paired_differences_give_the_point_as_the_interval() -> None:
    ones, zeros = np.ones(50), np.zeros(50)
    always = compare(ones, zeros, names=NAMES, metric="accuracy")
    assert (always.interval, always.method, always.verdict) == ((1.0, 1.0), ALL_EQUAL, "better")
    same = compare(ones, ones, names=NAMES, metric="accuracy")
    assert (same.interval, same.verdict) == ((0.0, 0.0), "not established")
    assert "every paired difference is +0.000" in same.sentence()


def test_a_degenerate_bca_falls_back_to_the_percentile_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # For a mean, BCa is degenerate only on data this module already catches as all-equal,
    # so let scipy's BCa return what it returns when degenerate: NaN ends.
    real_bootstrap = stats.bootstrap

    def bca_fails(*args: Any, **kwargs: Any) -> Any:
        result = real_bootstrap(*args, **kwargs)
        if kwargs["method"] == "BCa":
            result.confidence_interval = type(result.confidence_interval)(math.nan, math.nan)
        return result

    monkeypatch.setattr(compare_module.stats, "bootstrap", bca_fails)
    rng = np.random.default_rng(11)
    result = compare(*paired_units(100, 0.2, rng), names=NAMES, metric="accuracy")
    assert result.method == BOOTSTRAP_PERCENTILE_FALLBACK
    assert all(math.isfinite(end) for end in result.interval)


# ------------------------------------------------------------------------------------ bad input


GOOD = {"a": np.ones(20), "b": np.zeros(20), "names": NAMES, "metric": "accuracy"}


@pytest.mark.parametrize(
    ("changes", "name", "also"),
    [
        ({"b": np.zeros((2, 20))}, "b", ["(2, 20)", "(20,)"]),
        ({"a": np.ones((3, 20)), "b": np.zeros((3, 21))}, "b", ["(3, 21)", "(3, 20)"]),
        ({"a": np.r_[np.ones(19), np.nan]}, "a", ["NaN", "(19,)"]),
        ({"b": np.r_[np.zeros(19), np.inf]}, "b", ["infinite"]),
        ({"a": np.ones(1), "b": np.zeros(1)}, "a", ["at least 2 units"]),
        ({"a": np.ones((3, 1)), "b": np.zeros((3, 1))}, "a", ["unit='seeds'"]),
        ({"a": np.ones((2, 2, 2)), "b": np.zeros((2, 2, 2))}, "a", ["(2, 2, 2)"]),
        ({"a": ["x", "y"]}, "a", ["(units,)"]),
        ({"confidence": 0.0}, "confidence", ["(0, 1)"]),
        ({"confidence": 1.0}, "confidence", ["(0, 1)"]),
        ({"confidence": 95}, "confidence", ["(0, 1)"]),
        ({"method": "bootstrap"}, "method", ["BCa, percentile, t"]),
        ({"margin": -0.1}, "margin", [">= 0"]),
        ({"n_resamples": 10}, "n_resamples", [">= 99"]),
        ({"seed": -1}, "seed", [">= 0"]),
        ({"names": ("only one",)}, "names", ["two non-empty strings"]),
        ({"metric": ""}, "metric", ["non-empty string"]),
        ({"higher_is_better": 1}, "higher_is_better", ["True or False"]),
    ],
)
def test_bad_input_is_refused_by_name_before_any_work(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], name: str, also: list[str]
) -> None:
    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("resampling started before the input was checked")

    monkeypatch.setattr(compare_module, "_paired_bootstrap", no_work)
    monkeypatch.setattr(compare_module, "_t_interval", no_work)
    with pytest.raises(ArgumentError) as refusal:
        compare(**{**GOOD, **changes})
    message = str(refusal.value)
    assert message.startswith(f"{name}="), message
    assert "is not allowed; allowed:" in message
    for text in also:
        assert text in message


# ------------------------------------------------------------------- the sentence and the table


def made(low: float, high: float, **changes: Any) -> Comparison:
    fields: dict[str, Any] = {
        "name_a": "MLM-pretrained features",
        "name_b": "random init",
        "metric": "tagging accuracy at k = 4",
        "unit": "test sequences",
        "mean_a": 0.612,
        "mean_b": 0.488,
        "difference": 0.124,
        "interval": (low, high),
        "confidence": 0.95,
        "n_units": 640,
        "n_seeds": 3,
        "method": BOOTSTRAP_BCA,
    }
    return Comparison(**{**fields, **changes})


def test_the_sentence_states_the_numbers_and_the_verdict() -> None:
    assert made(0.081, 0.167).sentence() == (
        "MLM-pretrained features vs random init, tagging accuracy at k = 4: 0.612 vs 0.488, "
        "difference +0.124 (95 % interval +0.081 to +0.167 by paired bootstrap, BCa; "
        "640 test sequences × 3 seeds): **better**."
    )
    unsure = made(-0.02, 0.27, n_seeds=None, confidence=0.9).sentence()
    assert "90 % interval -0.020 to +0.270" in unsure and "640 test sequences)" in unsure
    assert "**not established** at this size: the interval includes 0" in unsure
    assert made(0.081, 0.167)._repr_markdown_() == made(0.081, 0.167).sentence()


@settings(max_examples=200, deadline=None)
@given(
    ends=st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=2).map(sorted),
    higher_is_better=st.booleans(),
    margin=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_no_sentence_claims_more_than_its_interval(
    ends: list[float], higher_is_better: bool, margin: float
) -> None:
    result = made(*ends, higher_is_better=higher_is_better, margin=margin)
    text = result.sentence()
    said = [word for word in ("**better**", "**worse**", "**not established**") if word in text]
    assert said == [f"**{result.verdict}**"]
    low, high = ends
    if result.verdict == "better":  # the whole interval lies on the good side of the margin
        assert low > margin if higher_is_better else high < -margin
    if result.verdict == "worse":
        assert high < -margin if higher_is_better else low > margin


@settings(max_examples=25, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=40),
    method=st.sampled_from(["BCa", "percentile"]),
)
def test_swapping_the_systems_mirrors_the_comparison(
    pairs: list[tuple[bool, bool]], method: str
) -> None:
    a, b = (np.array(scores, dtype=float) for scores in zip(*pairs, strict=True))
    forward = compare(a, b, names=NAMES, metric="accuracy", method=method, n_resamples=199)
    backward = compare(b, a, names=NAMES, metric="accuracy", method=method, n_resamples=199)
    mirror = {"better": "worse", "worse": "better", "not established": "not established"}
    assert backward.verdict == mirror[forward.verdict]
    assert backward.difference == pytest.approx(-forward.difference, abs=1e-12)
    low, high = forward.interval
    assert backward.interval == pytest.approx((-high, -low), abs=1e-9)


def test_a_markdown_table_has_a_row_per_comparison() -> None:
    table = markdown_table([made(0.081, 0.167), made(-0.02, 0.27, name_a="ELECTRA | small")])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| comparison |")
    assert lines[2].endswith("| **better** |") and lines[3].endswith("| **not established** |")
    assert "ELECTRA \\| small" in lines[3]  # a pipe in a name does not break the table
    with pytest.raises(ArgumentError, match=r"^comparisons="):
        markdown_table([])
