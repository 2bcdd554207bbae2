"""Interactive views for the notebooks.

Every widget here is a thin view over a pure function that tests call directly: the
widget is never the only way to reach a result, and the notebooks run headless.
"""

from __future__ import annotations

import html
import io
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from sslm_lab.transformer import TransformerModel, attention_maps
from sslm_lab.viz import plot_attention_heatmap

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
        visible = html.escape(piece.replace(" ", "·").replace("\n", "⏎"))
        colour = TOKEN_COLOURS[i % len(TOKEN_COLOURS)]
        spans.append(
            f'<span style="background:{colour};padding:1px 2px;margin:1px;'
            f'font-family:monospace;border-radius:3px">{visible}</span>'
        )
    return "".join(spans)


def side_by_side_html(text: str, tokenizers: Mapping[str, Tokenizer]) -> str:
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


# ---------------------------------------------------------------------------- attention explorer

# A tokenizer function turns text into the tokens a model sees, as (pieces, ids).
TokenizerFn = Callable[[str], tuple[list[str], list[int]]]


def tokenizer_fn_for(tokenizer: Any) -> TokenizerFn:
    """Wrap a tokenizer as `text -> (pieces, ids)` for `attention_heatmap_data`.

    Accepts an sslm_lab tokenizer (`tokens` and `encode`) or a `transformers` tokenizer,
    which adds the special tokens its model was trained with ([CLS] ... [SEP] for BERT).
    """
    if hasattr(tokenizer, "convert_ids_to_tokens"):

        def encode_transformers(text: str) -> tuple[list[str], list[int]]:
            ids = tokenizer(text)["input_ids"]
            return tokenizer.convert_ids_to_tokens(ids), ids

        return encode_transformers
    if hasattr(tokenizer, "tokens") and hasattr(tokenizer, "encode"):
        return lambda text: (tokenizer.tokens(text), tokenizer.encode(text))
    raise TypeError(
        f"expected an sslm_lab tokenizer or a transformers tokenizer; got {type(tokenizer)}"
    )


def check_index(name: str, value: int, count: int, what: str) -> None:
    """Raise ValueError unless 0 <= value < count, naming the value and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < count:
        raise ValueError(
            f"{name}={value!r} is not a valid index: the model has {count} {what}, "
            f"numbered 0 to {count - 1}"
        )


def attention_heatmap_data(
    model: TransformerModel, tokenizer_fn: TokenizerFn, text: str, layer: int, head: int
) -> tuple[list[str], np.ndarray]:
    """The tokens of `text` and one head's attention weights over them.

    model: any sslm_lab Transformer model (an encoder such as MiniLM loaded with
    `interop.bert_to_sslm`, a `CausalLM`, a checkpoint you trained). Returns (tokens,
    weights) with weights a float32 array (seq, seq): row i is how token i spreads its
    attention over the tokens, and sums to 1. Layers and heads are numbered from 0.
    """
    if not isinstance(model, TransformerModel):
        raise TypeError(
            f"expected an sslm_lab model; got {type(model).__name__}. Load Hugging Face weights "
            f"first with sslm_lab.interop.bert_to_sslm or gpt2_to_sslm"
        )
    check_index("layer", layer, model.config.n_layer, "layers")
    check_index("head", head, model.config.n_head, "heads per layer")
    tokens, ids = tokenizer_fn(text)
    if not ids:
        raise ValueError(f"the text {text!r} gives no tokens; give at least one character")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout: the picture must not change from one call to the next
    try:
        maps = attention_maps(model, torch.tensor([ids], device=device))
    finally:
        model.train(was_training)
    return list(tokens), maps[layer][0, head].float().cpu().numpy()


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed so the notebook does not show it twice."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def attention_explorer(
    model: TransformerModel,
    tokenizer_fn: TokenizerFn,
    lines: Sequence[str],
    layer: int = 0,
    head: int = 0,
    name: str = "model",
) -> widgets.VBox:
    """Pick a line, a layer and a head; see that head's attention over the line's tokens.

    A view over `attention_heatmap_data` and `viz.plot_attention_heatmap`. Children, in
    order: the line (Dropdown), the layer and the head (IntSliders), the heatmap (Image).
    """
    if not lines:
        raise ValueError("lines is empty: give at least one line of text to explore")
    check_index("layer", layer, model.config.n_layer, "layers")  # a slider would clamp it
    check_index("head", head, model.config.n_head, "heads per layer")
    line_box = widgets.Dropdown(
        options=list(lines), value=lines[0], description="line", layout=widgets.Layout(width="95%")
    )
    layer_slider = widgets.IntSlider(
        value=layer, min=0, max=model.config.n_layer - 1, description="layer"
    )
    head_slider = widgets.IntSlider(
        value=head, min=0, max=model.config.n_head - 1, description="head"
    )
    picture = widgets.Image(format="png")

    def render(_change: object = None) -> None:
        tokens, weights = attention_heatmap_data(
            model, tokenizer_fn, line_box.value, layer_slider.value, head_slider.value
        )
        title = f"{name} · layer {layer_slider.value}, head {head_slider.value}"
        picture.value = figure_png(plot_attention_heatmap(tokens, weights, title))

    for control in (line_box, layer_slider, head_slider):
        control.observe(render, names="value")
    render()
    return widgets.VBox([line_box, layer_slider, head_slider, picture])
