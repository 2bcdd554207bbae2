"""What the widgets and the figures of every notebook show the same way.

A token is drawn with its spaces and newlines made visible (· and ⏎), in an HTML widget
as in a Matplotlib tick label, so a reader sees " be" and "be" as different tokens
wherever they meet them. A widget shows a figure as PNG bytes in an Image.
"""

from __future__ import annotations

import html
import io

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def visible_token(token: str) -> str:
    """A token with its spaces and newlines made visible (· and ⏎)."""
    return token.replace(" ", "·").replace("\n", "⏎")


def visible_token_html(token: str) -> str:
    """`visible_token`, escaped for HTML: a token such as "<b>" is shown, not obeyed."""
    return html.escape(visible_token(token))


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed so the notebook does not show it twice."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
