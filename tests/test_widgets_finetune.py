"""The passage explorer's pure functions and its widget without a kernel; 07's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.finetune import (
    plot_accuracy_vs_labels,
    plot_accuracy_vs_parameters,
    plot_overfitting,
)
from sslm_lab.lab.widgets.finetune import (
    genre_probabilities,
    highlight_names,
    passage_explorer,
    passage_report,
    report_html,
    tag_passage,
)

GENRES = ("comedy", "history", "tragedy")


class LetterTokenizer:
    """A stand-in tokenizer: one piece per letter, capitals 10-35, small letters 40-65."""

    cls_id, pad_id = 1, 0

    def encode(self, text: str) -> list[int]:
        return [self.piece(c) for c in text if c != " "]

    @staticmethod
    def piece(char: str) -> int:
        if "A" <= char <= "Z":
            return 10 + ord(char) - ord("A")
        if "a" <= char <= "z":
            return 40 + ord(char) - ord("a")
        return 70


class CapitalTagger(nn.Module):
    """Tags B-PER at every capital piece: a tagger whose answer is known."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        capital = ((ids >= 10) & (ids < 36)).float()
        return torch.stack([1 - capital, capital, torch.zeros_like(capital)], dim=-1)


class CountingClassifier(nn.Module):
    """logits (capital pieces, small pieces, 0): more capitals, more 'comedy'."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        ids = ids.flatten(1)  # chunks (batch, chunks, seq) are counted together
        capital = ((ids >= 10) & (ids < 36)).sum(-1).float()
        small = ((ids >= 40) & (ids < 66)).sum(-1).float()
        return torch.stack([capital, small, torch.zeros_like(capital)], dim=-1)


def test_tag_passage_tags_each_word_by_its_first_piece() -> None:
    tagged = tag_passage("Good Horatio, a word", LetterTokenizer(), CapitalTagger(), 64)
    assert tagged == [
        ("Good", "B-PER"),
        ("Horatio", "B-PER"),
        (",", "O"),
        ("a", "O"),
        ("word", "O"),
    ]


def test_tag_passage_keeps_only_the_words_that_fit() -> None:
    tagged = tag_passage("Good Horatio, a word", LetterTokenizer(), CapitalTagger(), 8)
    assert [word for word, _ in tagged] == ["Good"]  # [CLS] + 4 pieces; Horatio needs 7


def test_genre_probabilities_sum_to_one_and_follow_the_logits() -> None:
    p = genre_probabilities("ABC de", LetterTokenizer(), CountingClassifier(), GENRES, 32)
    assert list(p) == list(GENRES)
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["comedy"] > p["history"] > p["tragedy"]


def test_genre_probabilities_cut_the_passage_to_max_tokens() -> None:
    # [CLS] + "ab" only: the capitals after them are cut off
    p = genre_probabilities("abCDEFG", LetterTokenizer(), CountingClassifier(), GENRES, 3)
    assert p["history"] > p["comedy"]


def test_genre_probabilities_read_a_long_passage_in_chunks_as_training_does() -> None:
    seen = []

    class Recording(CountingClassifier):
        def forward(self, ids, mask=None):
            seen.append((ids.tolist(), None if mask is None else mask.tolist()))
            return super().forward(ids, mask)

    # chunks of 2 pieces after [CLS]: [ab] [CD] [EF] [G + padding]: 5 capitals, 2 small
    p = genre_probabilities("abCDEFG", LetterTokenizer(), Recording(), GENRES, 3, max_chunks=4)
    assert p["comedy"] > p["history"]
    ids, mask = seen[-1]
    assert ids == [[[1, 40, 41], [1, 12, 13], [1, 14, 15], [1, 16, 0]]]
    assert mask == [[[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0]]]
    # at most max_chunks chunks: [ab] [CD] is a tie of capitals and small letters
    p = genre_probabilities("abCDEFG", LetterTokenizer(), Recording(), GENRES, 3, max_chunks=2)
    assert p["comedy"] == pytest.approx(p["history"])
    with pytest.raises(ArgumentError, match="max_chunks"):
        genre_probabilities("ab", LetterTokenizer(), CountingClassifier(), GENRES, 3, max_chunks=0)


def test_bad_input_is_refused_with_the_parameter_named() -> None:
    with pytest.raises(ArgumentError, match="passage"):
        tag_passage("   ", LetterTokenizer(), CapitalTagger(), 16)
    with pytest.raises(ArgumentError, match="genres"):
        genre_probabilities("ab", LetterTokenizer(), CountingClassifier(), GENRES[:2], 16)
    with pytest.raises(ArgumentError, match="max_tokens"):
        genre_probabilities("ab", LetterTokenizer(), CountingClassifier(), GENRES, 1)
    with pytest.raises(ArgumentError, match="models"):
        passage_report("ab", LetterTokenizer(), {}, GENRES, 16)


def test_highlight_marks_names_and_escapes_html() -> None:
    text = highlight_names([("Good", "O"), ("Toby<", "B-PER"), ("Belch", "I-PER"), (",", "O")])
    assert text == "Good <mark>Toby&lt;</mark> <mark>Belch</mark>,"


def test_report_and_widget_follow_the_text_box() -> None:
    models = {"letters": (CountingClassifier(), CapitalTagger())}
    report = passage_report("Good Horatio", LetterTokenizer(), models, GENRES, 32)
    assert report[0]["names"] == ["Good", "Horatio"]
    assert "<mark>Horatio</mark>" in report_html(report)
    view = passage_explorer(LetterTokenizer(), models, GENRES, 32, "sweet Romeo")
    box, output = view.children
    assert "<mark>Romeo</mark>" in output.value and "sweet" in output.value
    box.value = "fair Juliet"
    assert "<mark>Juliet</mark>" in output.value and "Romeo" not in output.value
    box.value = "  "
    assert "type a passage" in output.value


def test_figures_draw() -> None:
    figures = [
        plot_accuracy_vs_labels(
            ["8", "128"], {"mlm · full": [0.4, 0.6]}, {"majority": 0.4}, "genre"
        ),
        plot_accuracy_vs_parameters([("lora", 1000, 0.5), ("full", 600_000, 0.6)]),
        plot_overfitting({"plain": ([1, 2], [0.5, 1.0], [0.4, 0.45])}),
    ]
    for figure in figures:
        assert figure_png(figure)[:4] == b"\x89PNG"
        plt.close(figure)
