"""The sampling explorer's pure function and its widget without a kernel; 03's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from sslm_lab.data import CharTokenizer
from sslm_lab.heads import CausalLM
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.causal_lm import (
    plot_learning_curves,
    plot_teacher_forcing,
    plot_temperature_effect,
)
from sslm_lab.lab.widgets.causal_lm import sample_continuation, sampling_explorer, sampling_html
from sslm_lab.transformer import TransformerConfig

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind"


@pytest.fixture(scope="module")
def decoder() -> tuple[CausalLM, CharTokenizer]:
    tokenizer = CharTokenizer.from_text(TEXT)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=2, n_embd=16)
    return CausalLM(config).eval(), tokenizer


def test_sample_continuation_is_seeded_and_honours_every_setting(decoder) -> None:
    model, tokenizer = decoder
    first = sample_continuation(model, tokenizer, "To be", temperature=1.5, length=40, seed=3)
    assert len(first) == 40
    assert first == sample_continuation(model, tokenizer, "To be", 1.5, length=40, seed=3)
    assert first != sample_continuation(model, tokenizer, "To be", 1.5, length=40, seed=4)
    # top_k=1 leaves one candidate per step: every seed gives the greedy text.
    picked = {
        sample_continuation(model, tokenizer, "To", 2.0, top_k=1, length=30, seed=s)
        for s in range(3)
    }
    assert len(picked) == 1
    tiny_p = {
        sample_continuation(model, tokenizer, "To", 2.0, top_p=1e-6, length=30, seed=s)
        for s in range(3)
    }
    assert tiny_p == picked, "a tiny top_p keeps only the most likely token too"


def test_sample_continuation_refuses_bad_settings(decoder) -> None:
    model, tokenizer = decoder
    with pytest.raises(ValueError, match=r"character 'Z'"):
        sample_continuation(model, tokenizer, "Zounds")
    with pytest.raises(ValueError, match=r"temperature=0 \(int\) is not allowed"):
        sample_continuation(model, tokenizer, "To", temperature=0)
    with pytest.raises(ValueError, match=r"top_p=0 \(int\) is not allowed"):
        sample_continuation(model, tokenizer, "To", top_p=0)


def test_sampling_html_escapes_and_marks_the_prompt() -> None:
    assert sampling_html("<To>", " be &") == (
        "<pre style='white-space:pre-wrap;font-size:95%'><b>&lt;To&gt;</b> be &amp;</pre>"
    )


def test_explorer_updates_when_a_control_changes_without_a_kernel(decoder) -> None:
    model, tokenizer = decoder
    view = sampling_explorer(model, tokenizer, "To be", length=30, seed=0)
    prompt, temperature, top_k, top_p, length, seed, output = view.children
    assert top_k.max == tokenizer.vocab_size  # fewer than 100 characters
    first = output.value
    assert first.startswith("<pre") and "<b>To be</b>" in first
    seed.value = 1
    after_seed = output.value
    assert after_seed != first
    temperature.value = 2.0
    after_temperature = output.value
    assert after_temperature != after_seed
    top_k.value = 1
    greedy_like = output.value
    seed.value = 5
    assert output.value == greedy_like, "top-k 1 makes the seed irrelevant"
    length.value = 5
    assert len(output.value) < len(greedy_like)
    prompt.value = "Zounds"
    assert "cannot be encoded" in output.value and "&#x27;Z&#x27;" in output.value
    prompt.value = "To be"
    top_p.value = 0.5
    assert output.value.startswith("<pre")


def test_figures_of_notebook_03() -> None:
    figure = plot_teacher_forcing(list("To be"))
    assert figure.axes[0].get_ylabel() == "prediction at position t"
    assert len(figure.axes[0].texts) == sum(range(2, 6))  # row t shows t + 2 tokens
    curves = plot_learning_curves(
        {"char": ([1, 2], [3.0, 2.5], [3.1, 2.7]), "BPE": ([1], [2.0], [2.2])},
        {"trigram": 2.94},
    )
    assert len(curves.axes[0].lines) == 5  # train + val per run, one baseline
    effect = plot_temperature_effect([0.5, 1.0, 2.0], [0.5, 1.5, 3.0], [3.0, 2.5, 3.2])
    assert len(effect.axes) == 2
    assert figure_png(effect).startswith(b"\x89PNG")
    plt.close("all")
