"""The sampling explorer of 03_autoregressive_lm: a prompt, the sampling settings, a sample."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from sslm_lab.generation import generate_text
from sslm_lab.transformer import TransformerModel


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
