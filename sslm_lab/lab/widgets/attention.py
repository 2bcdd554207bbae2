"""The attention explorer of 01_attention: pick a line, a layer and a head; see where each
token looks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch

from sslm_lab.checks import check_int
from sslm_lab.eval_mode import evaluating
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.attention import plot_attention_heatmap
from sslm_lab.transformer import TransformerModel, attention_maps

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


def check_index(name: str, value: int, count: int, what: str) -> int:
    """`value` if it is an index 0 .. count - 1 of the model's `what` (layers, heads)."""
    return check_int(name, value, low=0, high=count - 1, hint=f"the model has {count} {what}")


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
    # No dropout: the picture must not change from one call to the next.
    with evaluating(model):
        maps = attention_maps(model, torch.tensor([ids], device=device))
    return list(tokens), maps[layer][0, head].float().cpu().numpy()


def attention_explorer(
    model: TransformerModel,
    tokenizer_fn: TokenizerFn,
    lines: Sequence[str],
    layer: int = 0,
    head: int = 0,
    name: str = "model",
) -> widgets.VBox:
    """Pick a line, a layer and a head; see that head's attention over the line's tokens.

    A view over `attention_heatmap_data` and `viz.attention.plot_attention_heatmap`.
    Children, in order: the line (Dropdown), the layer and the head (IntSliders), the
    heatmap (Image).
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
