"""The language explorer of 09_known_language: move ambiguity, sparsity and dialect
distance, and watch the exact optimum and the baselines move.

Everything shown is computed exactly or counted; nothing is trained: `language_limits`
builds the language, samples from it and runs the forward-backward algorithm, in about a
second for a thousand sequences.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np

from sslm_lab.checks import check_int
from sslm_lab.data.hmm_language import (
    bigram_cross_entropy,
    forward_backward,
    make_language,
    most_frequent_class,
    unigram_cross_entropy,
)

# What `language_limits` returns, in the order `limits_html` shows it: (key, what it is).
ROWS = (
    ("bayes_tagging", "tagging: Bayes-optimal tagger"),
    ("most_frequent_class", "tagging: most frequent class of each word"),
    ("tagging_chance", "tagging: chance (1 / classes)"),
    ("bayes_dialect", "dialect: Bayes-optimal classifier"),
    ("dialect_chance", "dialect: chance (1 / dialects)"),
    ("clm_floor", "causal LM: the true model, nats per token"),
    ("bigram", "causal LM: bigram (add-1), nats per token"),
    ("unigram", "causal LM: unigram (add-1), nats per token"),
)


def language_limits(
    ambiguity: int,
    successors: int,
    dialect_distance: float,
    *,
    settings: Mapping[str, object] | None = None,
    sequences: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The exact optima and the counting baselines of the language with these knobs.

    settings: the other knobs of `make_language` (num_classes, num_words, ...), e.g. the
    notebook's language's `settings`; `ambiguity`, `successors` and `dialect_distance`
    replace theirs. The optima are measured on `sequences` sequences drawn with `seed`;
    the baselines are counted on as many more (seed + 1): the most frequent class of each
    word from their hidden classes, unigram and bigram frequencies from their words.
    Bad knobs are refused by `make_language` with a message that names them.
    """
    sequences = check_int("sequences", sequences, low=2)
    seed = check_int("seed", seed, low=0)
    knobs = {key: value for key, value in dict(settings or {}).items() if key != "seed"}
    knobs.update(ambiguity=ambiguity, successors=successors, dialect_distance=dialect_distance)
    language = make_language(**knobs, seed=int(dict(settings or {}).get("seed", 0)))
    test, counted = language.sample(sequences, seed=seed), language.sample(sequences, seed=seed + 1)
    posteriors = forward_backward(language, test.words)
    table = most_frequent_class(
        counted.words, counted.classes, language.num_words, language.num_classes
    )
    words = language.num_words
    return {
        "bayes_tagging": _mean(posteriors.class_posterior.argmax(-1) == test.classes),
        "most_frequent_class": _mean(table[test.words] == test.classes),
        "tagging_chance": 1 / language.num_classes,
        "bayes_dialect": _mean(posteriors.dialect_posterior.argmax(-1) == test.dialects),
        "dialect_chance": 1 / language.num_dialects,
        "clm_floor": -posteriors.next_word_log_prob.mean().item(),
        "bigram": bigram_cross_entropy(counted.words, test.words, words),
        "unigram": unigram_cross_entropy(counted.words, test.words, words),
    }


def _mean(correct) -> float:
    return float(np.asarray(correct, dtype=np.float64).mean())


def limits_html(limits: Mapping[str, float], reference: Mapping[str, float] | None = None) -> str:
    """A table of `language_limits`' numbers, with a column for `reference` (e.g. the
    notebook's language) when given."""
    head = "<tr><th>quantity</th><th>these knobs</th>"
    head += "<th>the notebook's language</th></tr>" if reference else "</tr>"
    rows = []
    for key, label in ROWS:
        cells = f"<td>{label}</td><td>{limits[key]:.3f}</td>"
        if reference:
            cells += f"<td>{reference[key]:.3f}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def language_explorer(
    settings: Mapping[str, object], sequences: int = 1000, seed: int = 0
) -> widgets.VBox:
    """Three sliders (ambiguity, successors, dialect distance) over `language_limits`,
    starting at `settings` (the language's knobs), and the table of `limits_html` beside
    the starting language's numbers. Children: the sliders (HBox), the table (HTML)."""
    classes = int(settings["num_classes"])
    ambiguity = widgets.IntSlider(
        value=int(settings["ambiguity"]), min=1, max=classes, description="ambiguity"
    )
    successors = widgets.IntSlider(
        value=int(settings["successors"]), min=1, max=classes, description="successors"
    )
    distance = widgets.FloatSlider(
        value=float(settings["dialect_distance"]),
        min=0.0,
        max=1.0,
        step=0.05,
        description="dialect distance",
        style={"description_width": "initial"},
    )

    def limits() -> dict[str, float]:
        return language_limits(
            ambiguity.value,
            successors.value,
            distance.value,
            settings=settings,
            sequences=sequences,
            seed=seed,
        )

    reference = limits()
    output = widgets.HTML()

    def show(change: dict | None = None) -> None:
        output.value = limits_html(limits(), reference)

    for slider in (ambiguity, successors, distance):
        slider.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([ambiguity, successors, distance]), output])
