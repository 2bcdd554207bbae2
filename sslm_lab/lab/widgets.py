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

from sslm_lab.generation import generate_text
from sslm_lab.lab.viz import plot_attention_heatmap
from sslm_lab.masking import IGNORE_INDEX, STRATEGIES, mask_tokens, word_ids_from_pieces
from sslm_lab.transformer import TransformerModel, attention_maps

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


# ---------------------------------------------------------------------------- masking playground

# What the model reads at a selected position, and the colour it is shown in.
MASKING_KINDS = {
    "mask": ("#f6a5a5", "replaced by [MASK]"),
    "random": ("#f9d38b", "replaced by a random token"),
    "kept": ("#b6e3ad", "kept, but still predicted"),
}


def masking_example(
    tokenizer: Any, text: str, mask_rate: float = 0.15, strategy: str = "token", seed: int = 0
) -> list[dict[str, Any]]:
    """BERT-mask the tokens of `text` once and describe every token.

    tokenizer: an sslm_lab tokenizer (`encode`, `tokens`, `vocab_size`, `special_ids`,
    `mask_id`). The draw is `masking.mask_tokens` with a generator seeded by `seed`;
    whole-word masking finds the words with `masking.word_ids_from_pieces`. Returns one
    dict per token: `piece` (the original text), `shown` (the text the model reads),
    `label` (the text it must predict, None where nothing is predicted) and `kind`:
    "plain", "mask", "random" or "kept".
    """
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("the text gives no tokens; type at least one character")
    pieces = tokenizer.tokens(text)
    input_ids = torch.tensor([ids])  # (1, seq)
    # Each token's own piece, looked up by its position: enough to find the words.
    positions = torch.arange(len(ids))[None]
    words = word_ids_from_pieces(positions, pieces) if strategy == "whole_word" else None
    masked, labels = mask_tokens(
        input_ids,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids.values(),
        mask_rate=mask_rate,
        strategy=strategy,
        word_ids=words,
        generator=torch.Generator().manual_seed(seed),
    )
    rows = []
    for piece, original, shown, label in zip(
        pieces, ids, masked[0].tolist(), labels[0].tolist(), strict=True
    ):
        if label == IGNORE_INDEX:
            kind = "plain"
        elif shown == tokenizer.mask_id:
            kind = "mask"
        else:
            kind = "kept" if shown == original else "random"
        rows.append(
            {
                "piece": piece,
                "shown": piece if kind in ("plain", "kept") else tokenizer.id_to_token(shown),
                "label": None if kind == "plain" else piece,
                "kind": kind,
            }
        )
    return rows


def _visible(piece: str) -> str:
    return html.escape(piece.replace(" ", "·").replace("\n", "⏎"))


def masking_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """`masking_example`'s rows as HTML: each token shows what the model reads (coloured by
    kind) above the label it must predict; a summary line counts each kind."""
    counts = {kind: sum(row["kind"] == kind for row in rows) for kind in MASKING_KINDS}
    selected = sum(counts.values())
    legend = " ".join(
        f'<span style="background:{colour};padding:1px 4px;border-radius:3px">'
        f"{html.escape(meaning)}: {counts[kind]}</span>"
        for kind, (colour, meaning) in MASKING_KINDS.items()
    )
    cells = []
    for row in rows:
        colour = MASKING_KINDS[row["kind"]][0] if row["kind"] in MASKING_KINDS else "#eeeeee"
        label = _visible(row["label"]) if row["label"] is not None else "&nbsp;"
        cells.append(
            '<span style="display:inline-block;text-align:center;margin:1px;'
            'font-family:monospace;vertical-align:top">'
            f'<span style="background:{colour};padding:1px 2px;border-radius:3px">'
            f"{_visible(row['shown'])}</span><br>"
            f'<span style="color:#555;font-size:80%">{label}</span></span>'
        )
    return (
        f"<p>{len(rows)} tokens, {selected} to predict ({selected / len(rows):.0%}). "
        f"{legend}</p><p>top: what the model reads · below: the label it must predict</p>"
        f"<div style='line-height:2.2'>{''.join(cells)}</div>"
    )


def masking_playground(
    tokenizer: Any, text: str, mask_rate: float = 0.15, strategy: str = "token", seed: int = 0
) -> widgets.VBox:
    """Change the text, the mask rate, the strategy or the seed; see one BERT masking of it.

    A view over `masking_example` and `masking_html`. Children, in order: the text
    (Textarea), the rate (FloatSlider), the strategy (Dropdown), the seed (IntText) and
    the result (HTML). A setting `mask_tokens` refuses shows its message instead.
    """
    text_box = widgets.Textarea(value=text, description="text", layout=widgets.Layout(width="95%"))
    rate = widgets.FloatSlider(
        value=mask_rate, min=0.05, max=0.95, step=0.05, description="mask rate"
    )
    strategy_box = widgets.Dropdown(options=STRATEGIES, value=strategy, description="strategy")
    seed_box = widgets.IntText(value=seed, description="seed")
    view = widgets.HTML()

    def render(_change: object = None) -> None:
        try:
            rows = masking_example(
                tokenizer, text_box.value, rate.value, strategy_box.value, seed_box.value
            )
        except ValueError as error:
            view.value = f"<p style='color:#b00'>{html.escape(str(error))}</p>"
            return
        view.value = masking_html(rows)

    for control in (text_box, rate, strategy_box, seed_box):
        control.observe(render, names="value")
    render()
    return widgets.VBox([text_box, rate, strategy_box, seed_box, view])


# ---------------------------------------------------------------------------- cloze

MASK_TEXT = "[MASK]"


def cloze_input_ids(tokenizer: Any, text: str) -> list[int]:
    """`[CLS]` and the tokens of `text`, each "[MASK]" in it becoming the mask id.

    A byte-level BPE word carries the space in front of it (" be"), so a space just
    before "[MASK]" is left to the hidden token instead of becoming a token of its own:
    "to [MASK]" reads as "to", [MASK] and the model may fill in " be".
    """
    if MASK_TEXT not in text:
        raise ValueError(
            f"the text has no {MASK_TEXT}: put {MASK_TEXT} where a token should be filled in, "
            f"e.g. 'To be, or not to {MASK_TEXT}'"
        )
    segments = text.split(MASK_TEXT)
    ids = [tokenizer.cls_id]
    for index, segment in enumerate(segments):
        before_mask = index < len(segments) - 1
        if before_mask and segment.endswith(" "):
            segment = segment[:-1]
        ids += tokenizer.encode(segment) if segment else []
        if before_mask:
            ids.append(tokenizer.mask_id)
    return ids


def cloze_predictions(
    model: TransformerModel, tokenizer: Any, text: str, k: int = 5
) -> list[list[tuple[str, float]]]:
    """The `k` most likely fillers of every [MASK] in `text`, with their probabilities.

    model: a masked language model (`MaskedLM`) trained on inputs that start with
    [CLS], as in 02_masked_lm. Returns one list per [MASK], left to right, of (piece,
    probability) pairs, most likely first. Each [MASK] is one token.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k:
        raise ValueError(f"k={k!r} must be a positive integer: how many fillers to list")
    ids = cloze_input_ids(tokenizer, text)
    if len(ids) > model.config.block_size:
        raise ValueError(
            f"the text is {len(ids)} tokens with [CLS]; the model reads at most "
            f"block_size={model.config.block_size}: shorten it"
        )
    k = min(int(k), model.config.vocab_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids], device=device))[0]  # (seq, vocab)
    finally:
        model.train(was_training)
    positions = [i for i, token_id in enumerate(ids) if token_id == tokenizer.mask_id]
    top = logits[positions].float().softmax(dim=-1).topk(k, dim=-1)  # (masks, k) each
    return [
        [(tokenizer.id_to_token(i), p) for i, p in zip(row_ids, row_p, strict=True)]
        for row_ids, row_p in zip(top.indices.tolist(), top.values.tolist(), strict=True)
    ]


def cloze_html(predictions: Sequence[Sequence[tuple[str, float]]]) -> str:
    """One table column per [MASK]: its fillers, most likely first, with probability bars."""
    columns = []
    for number, fillers in enumerate(predictions, start=1):
        rows = "".join(
            f"<tr><td style='font-family:monospace;padding-right:8px'>{_visible(piece)}</td>"
            f"<td><span style='display:inline-block;background:#56b4e9;height:0.8em;"
            f"width:{max(1, round(120 * probability))}px'></span> {probability:.1%}</td></tr>"
            for piece, probability in fillers
        )
        columns.append(
            f"<td style='vertical-align:top;padding-right:24px'><b>[MASK] {number}</b>"
            f"<table>{rows}</table></td>"
        )
    return f"<table><tr>{''.join(columns)}</tr></table>"


def cloze_explorer(model: TransformerModel, tokenizer: Any, text: str, k: int = 5) -> widgets.VBox:
    """Type a line with [MASK] in it; see the model's top-k fillers and their probabilities.

    A view over `cloze_predictions` and `cloze_html`. Children, in order: the text
    (Text), k (IntSlider) and the result (HTML); a text the function refuses (no
    [MASK], too long) shows the reason instead.
    """
    text_box = widgets.Text(value=text, description="text", layout=widgets.Layout(width="95%"))
    k_slider = widgets.IntSlider(value=k, min=1, max=20, description="top k")
    view = widgets.HTML()

    def render(_change: object = None) -> None:
        try:
            predictions = cloze_predictions(model, tokenizer, text_box.value, k_slider.value)
        except ValueError as error:
            view.value = f"<p style='color:#b00'>{html.escape(str(error))}</p>"
            return
        view.value = cloze_html(predictions)

    for control in (text_box, k_slider):
        control.observe(render, names="value")
    render()
    return widgets.VBox([text_box, k_slider, view])


# ---------------------------------------------------------------------------- sampling explorer


def sample_continuation(
    model: TransformerModel,
    tokenizer: Any,
    prompt: str,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    length: int = 100,
    seed: int = 0,
) -> str:
    """Sample `length` tokens after `prompt` from a causal LM; return the new text.

    The widget's settings in the widget's terms: top_k=0 and top_p=1 switch those filters
    off. The same arguments always give the same text (the draws are seeded by `seed`).
    Bad settings raise `generation`'s ValueError, which names the value and what is allowed.
    """
    return generate_text(
        model,
        tokenizer,
        prompt,
        length,
        temperature=temperature,
        top_k=top_k or None,
        top_p=None if top_p == 1 else top_p,
        seed=seed,
    )


def sampling_html(prompt: str, continuation: str) -> str:
    """The prompt in bold, then the sampled continuation, line breaks kept."""
    return (
        "<pre style='white-space:pre-wrap;font-size:95%'>"
        f"<b>{html.escape(prompt)}</b>{html.escape(continuation)}</pre>"
    )


def sampling_explorer(
    model: TransformerModel,
    tokenizer: Any,
    prompt: str,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    length: int = 100,
    seed: int = 0,
) -> widgets.VBox:
    """Type a prompt, set the temperature, top-k, top-p, length and seed; read a sample.

    A view over `sample_continuation` and `sampling_html`. Children, in order: the prompt
    (Textarea), temperature (FloatSlider), top-k (IntSlider, 0 = off), top-p (FloatSlider,
    1 = off), length (IntSlider), seed (IntText) and the sample (HTML). A prompt the
    tokenizer cannot encode shows the reason instead of a sample.
    """
    prompt_box = widgets.Textarea(
        value=prompt, description="prompt", layout=widgets.Layout(width="95%")
    )
    temperature_slider = widgets.FloatSlider(
        value=temperature, min=0.05, max=2.5, step=0.05, description="temperature"
    )
    top_k_slider = widgets.IntSlider(
        value=top_k, min=0, max=min(100, model.config.vocab_size), description="top-k (0 off)"
    )
    top_p_slider = widgets.FloatSlider(
        value=top_p, min=0.05, max=1.0, step=0.05, description="top-p (1 off)"
    )
    length_slider = widgets.IntSlider(value=length, min=1, max=500, description="length")
    seed_box = widgets.IntText(value=seed, description="seed")
    view = widgets.HTML()
    controls = [prompt_box, temperature_slider, top_k_slider, top_p_slider, length_slider]

    def render(_change: object = None) -> None:
        try:
            text = sample_continuation(
                model, tokenizer, *(control.value for control in controls), seed_box.value
            )
        except ValueError as error:
            view.value = f"<p style='color:#b00'>{html.escape(str(error))}</p>"
            return
        view.value = sampling_html(prompt_box.value, text)

    for control in (*controls, seed_box):
        control.observe(render, names="value")
    render()
    return widgets.VBox([*controls, seed_box, view])
