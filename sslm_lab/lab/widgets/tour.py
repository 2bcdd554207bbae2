"""The tokenizer explorer of 00_tour: one text, cut into tokens by several tokenizers."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Protocol

import ipywidgets as widgets

from sslm_lab.lab.display import visible_token_html

# Alternating pastel backgrounds make token boundaries visible without a legend.
TOKEN_COLOURS = ("#fde2a7", "#c9e7f5", "#d8f0c8", "#f5cfe0")


class Tokenizer(Protocol):
    def tokens(self, text: str) -> list[str]: ...


def tokenize_side_by_side(
    text: str, tokenizers: Mapping[str, Tokenizer]
) -> dict[str, dict[str, object]]:
    """Tokenize `text` with each tokenizer: its pieces, their count and tokens per character."""
    rows: dict[str, dict[str, object]] = {}
    for name, tokenizer in tokenizers.items():
        pieces = tokenizer.tokens(text)
        rows[name] = {
            "tokens": pieces,
            "count": len(pieces),
            "tokens_per_char": len(pieces) / max(len(text), 1),
        }
    return rows


def tokens_html(pieces: list[str]) -> str:
    """Pieces as coloured, escaped HTML spans; spaces and newlines shown as · and ⏎."""
    spans = []
    for i, piece in enumerate(pieces):
        colour = TOKEN_COLOURS[i % len(TOKEN_COLOURS)]
        spans.append(
            f'<span style="background:{colour};padding:1px 2px;margin:1px;'
            f'font-family:monospace;border-radius:3px">{visible_token_html(piece)}</span>'
        )
    return "".join(spans)


def side_by_side_html(text: str, tokenizers: Mapping[str, Tokenizer]) -> str:
    """`tokenize_side_by_side` as HTML: per tokenizer, its counts and then its tokens."""
    rows = tokenize_side_by_side(text, tokenizers)
    parts = []
    for name, row in rows.items():
        parts.append(
            f"<p><b>{html.escape(name)}</b>: {row['count']} tokens, "
            f"{row['tokens_per_char']:.2f} per character</p>{tokens_html(row['tokens'])}"
        )
    return "".join(parts)


def tokenizer_explorer(tokenizers: Mapping[str, Tokenizer], text: str) -> widgets.VBox:
    """Type any text and see it tokenized by every tokenizer in `tokenizers`."""
    box = widgets.Textarea(value=text, description="text", layout=widgets.Layout(width="95%"))
    view = widgets.HTML(value=side_by_side_html(text, tokenizers))

    def update(change: dict) -> None:
        view.value = side_by_side_html(change["new"], tokenizers)

    box.observe(update, names="value")
    return widgets.VBox([box, view])
