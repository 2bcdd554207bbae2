"""The two-spans contrastive objective (contrastive.SpanContrast) and its row in the
recipes' table, on the known language."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.contrastive import SpanContrast, line_spans, span_contrast_objective
from sslm_lab.data.hmm_language import WordTokenizer, make_language, pretraining_ids
from sslm_lab.lab import recipes
from sslm_lab.lab.recipes import Corpus, EncoderRecipe, pretrain, pretrained_encoder
from sslm_lab.lab.results import RUNS_ENV_VAR
from sslm_lab.transformer import Transformer, TransformerConfig

CONFIG = TransformerConfig(vocab_size=40, block_size=12, n_layer=1, n_head=2, n_embd=8)


def test_the_spans_are_the_first_and_last_share_read_from_position_zero() -> None:
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15, 16, 17], [2, 20, 21, 22, 23, 0, 0, 0, 0]])
    mask = ids != 0
    (first, first_mask), (last, last_mask) = line_spans(ids, mask, share=0.5)
    assert first.tolist()[0] == [2, 10, 11, 12, 13] and last.tolist()[0] == [2, 14, 15, 16, 17]
    # the second line has 4 tokens: spans of 2, then padding the mask leaves out
    assert first_mask.tolist()[1] == [True, True, True, False, False]
    assert first[1, :3].tolist() == [2, 20, 21] and last[1, :3].tolist() == [2, 22, 23]
    assert last_mask.tolist()[1] == [True, True, True, False, False]
    (first, _), (last, _) = line_spans(ids, mask, share=0.75)  # 6 of 8: overlapping
    assert first[0].tolist() == [2, 10, 11, 12, 13, 14, 15]
    assert last[0].tolist() == [2, 12, 13, 14, 15, 16, 17]
    (first, _), (last, _) = line_spans(ids[:, :2], mask[:, :2], share=0.3)  # at least 1
    assert first[0].tolist() == last[0].tolist() == [2, 10]


def test_the_loss_knows_nothing_at_log_batch_and_learns_which_spans_belong_together() -> None:
    torch.manual_seed(0)
    model = SpanContrast(Transformer(CONFIG), temperature=0.1)
    ids = torch.randint(5, 40, (8, 9))
    ids[:, 0] = 2
    collapsed = SpanContrast(Transformer(CONFIG), temperature=0.1)
    with torch.no_grad():
        for parameter in collapsed.encoder.parameters():
            parameter.zero_()  # every line the same embedding: all cosines equal
    assert collapsed(ids).item() == pytest.approx(torch.log(torch.tensor(8.0)).item(), abs=1e-4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = span_contrast_objective(model, (ids, torch.ones_like(ids)), 0)[0].item()
    for _ in range(40):  # the same eight lines: their spans share words (share 0.75)
        loss, _ = span_contrast_objective(model, (ids, torch.ones_like(ids)), 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2


def test_flops_count_two_spans_of_three_quarters() -> None:
    model = SpanContrast(Transformer(CONFIG))
    span = 1 + int(0.75 * 11)  # [CLS] and 3/4 of the 11 tokens after it
    expected = 2 * span / 12 * model.encoder.flops_per_token(span)
    assert model.flops_per_token() == pytest.approx(expected)
    assert model.flops_per_token(12) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: SpanContrast(torch.nn.Linear(2, 2)), r"type\(encoder\)"),
        (lambda: SpanContrast(Transformer(CONFIG), share=0.0), r"share=0.0"),
        (lambda: SpanContrast(Transformer(CONFIG), share=1.5), r"share=1.5"),
        (lambda: SpanContrast(Transformer(CONFIG), temperature=0.0), r"temperature=0.0"),
    ],
)
def test_bad_settings_are_refused(build, match) -> None:
    with pytest.raises(ArgumentError, match=match):
        build()


def test_bad_batches_are_refused() -> None:
    model = SpanContrast(Transformer(CONFIG))
    with pytest.raises(ArgumentError, match=r"batch size"):
        model(torch.tensor([[2, 5, 6, 7]]))
    with pytest.raises(ArgumentError):
        model(torch.tensor([[2, 5, 6, 99], [2, 5, 6, 7]]))  # an id outside the vocabulary
    with pytest.raises(ArgumentError, match=r"batch"):
        span_contrast_objective(model, torch.tensor([[2, 5, 6, 7]]), 0)


def test_the_recipe_row_pretrains_an_encoder_on_the_known_language() -> None:
    language = make_language(
        num_classes=4, num_words=20, ambiguity=2, successors=2, length=8, num_dialects=2
    )
    tokenizer = WordTokenizer(language.num_words)
    sample = language.sample(64, seed=1)
    ids, lines = pretraining_ids(sample, tokenizer)
    text = torch.cat([torch.full((len(ids), 1), tokenizer.cls_id), ids], dim=1)
    recipe = EncoderRecipe(
        vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=8, intermediate_size=16,
        block_size=9, steps=3, batch_size=4,
    )  # fmt: skip
    encoder = pretrain("span_contrast", recipe, Corpus("hmm", text, lines), tokenizer)
    assert isinstance(encoder.body, Transformer) and not encoder.body.training
    assert encoder.train_flops == pytest.approx(3 * recipes.flops_per_step("span_contrast", recipe))
    assert encoder.train_tokens == 2 * 3 * 4 * 9
    assert recipes.steps_for_flops("span_contrast", encoder.train_flops, recipe) == 3


def test_no_notebook_saves_it_so_pretrained_encoder_trains_it_and_says_why(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(RUNS_ENV_VAR, str(tmp_path / "runs"))
    recipe = EncoderRecipe(
        vocab_size=300, n_layer=1, n_head=2, n_embd=8, intermediate_size=16, block_size=16,
        steps=2, batch_size=4,
    )  # fmt: skip
    encoder = pretrained_encoder("span_contrast", recipe, profile="smoke")
    assert encoder.source == "trained here (no notebook saves a span_contrast encoder)"
    assert encoder.steps == 2 and encoder.train_tokens == 2 * 2 * 4 * 16
