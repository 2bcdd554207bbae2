"""The one way to compare two systems: per-unit scores in; a difference, an interval and a
verdict out; and the sentence a notebook prints, written from that verdict.

    result = compare(pretrained_correct, random_correct,
                     names=("MLM-pretrained features", "random init"),
                     metric="tagging accuracy at k = 4", unit="test sequences")
    result.verdict        # "better", "worse" or "not established"
    result.sentence()     # the Markdown sentence; a notebook cell shows `result` as it

Why pairing matters. Two systems are scored on the *same* units: the same test examples,
sequences or plays. Some units are hard for both systems and some easy for both, so the
two systems' scores move together, and most of the spread in either system's mean comes
from which units happened to be in the test set, not from the systems. The paired
difference d_i = a_i - b_i cancels what the two share; comparing two separate intervals
(one per system) does not, and calls far too many real differences "overlapping".

What a paired bootstrap is (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
ch. 6, 13-14). We have one test set, but we want to know how much the difference would
move had we drawn another test set of the same size. The bootstrap draws "other test sets"
from the one we have: pick n units at random *with replacement*, keeping each unit's two
scores together (that is the pairing), and compute the difference of means on that
resample. Repeated 9,999 times, the spread of these differences stands in for the spread
over test sets, and its middle 95 % is a 95 % interval. BCa (bias-corrected and
accelerated, ch. 14) moves the ends of that interval to correct for a bootstrap
distribution that is off-centre or skewed; it needs a few hundred units to be reliable,
and where it cannot be computed (e.g. every resample gives the same value) we fall back to
the plain percentile interval and say so.

Several seeds. Scores shaped (seeds, units) - e.g. 3 pretraining seeds x 320 test
examples - are compared by resampling the *units* (the many) and averaging over seeds
inside each resample. A bootstrap over three seed-level numbers would be far too sure of
itself: three values have only ten distinct resamples. Note what that interval then says:
it is about these seeds' average over test sets like this one; it does not know how much a
fresh pretraining seed would move the result (report the per-seed numbers beside it).

Few units. With fewer than `MIN_BOOTSTRAP_UNITS` units - e.g. one score per seed, 3 seeds
- there is nothing to bootstrap, and the interval is the classical paired t-interval on
the per-unit differences (Student's t with n - 1 degrees of freedom), named as such.

The verdict reads the interval, never the point estimate: "better" when the whole interval
lies on the good side of 0 (or of `margin`, a smallest difference that matters), "worse"
when it lies wholly on the bad side, "not established" otherwise. The sentence is written
from the verdict, so no sentence can claim a difference the data do not show.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from sslm_lab.checks import (
    ArgumentError,
    check_bool,
    check_choice,
    check_int,
    check_real,
    invalid,
)

Verdict = Literal["better", "worse", "not established"]

METHODS = ("BCa", "percentile", "t")  # what a caller may ask for
MIN_BOOTSTRAP_UNITS = 10  # below this, a bootstrap has too few distinct resamples: use t

# What `Comparison.method` says was done (the sentence prints it as it is).
BOOTSTRAP_BCA = "paired bootstrap, BCa"
BOOTSTRAP_PERCENTILE = "paired bootstrap, percentile"
BOOTSTRAP_PERCENTILE_FALLBACK = "paired bootstrap, percentile (BCa was degenerate)"
T_INTERVAL = "paired t-interval"
ALL_EQUAL = "none needed: every paired difference is the same"

# How many numbers one resampled array may hold at a time (x 8 bytes): scipy indexes the
# scores with a (resamples, units) index array, so 9,999 resamples of 3 x 640 scores would
# otherwise be 150 MB per system. Batching bounds that and is faster (it stays in cache).
_RESAMPLE_BUDGET = 2**21
_TIE = 1e-12  # differences this small are float rounding, not evidence (see `verdict`)


@dataclass(frozen=True)
class Comparison:
    """System a against system b on one metric, paired by unit.

    `difference` is mean_a - mean_b, always in that order; `interval` is (low, high) for
    that difference at `confidence`. `n_seeds` is None when the scores had no seed axis.
    The verdict is a property, computed from the interval, so it cannot disagree with it.
    """

    name_a: str
    name_b: str
    metric: str
    unit: str  # what one unit is, plural: "test examples", "sequences", "seeds"
    mean_a: float
    mean_b: float
    difference: float
    interval: tuple[float, float]
    confidence: float
    n_units: int
    n_seeds: int | None
    method: str
    higher_is_better: bool = True
    margin: float = 0.0

    @property
    def verdict(self) -> Verdict:
        """What the interval shows about a: "better", "worse" or "not established"."""
        return verdict(self.interval, higher_is_better=self.higher_is_better, margin=self.margin)

    def sentence(self, digits: int = 3) -> str:
        """The Markdown sentence a notebook prints, e.g.

        MLM-pretrained features vs random init, tagging accuracy at k = 4: 0.612 vs 0.488,
        difference +0.124 (95 % interval +0.081 to +0.167 by paired bootstrap, BCa; 640 test
        sequences × 3 seeds): **better**.
        """
        check_int("digits", digits, low=0, high=12)
        low, high = self.interval
        lower = " (lower is better)" if not self.higher_is_better else ""
        head = (
            f"{self.name_a} vs {self.name_b}, {self.metric}{lower}: "
            f"{self.mean_a:.{digits}f} vs {self.mean_b:.{digits}f}, "
            f"difference {self.difference:+.{digits}f}"
        )
        if self.method == ALL_EQUAL:
            how = f"every paired difference is {self.difference:+.{digits}f}; {self.size()}"
        else:
            how = (
                f"{_percent(self.confidence)} interval {low:+.{digits}f} to {high:+.{digits}f} "
                f"by {self.method}; {self.size()}"
            )
        if self.verdict != "not established":
            return f"{head} ({how}): **{self.verdict}**."
        # Say why nothing is claimed, so a reader does not take the point estimate for a result.
        if self.margin > 0:
            reason = (
                "the interval reaches differences smaller than the margin "
                f"{self.margin:.{digits}f} that matters"
            )
        else:
            reason = "the interval includes 0"
        return (
            f"{head} ({how}): **not established** at this size: {reason}, so these data do not "
            f"show that either is better."
        )

    def size(self) -> str:
        """How much data the interval rests on, e.g. "640 test sequences × 3 seeds"."""
        text = f"{self.n_units} {self.unit}"
        if self.n_seeds is not None:
            text += f" × {self.n_seeds} seed{'' if self.n_seeds == 1 else 's'}"
        return text

    def row(self, digits: int = 3) -> str:
        """This comparison as one row of `markdown_table`."""
        low, high = self.interval
        metric = self.metric + (" (lower is better)" if not self.higher_is_better else "")
        cells = [
            f"{self.name_a} vs {self.name_b}",
            metric,
            f"{self.mean_a:.{digits}f}",
            f"{self.mean_b:.{digits}f}",
            f"{self.difference:+.{digits}f}",
            f"{low:+.{digits}f} to {high:+.{digits}f} ({_percent(self.confidence)})",
            self.size(),
            self.method,
            f"**{self.verdict}**",
        ]
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    def _repr_markdown_(self) -> str:  # a notebook cell that ends in a Comparison shows this
        return self.sentence()


def markdown_table(comparisons: Sequence[Comparison], digits: int = 3) -> str:
    """Several comparisons as one Markdown table, one row each (see `Comparison.row`)."""
    if len(comparisons) == 0 or not all(isinstance(c, Comparison) for c in comparisons):
        raise ArgumentError(
            f"comparisons={comparisons!r} ({type(comparisons).__name__}) is not allowed; "
            "allowed: a non-empty sequence of Comparison"
        )
    header = (
        "| comparison | metric | a | b | difference a − b | interval | n | method | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([header, *(c.row(digits) for c in comparisons)])


def verdict(
    interval: tuple[float, float], *, higher_is_better: bool = True, margin: float = 0.0
) -> Verdict:
    """Read an interval for a - b: does it show a is better, worse, or neither?

    With higher_is_better, "better" needs low > +margin and "worse" needs high < -margin;
    for a loss (higher_is_better=False) the sides swap. An interval that reaches into
    [-margin, +margin] establishes nothing. An end must clear the margin by more than float
    rounding (`_TIE`): interpolating between bootstrap values of 0/1 scores can turn an end
    that is exactly 0 into 1e-17, and that must not read as "better".
    """
    low, high = interval
    above, below = low > margin + _TIE, high < -margin - _TIE
    if above:
        return "better" if higher_is_better else "worse"
    if below:
        return "worse" if higher_is_better else "better"
    return "not established"


def compare(
    a: Any,
    b: Any,
    *,
    names: tuple[str, str],
    metric: str,
    unit: str = "test examples",
    higher_is_better: bool = True,
    confidence: float = 0.95,
    margin: float = 0.0,
    method: str = "BCa",
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
    """Compare system a with system b on per-unit scores paired by unit.

    a, b: shape (units,) - one score per unit, e.g. 0/1 correctness per test example or a
        loss per sequence - or (seeds, units) for several training seeds, the same units in
        the same order for both systems. Booleans count as 0/1.
    names: what to call a and b in the sentence; metric: what the scores measure; unit:
        what one unit is, plural ("test sequences"; "seeds" when a, b hold one score per seed).
    higher_is_better: False for a loss (then a lower mean is "better").
    confidence: the interval's level, in (0, 1).
    margin: the smallest difference that matters (>= 0, in the metric's units); "better"
        and "worse" then need the whole interval beyond +margin / -margin.
    method: "BCa" (default) or "percentile" for the paired bootstrap, or "t" for the paired
        t-interval. With fewer than MIN_BOOTSTRAP_UNITS units, "t" is used whatever is
        asked, and `Comparison.method` says so.
    n_resamples, seed: the bootstrap's size and its random generator's seed (results are
        reproducible: the same scores and seed give the same interval).
    """
    # Refuse bad input before any work: every argument first, then the scores.
    name_a, name_b = _check_names(names)
    metric = _check_text("metric", metric)
    unit = _check_text("unit", unit)
    higher_is_better = bool(check_bool("higher_is_better", higher_is_better))
    confidence = float(
        check_real("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    )
    margin = float(check_real("margin", margin, low=0))
    method = check_choice("method", method, METHODS)
    n_resamples = int(
        check_int("n_resamples", n_resamples, low=99, hint="fewer make the interval's ends noisy")
    )
    seed = int(check_int("seed", seed, low=0))
    scores_a = _check_scores("a", a)
    scores_b = _check_scores("b", b)
    if scores_a.shape != scores_b.shape:
        raise ArgumentError(
            f"b=array of shape {scores_b.shape} ({type(b).__name__}) is not allowed; allowed: "
            f"the shape of a, {scores_a.shape}. The scores are paired by unit (and seed): "
            "score both systems on the same units, in the same order"
        )
    n_seeds = scores_a.shape[0] if scores_a.ndim == 2 else None
    # From here on, one layout for both cases: (seeds, units), one row when there are no seeds.
    scores_a, scores_b = np.atleast_2d(scores_a), np.atleast_2d(scores_b)
    n_units = scores_a.shape[1]
    if n_units < 2:
        raise ArgumentError(
            f"a=array of shape {np.shape(a)} ({type(a).__name__}) is not allowed; allowed: "
            "scores of at least 2 units. For one score per seed, pass the per-seed scores "
            "shaped (seeds,) with unit='seeds'"
        )

    # The per-unit paired difference, averaged over seeds: shape (units,). Its mean is the
    # difference of the two systems' means (a mean is linear); the t-interval reads its
    # spread, and the bootstrap below resamples the scores themselves, which for a mean
    # comes to resampling these values.
    per_unit = (scores_a - scores_b).mean(axis=0)
    difference = float(per_unit.mean())
    if np.all(per_unit == per_unit[0]):
        # Zero spread: every resample gives the same value, so the interval is the point
        # (BCa would divide 0 by 0, and a t-interval has a zero standard error).
        interval, used = (difference, difference), ALL_EQUAL
    elif method == "t" or n_units < MIN_BOOTSTRAP_UNITS:
        interval, used = _t_interval(per_unit, confidence), T_INTERVAL
    else:
        interval, used = _paired_bootstrap(
            scores_a,
            scores_b,
            confidence=confidence,
            method=method,
            n_resamples=n_resamples,
            seed=seed,
        )
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        metric=metric,
        unit=unit,
        mean_a=float(scores_a.mean()),
        mean_b=float(scores_b.mean()),
        difference=difference,
        interval=interval,
        confidence=confidence,
        n_units=n_units,
        n_seeds=n_seeds,
        method=used,
        higher_is_better=higher_is_better,
        margin=margin,
    )


def seed_averaged_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """The statistic: mean over units (`axis`), then over seeds (the first axis).

    a, b: (seeds, ..., units). scipy hands it resampled scores shaped (seeds, resamples,
    units), so the result has shape (resamples,); on the data itself, a scalar.
    """
    return (a.mean(axis=axis) - b.mean(axis=axis)).mean(axis=0)


def _paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, confidence: float, method: str, n_resamples: int, seed: int
) -> tuple[tuple[float, float], str]:
    """Interval for the seed-averaged difference by scipy's paired bootstrap.

    a, b: (seeds, units). With paired=True and axis=-1, scipy resamples the *unit* indices
    once per resample and applies them to every row of both arrays, so a unit keeps its
    scores under every seed and in both systems together; the seed axis rides along and
    `seed_averaged_difference` averages it away inside each resample.
    """

    def run(scipy_method: str) -> tuple[float, float]:
        batch = max(1, _RESAMPLE_BUDGET // a.size)
        with warnings.catch_warnings():
            # A degenerate BCa warns and returns NaN; we check for NaN and fall back below.
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # its 0/0 on the way to that NaN
            result = stats.bootstrap(
                (a, b),
                seed_averaged_difference,
                paired=True,
                vectorized=True,
                axis=-1,
                confidence_level=confidence,
                n_resamples=n_resamples,
                batch=batch,
                method=scipy_method,
                rng=np.random.default_rng(seed),
            )
        return float(result.confidence_interval.low), float(result.confidence_interval.high)

    if method == "BCa":
        low, high = run("BCa")
        if math.isfinite(low) and math.isfinite(high):
            return (low, high), BOOTSTRAP_BCA
        # BCa is undefined when (nearly) every resample lands on one side of the estimate,
        # e.g. a handful of units that differ at all; the percentile interval still is.
        return run("percentile"), BOOTSTRAP_PERCENTILE_FALLBACK
    return run("percentile"), BOOTSTRAP_PERCENTILE


def _t_interval(differences: np.ndarray, confidence: float) -> tuple[float, float]:
    """The paired t-interval: mean ± t(n-1) × sd / √n of the per-unit differences (n,)."""
    n = differences.size
    mean = float(differences.mean())
    standard_error = float(differences.std(ddof=1)) / math.sqrt(n)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=standard_error)
    return float(low), float(high)


def _check_scores(name: str, value: Any) -> np.ndarray:
    """`value` as a float array shaped (units,) or (seeds, units) with no NaN or infinity."""
    allowed = "finite scores shaped (units,) or (seeds, units)"
    try:
        scores = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        scores = None
    if scores is None:  # not numbers at all
        raise invalid(name, value, allowed)
    if scores.ndim not in (1, 2) or scores.size == 0:
        raise ArgumentError(
            f"{name}=array of shape {scores.shape} ({type(value).__name__}) is not allowed; "
            f"allowed: {allowed}"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ArgumentError(
            f"{name}=array of shape {scores.shape} with {int(bad.sum())} NaN or infinite "
            f"score(s), the first at index {first} ({type(value).__name__}) is not allowed; "
            f"allowed: {allowed}. Score every unit, or drop it from both systems"
        )
    return scores


def _check_names(names: Any) -> tuple[str, str]:
    ok = isinstance(names, tuple | list) and len(names) == 2
    if not ok or not all(isinstance(n, str) and n for n in names):
        raise invalid("names", names, "two non-empty strings, (name of a, name of b)")
    return names[0], names[1]


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(name, value, "a non-empty string")
    return value


def _percent(confidence: float) -> str:
    """0.95 -> "95 %", 0.975 -> "97.5 %"."""
    return f"{100 * confidence:.10g} %"
