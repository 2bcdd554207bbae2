"""The widgets of 02_masked_lm: the masking playground (what BERT masking does to a text)
and the cloze explorer (what a masked LM fills in at each [MASK])."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import torch

from sslm_lab.checks import check_int
from sslm_lab.eval_mode import evaluating
from sslm_lab.lab.display import visible_token_html
from sslm_lab.masking import IGNORE_INDEX, STRATEGIES, mask_tokens, word_ids_from_pieces
from sslm_lab.transformer import TransformerModel

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
    check_int("seed", seed, low=0)
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
        label = visible_token_html(row["label"]) if row["label"] is not None else "&nbsp;"
        cells.append(
            '<span style="display:inline-block;text-align:center;margin:1px;'
            'font-family:monospace;vertical-align:top">'
            f'<span style="background:{colour};padding:1px 2px;border-radius:3px">'
            f"{visible_token_html(row['shown'])}</span><br>"
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
    check_int("k", k, low=1, hint="how many fillers to list")
    ids = cloze_input_ids(tokenizer, text)
    if len(ids) > model.config.block_size:
        raise ValueError(
            f"the text is {len(ids)} tokens with [CLS]; the model reads at most "
            f"block_size={model.config.block_size}: shorten it"
        )
    k = min(int(k), model.config.vocab_size)
    device = next(model.parameters()).device
    with evaluating(model):
        logits = model(torch.tensor([ids], device=device))[0]  # (seq, vocab)
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
            "<tr><td style='font-family:monospace;padding-right:8px'>"
            f"{visible_token_html(piece)}</td>"
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
