import math

import pytest
import torch
import torch.nn.functional as F

from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.masking import IGNORE_INDEX
from sslm_lab.objectives import (
    bits_per_character,
    causal_lm_loss,
    causal_lm_objective,
    masked_lm_loss,
    masked_lm_objective,
    next_sentence_loss,
)
from sslm_lab.transformer import TransformerConfig


def test_masked_lm_loss_counts_only_masked_positions() -> None:
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 4, 2
    expected = (
        F.cross_entropy(logits[0, 1][None], torch.tensor([4]))
        + F.cross_entropy(logits[1, 3][None], torch.tensor([2]))
    ) / 2
    torch.testing.assert_close(masked_lm_loss(logits, labels), expected)


def test_masked_lm_loss_with_nothing_masked_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing was masked"):
        masked_lm_loss(torch.zeros(1, 3, 4), torch.full((1, 3), IGNORE_INDEX))


def test_causal_lm_loss_is_shifted() -> None:
    ids = torch.tensor([[1, 2, 3]])
    logits = torch.full((1, 3, 4), -30.0)
    logits[0, 0, 2] = logits[0, 1, 3] = 30.0  # perfect next-token predictions
    assert causal_lm_loss(logits, ids) < 1e-6
    logits[0, 2, 0] = 30.0  # the last position predicts nothing, so this changes nothing
    assert causal_lm_loss(logits, ids) < 1e-6
    wrong = torch.full((1, 3, 4), -30.0)
    wrong[0, :, 1] = 30.0  # "predicts" the current token: wrong after shifting
    assert causal_lm_loss(wrong, ids) > 10


def test_uniform_prediction_costs_log_vocab() -> None:
    loss = causal_lm_loss(torch.zeros(2, 9, 16), torch.randint(0, 16, (2, 9)))
    assert loss.item() == pytest.approx(math.log(16))
    assert bits_per_character(loss.item(), tokens=10, characters=10) == pytest.approx(4.0)


def test_bits_per_character_spreads_token_loss_over_characters() -> None:
    # 2 nats per token, 4 characters per token -> 0.5 nats per character
    assert bits_per_character(2.0, tokens=100, characters=400) == pytest.approx(0.5 / math.log(2))
    with pytest.raises(ValueError, match="characters=0"):
        bits_per_character(1.0, tokens=1, characters=0)


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3, 5\).*\(2, 4\)"):
        masked_lm_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_next_sentence_loss() -> None:
    logits = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])
    assert next_sentence_loss(logits, torch.tensor([0, 1])) < 1e-3
    assert next_sentence_loss(logits, torch.tensor([1, 0])) > 5


def test_causal_lm_objective_scores_each_token_of_a_window_on_its_successor() -> None:
    torch.manual_seed(0)
    model = CausalLM(TransformerConfig(vocab_size=11, block_size=9, n_layer=1, n_embd=16)).eval()
    windows = torch.randint(0, 11, (3, 9))  # the model reads 8 tokens, predicts 8
    loss, metrics = causal_lm_objective(model, windows, step=0)
    # causal_lm_loss takes logits of the whole window and drops the last position's; under
    # the causal mask the other positions' logits are those of the shorter input.
    torch.testing.assert_close(loss, causal_lm_loss(model(windows), windows))
    assert metrics == {"targets": 3 * 8}  # what the trainer weights micro-batches by


def test_masked_lm_objective_is_the_masked_loss_and_reports_accuracy() -> None:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=13, block_size=6, n_layer=1, n_embd=16, causal=False)
    model = MaskedLM(config).eval()
    inputs = torch.randint(0, 13, (2, 6))
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 2], labels[1, 4], labels[1, 5] = 3, 7, 1
    loss, metrics = masked_lm_objective(model, (inputs, labels), step=0)
    logits = model(inputs)
    torch.testing.assert_close(loss, masked_lm_loss(logits, labels))
    guesses = logits.argmax(-1)
    expected = (guesses[0, 2] == 3).float() + (guesses[1, 4] == 7).float()
    expected = (expected + (guesses[1, 5] == 1).float()) / 3
    torch.testing.assert_close(metrics["accuracy"], expected)


def test_the_gathered_masked_lm_objective_equals_the_loss_on_full_logits() -> None:
    # masked_lm_objective projects only the masked positions; loss, accuracy and every
    # gradient must be those of masked_lm_loss on the logits of every position.
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=97,
        block_size=16,
        n_layer=2,
        n_embd=32,
        causal=False,
        norm_position="post",
        gelu="exact",
        type_vocab_size=2,
    )
    model = MaskedLM(config)
    inputs = torch.randint(0, 97, (4, 16))
    labels = torch.where(torch.rand(4, 16) < 0.2, torch.randint(0, 97, (4, 16)), IGNORE_INDEX)
    assert 0 < int((labels != IGNORE_INDEX).sum()) < labels.numel()

    loss, metrics = masked_lm_objective(model, (inputs, labels), step=0)
    loss.backward()
    gathered_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    logits = model(inputs)
    full_loss = masked_lm_loss(logits, labels)
    full_loss.backward()

    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=0)
    selected = labels != IGNORE_INDEX
    full_accuracy = (logits.argmax(-1)[selected] == labels[selected]).float().mean()
    torch.testing.assert_close(metrics["accuracy"], full_accuracy, atol=1e-6, rtol=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(gathered_grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_the_masked_lm_objective_with_nothing_masked_is_an_error() -> None:
    model = MaskedLM(TransformerConfig(vocab_size=13, block_size=6, n_layer=1, n_embd=16))
    inputs = torch.randint(0, 13, (2, 6))
    with pytest.raises(ValueError, match="nothing was masked"):
        masked_lm_objective(model, (inputs, torch.full((2, 6), IGNORE_INDEX)), step=0)
