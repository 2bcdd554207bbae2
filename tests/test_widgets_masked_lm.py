"""The masking playground and the cloze explorer: pure functions first, then the widgets
driven without a kernel (setting a child's value re-renders the HTML)."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.data import bpe_tokenizer
from sslm_lab.heads import MaskedLM
from sslm_lab.lab.widgets.masked_lm import (
    MASKING_KINDS,
    cloze_explorer,
    cloze_html,
    cloze_input_ids,
    cloze_predictions,
    masking_example,
    masking_html,
    masking_playground,
)
from sslm_lab.masking import mask_tokens
from sslm_lab.transformer import TransformerConfig

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"


@pytest.fixture(scope="module")
def tokenizer():
    return bpe_tokenizer(512)


@pytest.fixture(scope="module")
def model(tokenizer) -> MaskedLM:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=32,
        n_layer=1,
        n_head=2,
        n_embd=16,
        causal=False,
        norm_position="post",
        gelu="exact",
        type_vocab_size=2,
    )
    return MaskedLM(config).eval()


def test_masking_example_agrees_with_mask_tokens(tokenizer) -> None:
    rows = masking_example(tokenizer, TEXT, mask_rate=0.5, strategy="token", seed=3)
    ids = torch.tensor([tokenizer.encode(TEXT)])
    masked, labels = mask_tokens(
        ids,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids.values(),
        mask_rate=0.5,
        generator=torch.Generator().manual_seed(3),
    )
    assert [row["piece"] for row in rows] == tokenizer.tokens(TEXT)
    for row, shown, label in zip(rows, masked[0].tolist(), labels[0].tolist(), strict=True):
        assert row["shown"] == tokenizer.id_to_token(shown)
        assert (row["label"] is None) == (label == -100)
        if row["kind"] == "mask":
            assert shown == tokenizer.mask_id
    kinds = {row["kind"] for row in rows}
    assert {"plain", "mask"} <= kinds, "a 50 % rate on this line should mask something"


def test_masking_example_is_reproducible_and_seed_dependent(tokenizer) -> None:
    first = masking_example(tokenizer, TEXT, 0.3, "span", seed=1)
    assert first == masking_example(tokenizer, TEXT, 0.3, "span", seed=1)
    assert first != masking_example(tokenizer, TEXT, 0.3, "span", seed=2)


def test_whole_word_masking_hides_every_piece_of_a_word(tokenizer) -> None:
    text = "Rosencrantz and Guildenstern are dead"
    for seed in range(5):
        rows = masking_example(tokenizer, text, 0.5, "whole_word", seed=seed)
        assert "".join(row["piece"] for row in rows) == text
        word_of, word = [], -1
        for row in rows:
            word += row["piece"][:1].isspace() or not word_of
            word_of.append(word)
        for w in set(word_of):
            predicted = [
                row["label"] is not None for row, k in zip(rows, word_of, strict=True) if k == w
            ]
            assert all(predicted) or not any(predicted), f"seed {seed}: word {w} was split"


def test_masking_html_colours_and_counts(tokenizer) -> None:
    rows = [
        {"piece": "To", "shown": "To", "label": None, "kind": "plain"},
        {"piece": " be", "shown": "[MASK]", "label": " be", "kind": "mask"},
        {"piece": " or", "shown": " cat", "label": " or", "kind": "random"},
        {"piece": " not", "shown": " not", "label": " not", "kind": "kept"},
        {"piece": "<&>", "shown": "<&>", "label": None, "kind": "plain"},
    ]
    page = masking_html(rows)
    assert "5 tokens, 3 to predict (60%)" in page
    for colour, _ in MASKING_KINDS.values():
        assert colour in page
    assert "·cat" in page and "·be" in page and "&lt;&amp;&gt;" in page


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "no tokens"),
        ({"mask_rate": 1.0}, r"mask_rate=1.0 .* \(0, 1\)"),
        ({"strategy": "sentence"}, "strategy='sentence'"),
    ],
)
def test_masking_example_refusals(tokenizer, kwargs, message) -> None:
    arguments = {"text": TEXT, "mask_rate": 0.15, "strategy": "token", "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        masking_example(tokenizer, **arguments)


def test_masking_playground_rerenders_when_a_control_changes(tokenizer) -> None:
    playground = masking_playground(tokenizer, TEXT, mask_rate=0.15, seed=0)
    text_box, rate, strategy, seed, view = playground.children
    before = view.value
    assert before == masking_html(masking_example(tokenizer, TEXT, 0.15, "token", 0))
    seed.value = 7
    assert view.value == masking_html(masking_example(tokenizer, TEXT, 0.15, "token", 7))
    rate.value = 0.5
    strategy.value = "whole_word"
    assert view.value == masking_html(masking_example(tokenizer, TEXT, 0.5, "whole_word", 7))
    text_box.value = ""
    assert "no tokens" in view.value


def test_cloze_input_ids_give_the_hidden_token_its_space(tokenizer) -> None:
    ids = cloze_input_ids(tokenizer, "to [MASK] or not")
    assert ids == [
        tokenizer.cls_id,
        *tokenizer.encode("to"),
        tokenizer.mask_id,
        *tokenizer.encode(" or not"),
    ]
    assert (
        cloze_input_ids(tokenizer, "[MASK][MASK]") == [tokenizer.cls_id] + [tokenizer.mask_id] * 2
    )


def test_cloze_predictions_are_the_model_softmax(model, tokenizer) -> None:
    text = "To be, or not to [MASK], that is the [MASK]"
    predictions = cloze_predictions(model, tokenizer, text, k=4)
    assert len(predictions) == 2 and all(len(fillers) == 4 for fillers in predictions)
    ids = cloze_input_ids(tokenizer, text)
    with torch.no_grad():
        probabilities = model(torch.tensor([ids]))[0].softmax(-1)
    positions = [i for i, t in enumerate(ids) if t == tokenizer.mask_id]
    for position, fillers in zip(positions, predictions, strict=True):
        best = probabilities[position].topk(4)
        assert [piece for piece, _ in fillers] == [tokenizer.id_to_token(i) for i in best.indices]
        torch.testing.assert_close(torch.tensor([p for _, p in fillers]), best.values)
        assert fillers[0][1] >= fillers[-1][1]


def test_cloze_predictions_keep_the_training_mode(tokenizer) -> None:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=16,
        n_layer=1,
        n_embd=8,
        causal=False,
        dropout=0.5,
    )
    model = MaskedLM(config).train()
    first = cloze_predictions(model, tokenizer, "a [MASK] b", k=3)
    assert first == cloze_predictions(model, tokenizer, "a [MASK] b", k=3), "dropout was on"
    assert model.training


@pytest.mark.parametrize(
    ("text", "k", "message"),
    [
        ("no mask here", 5, r"the text has no \[MASK\]"),
        ("[MASK] " + "word " * 40, 5, r"block_size=32: shorten it"),
        ("a [MASK]", 0, r"k=0 \(int\) is not allowed; allowed: an integer >= 1"),
    ],
)
def test_cloze_refusals(model, tokenizer, text, k, message) -> None:
    with pytest.raises(ValueError, match=message):
        cloze_predictions(model, tokenizer, text, k)


def test_cloze_html_lists_fillers_in_order() -> None:
    page = cloze_html([[(" be", 0.5), (" do", 0.25)], [("<", 0.1)]])
    assert page.index("·be") < page.index("·do")
    assert "50.0%" in page and "[MASK] 2" in page and "&lt;" in page


def test_cloze_explorer_rerenders_and_explains_refusals(model, tokenizer) -> None:
    explorer = cloze_explorer(model, tokenizer, "To be or [MASK]", k=3)
    text_box, k_slider, view = explorer.children
    assert view.value == cloze_html(cloze_predictions(model, tokenizer, "To be or [MASK]", 3))
    k_slider.value = 6
    assert view.value == cloze_html(cloze_predictions(model, tokenizer, "To be or [MASK]", 6))
    text_box.value = "nothing hidden"
    assert "has no [MASK]" in view.value


def test_masked_lm_figures() -> None:
    import matplotlib.pyplot as plt

    from sslm_lab.lab.viz.masked_lm import plot_masked_lm_history
    from sslm_lab.lab.viz.training import plot_bars

    history = [{"step": s, "mlm/loss": 7.0 - s / 10} for s in range(1, 11)]
    history[4].update({"val/loss": 6.6, "val/accuracy": 0.08})
    history[9].update({"val/loss": 6.1, "val/accuracy": 0.12})
    fig = plot_masked_lm_history(history, unigram_loss=6.4, unigram_accuracy=0.09)
    left, right = fig.axes
    assert [len(line.get_xdata()) for line in left.lines] == [10, 2, 2]
    assert list(right.lines[0].get_ydata()) == pytest.approx([8.0, 12.0])
    plt.close(fig)
    fig = plot_bars(
        {"[MASK]": 0.2, "kept": 0.9}, ylabel="accuracy", reference=0.1, reference_label="unigram"
    )
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert texts == ["20.0 %", "90.0 %"]
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "unigram"
    plt.close(fig)
