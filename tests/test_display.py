"""What widgets and figures show the same way: visible tokens and a figure as PNG bytes."""

from __future__ import annotations

import matplotlib.pyplot as plt

from sslm_lab.lab.display import figure_png, visible_token, visible_token_html


def test_visible_token_shows_spaces_and_newlines_and_nothing_else() -> None:
    assert visible_token(" a\n<b>") == "·a⏎<b>"
    assert visible_token("be") == "be"
    assert visible_token("") == ""


def test_visible_token_html_escapes_after_making_whitespace_visible() -> None:
    assert visible_token_html(" a\n<b>") == "·a⏎&lt;b&gt;"
    assert visible_token_html('"&') == "&quot;&amp;"


def test_figure_png_gives_png_bytes_and_closes_the_figure() -> None:
    plt.close("all")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert plt.fignum_exists(fig.number)
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(fig.number), "the notebook would show the figure twice"
