"""The embedding explorer of 06_contrastive: a line in, its nearest lines and their works out."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from torch import Tensor

from sslm_lab.checks import check_int, invalid

Embed = Callable[[list[str]], Tensor]  # lines -> (len(lines), dim) sentence embeddings


def nearest_lines(
    query: str,
    embed: Embed,
    lines: Sequence[str],
    embeddings: Tensor,
    works: Sequence[str],
    k: int = 5,
) -> list[tuple[str, str, float]]:
    """The k lines most similar to `query` by cosine similarity: (line, work, similarity).

    lines and works: the pool (n,) and each line's work; embeddings: (n, dim), `embed` of
    the pool. `query` is embedded with the same `embed`. A pool line identical to the
    query is left out, so picking a line from the pool shows its neighbours, not itself.
    """
    k = check_int("k", k, low=1)
    if not query.strip():
        raise invalid("query", query, "a line with some text")
    if not len(lines) == len(works) == len(embeddings):
        raise invalid(
            "len(lines), len(works), len(embeddings)",
            (len(lines), len(works), len(embeddings)),
            "one work and one embedding per line",
        )
    with torch.no_grad():
        query_vector = F.normalize(embed([query]).float(), dim=1)  # (1, dim)
        similarity = (F.normalize(embeddings.float(), dim=1) @ query_vector.T)[:, 0]  # (n,)
    same = torch.tensor([line == query for line in lines], dtype=torch.bool)
    similarity = similarity.masked_fill(same, float("-inf"))
    best = similarity.topk(min(k, int((~same).sum()))).indices.tolist()
    return [(lines[i], works[i], float(similarity[i])) for i in best]


def neighbours_html(query: str, neighbours: Sequence[tuple[str, str, float]]) -> str:
    """The query, then a table of its neighbours: similarity, work, line."""
    rows = "".join(
        f"<tr><td>{similarity:.3f}</td><td><i>{html.escape(work)}</i></td>"
        f"<td>{html.escape(line)}</td></tr>"
        for line, work, similarity in neighbours
    )
    return (
        f"<p><b>{html.escape(query)}</b></p><table>"
        f"<tr><th>cosine</th><th>work</th><th>line</th></tr>{rows}</table>"
    )


def embedding_explorer(
    encoders: Mapping[str, tuple[Embed, Tensor]],
    lines: Sequence[str],
    works: Sequence[str],
    query: str,
    suggestions: Sequence[str] = (),
    k: int = 5,
) -> widgets.VBox:
    """Pick or type a line and an encoder; see the line's k nearest neighbours in the pool.

    A view over `nearest_lines` and `neighbours_html`. encoders: name -> (embed, the
    pool's embeddings by it). Children, in order: the encoder (Dropdown), the line
    (Combobox: type, or pick one of `suggestions`), k (IntSlider) and the result (HTML).
    """
    encoder_menu = widgets.Dropdown(options=list(encoders), description="encoder")
    line_box = widgets.Combobox(
        value=query,
        options=list(suggestions),
        description="line",
        ensure_option=False,
        continuous_update=False,  # embed on Enter, not on every keystroke
        layout=widgets.Layout(width="95%"),
    )
    k_slider = widgets.IntSlider(value=k, min=1, max=20, description="neighbours")
    view = widgets.HTML()

    def render(_change: object = None) -> None:
        embed, embeddings = encoders[encoder_menu.value]
        try:
            found = nearest_lines(line_box.value, embed, lines, embeddings, works, k_slider.value)
        except ValueError as error:
            view.value = f"<p style='color:#b00'>{html.escape(str(error))}</p>"
            return
        view.value = neighbours_html(line_box.value, found)

    for control in (encoder_menu, line_box, k_slider):
        control.observe(render, names="value")
    render()
    return widgets.VBox([encoder_menu, line_box, k_slider, view])
