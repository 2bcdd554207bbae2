"""The attention explorer's pure functions, its figures, and its widget without a kernel."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sslm_lab.data import CharTokenizer
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.interop import bert_to_sslm, load_minilm
from sslm_lab.lab.display import figure_png
from sslm_lab.lab.viz.attention import (
    plot_attention_heatmap,
    plot_attention_timings,
    plot_head_grid,
    plot_softmax_saturation,
    plot_token_matrices,
)
from sslm_lab.lab.widgets.attention import (
    attention_explorer,
    attention_heatmap_data,
    tokenizer_fn_for,
)
from sslm_lab.transformer import Transformer, TransformerConfig

LINES = ["To be, or not to be", "All the world's a stage,", "Out, damned spot!"]


@pytest.fixture(scope="module")
def chars() -> CharTokenizer:
    return CharTokenizer(sorted(set("".join(LINES))))


def tiny_config(vocab_size: int, **changes) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=vocab_size, block_size=32, n_layer=2, n_head=3, n_embd=12, **changes
    )


@pytest.fixture(scope="module")
def decoder(chars: CharTokenizer) -> CausalLM:
    torch.manual_seed(0)
    return CausalLM(tiny_config(chars.vocab_size)).eval()


def test_heatmap_data_shapes_and_rows_sum_to_one(decoder, chars) -> None:
    tokens, weights = attention_heatmap_data(decoder, tokenizer_fn_for(chars), LINES[0], 1, 2)
    assert tokens == list(LINES[0])
    assert weights.shape == (len(LINES[0]), len(LINES[0]))
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.triu(weights, k=1) == 0), "a causal model looked ahead"


@pytest.mark.parametrize("model_class", [Transformer, MaskedLM])
def test_heatmap_data_on_encoders(model_class, chars) -> None:
    torch.manual_seed(0)
    config = tiny_config(chars.vocab_size, causal=False, norm_position="post", type_vocab_size=2)
    model = model_class(config).eval()
    tokens, weights = attention_heatmap_data(model, tokenizer_fn_for(chars), LINES[1], 0, 0)
    assert len(tokens) == weights.shape[0] == weights.shape[1] == len(LINES[1])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert np.triu(weights, k=1).sum() > 0, "an encoder looks both ways"


def test_heatmap_data_leaves_training_mode_and_ignores_dropout(chars) -> None:
    torch.manual_seed(0)
    model = CausalLM(tiny_config(chars.vocab_size, dropout=0.5, attention_dropout=0.5)).train()
    fn = tokenizer_fn_for(chars)
    first = attention_heatmap_data(model, fn, LINES[2], 1, 0)[1]
    second = attention_heatmap_data(model, fn, LINES[2], 1, 0)[1]
    np.testing.assert_array_equal(first, second)
    assert model.training


@pytest.mark.parametrize(
    ("layer", "head", "message"),
    [
        (
            2,
            0,
            r"layer=2 \(int\) is not allowed; allowed: an integer in \[0, 1\]\. the model has 2 layers",
        ),
        (-1, 0, r"layer=-1 \(int\) is not allowed"),
        (
            0,
            3,
            r"head=3 \(int\) is not allowed; allowed: an integer in \[0, 2\]\. the model has 3 heads per layer",
        ),
        (0, 1.5, r"head=1.5 \(float\) is not allowed"),
    ],
)
def test_bad_layer_or_head_names_value_and_range(decoder, chars, layer, head, message) -> None:
    with pytest.raises(ValueError, match=message):
        attention_heatmap_data(decoder, tokenizer_fn_for(chars), LINES[0], layer, head)


def test_empty_text_and_foreign_model_are_refused(decoder, chars) -> None:
    with pytest.raises(ValueError, match="gives no tokens"):
        attention_heatmap_data(decoder, tokenizer_fn_for(chars), "", 0, 0)
    with pytest.raises(TypeError, match="bert_to_sslm"):
        attention_heatmap_data(torch.nn.Linear(2, 2), tokenizer_fn_for(chars), "To", 0, 0)
    with pytest.raises(TypeError, match="tokenizer"):
        tokenizer_fn_for(object())


def test_explorer_updates_when_a_control_changes_without_a_kernel(decoder, chars) -> None:
    view = attention_explorer(decoder, tokenizer_fn_for(chars), LINES, name="tiny")
    line, layer, head, picture = view.children
    assert (layer.max, head.max) == (1, 2)
    before = bytes(picture.value)  # the Image widget hands back a memoryview
    assert before.startswith(b"\x89PNG")
    head.value = 2
    after_head = bytes(picture.value)
    assert after_head != before
    line.value = LINES[2]
    assert bytes(picture.value) != after_head
    assert not plt.get_fignums(), "the explorer left figures open"


def test_explorer_refuses_no_lines_and_bad_starting_indices(decoder, chars) -> None:
    fn = tokenizer_fn_for(chars)
    with pytest.raises(ValueError, match="lines is empty"):
        attention_explorer(decoder, fn, [])
    with pytest.raises(ValueError, match=r"layer=5 \(int\) is not allowed"):
        attention_explorer(decoder, fn, LINES, layer=5)
    with pytest.raises(ValueError, match=r"head=3 \(int\) is not allowed"):
        attention_explorer(decoder, fn, LINES, head=3)


def test_figures_have_one_panel_per_matrix() -> None:
    tokens = ["a", "b", "c"]
    matrices = {"one": np.eye(3), "two": np.tril(np.ones((3, 3))) / 3}
    assert len(plot_token_matrices(matrices, tokens, annotate=True).axes) == 2
    assert len(plot_token_matrices(matrices, tokens, shared_range=None).axes) == 4  # + colorbars
    heatmap = plot_attention_heatmap(tokens, np.eye(3), "title")
    assert heatmap.axes[0].get_title() == "title"
    grid = plot_head_grid({"x": np.full((2, 4), 0.25), "y": np.zeros((2, 4))})
    assert len(grid.axes) == 2
    saturation = plot_softmax_saturation(
        [4, 16], {"raw": [0.5, 0.9], "scaled": [0.2, 0.2]}, {"raw": [2, 1], "scaled": [3, 3]}, 16
    )
    assert len(saturation.axes) == 2
    timings = plot_attention_timings([64, 128], {"explicit": [2.0, 5.0], "fast": [1.0, 2.0]})
    assert png_is_real(timings)
    plt.close("all")


def png_is_real(fig) -> bool:
    return figure_png(fig).startswith(b"\x89PNG")


@pytest.mark.slow
def test_minilm_has_a_previous_token_head() -> None:
    """Layer 0, head 2 of the real all-MiniLM-L6-v2 looks at the token before (notebook 01)."""
    tokenizer, bert = load_minilm()
    minilm = bert_to_sslm(bert)
    fn = tokenizer_fn_for(tokenizer)
    tokens, weights = attention_heatmap_data(minilm, fn, LINES[0], 0, 2)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1:3] == ["to", "be"]
    previous = np.diagonal(weights, offset=-1)  # weight of token i + 1 on token i
    assert previous.min() > 0.9
