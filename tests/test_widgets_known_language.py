"""The language explorer's pure function and its widget without a kernel; 09's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from sslm_lab.checks import ArgumentError
from sslm_lab.data.hmm_language import make_language
from sslm_lab.lab.viz.known_language import plot_accuracy_bands, plot_language, plot_limit_curves
from sslm_lab.lab.widgets.known_language import (
    ROWS,
    language_explorer,
    language_limits,
    limits_html,
)

SMALL = make_language(num_classes=6, num_words=30, num_dialects=3, length=10).settings


def test_the_limits_are_the_exact_optima_and_the_counted_baselines() -> None:
    limits = language_limits(3, 2, 0.5, settings=SMALL, sequences=300)
    assert set(limits) == {key for key, _ in ROWS}
    assert limits["tagging_chance"] == pytest.approx(1 / 6)
    assert limits["dialect_chance"] == pytest.approx(1 / 3)
    assert limits["most_frequent_class"] <= limits["bayes_tagging"] + 0.02
    assert limits["clm_floor"] < limits["bigram"] and limits["clm_floor"] < limits["unigram"]
    assert limits == language_limits(3, 2, 0.5, settings=SMALL, sequences=300)  # seeded


def test_the_knobs_move_the_optima_the_way_they_should() -> None:
    one_class_a_word = language_limits(1, 2, 0.5, settings=SMALL, sequences=200)
    assert one_class_a_word["bayes_tagging"] == one_class_a_word["most_frequent_class"] == 1.0
    one_grammar = language_limits(3, 2, 0.0, settings=SMALL, sequences=600)
    unrelated = language_limits(3, 2, 1.0, settings=SMALL, sequences=600)
    assert one_grammar["bayes_dialect"] < 0.45 < 0.8 < unrelated["bayes_dialect"]


def test_bad_knobs_are_refused_with_their_name() -> None:
    with pytest.raises(ArgumentError, match=r"ambiguity=0"):
        language_limits(0, 2, 0.5, settings=SMALL)
    with pytest.raises(ArgumentError, match=r"dialect_distance=1.5"):
        language_limits(2, 2, 1.5, settings=SMALL)
    with pytest.raises(ArgumentError, match=r"sequences=1"):
        language_limits(2, 2, 0.5, settings=SMALL, sequences=1)


def test_the_table_shows_every_row_and_the_reference_column() -> None:
    limits = language_limits(2, 2, 0.5, settings=SMALL, sequences=100)
    table = limits_html(limits, reference=limits)
    assert table.count("<tr>") == len(ROWS) + 1
    assert "the notebook's language" in table and f"{limits['clm_floor']:.3f}" in table
    assert "the notebook's language" not in limits_html(limits)


def test_the_explorer_recomputes_when_a_slider_moves() -> None:
    explorer = language_explorer(SMALL, sequences=100)
    sliders, output = explorer.children
    ambiguity, successors, distance = sliders.children
    assert (ambiguity.value, successors.value) == (SMALL["ambiguity"], SMALL["successors"])
    before = output.value
    ambiguity.value = 1
    assert output.value != before
    expected = language_limits(1, successors.value, distance.value, settings=SMALL, sequences=100)
    assert f"{expected['bayes_tagging']:.3f}" in output.value


def test_the_figures_draw() -> None:
    language = make_language(num_classes=4, num_words=12, ambiguity=2, successors=2, num_dialects=2)
    fig = plot_language(language.transitions.numpy(), language.emissions.numpy())
    assert len(fig.axes) == 2 + 1 + 2  # two dialects, the emissions, two colour bars
    plt.close(fig)
    fig = plot_limit_curves({"causal LM": ([0, 10], [5.5, 5.0], {"optimum": 4.9, "bigram": 5.1})})
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)
    fig = plot_accuracy_bands(
        [1, 4],
        {"mlm": ([0.1, 0.3], [0.05, 0.25], [0.15, 0.35])},
        {"Bayes": 0.86, "baseline": [0.1, 0.2], "chance": 0.05},
        per_seed={"mlm": np.array([[0.1, 0.3], [0.12, 0.29]])},
    )
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)
    fig = plot_accuracy_bands(
        [0, 0.5, 1], {"a": ([0.1] * 3, [0.0] * 3, [0.2] * 3)}, {}, log_x=False
    )
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)
