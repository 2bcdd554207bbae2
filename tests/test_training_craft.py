"""The learning-rate range test and schedule, token-weighted accumulation (03b_training_craft)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslm_lab.checks import ArgumentError
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.lab.profiles import training_craft
from sslm_lab.masking import IGNORE_INDEX, mask_tokens
from sslm_lab.training.lr_range import (
    RangeTest,
    exponential_rates,
    learning_rate_schedule,
    lr_range_test,
    smooth,
    suggest_lr,
)
from sslm_lab.training.trainer import SCHEDULES, Phase, Trainer, TrainerConfig
from sslm_lab.transformer import TransformerConfig

VOCAB, BLOCK = 12, 8


def quiet(**overrides) -> TrainerConfig:
    return TrainerConfig(**{"device": "cpu", "progress": False, **overrides})


def tokens(length: int = 600, seed: int = 0) -> torch.Tensor:
    """A learnable stream: a repeating pattern with a few random replacements."""
    generator = torch.Generator().manual_seed(seed)
    stream = torch.arange(length) % 7
    noise = torch.rand(length, generator=generator) < 0.1
    stream[noise] = torch.randint(VOCAB, (int(noise.sum()),), generator=generator)
    return stream


def windows_sampler(rows: int = 4, stream: torch.Tensor | None = None):
    stream = tokens() if stream is None else stream

    def batch_fn(step: int, generator: torch.Generator) -> torch.Tensor:
        starts = torch.randint(len(stream) - BLOCK - 1, (rows,), generator=generator)
        return stream[starts[:, None] + torch.arange(BLOCK + 1)]

    return batch_fn


def next_token_loss(model, windows, step):
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()), {}


def decoder(seed: int = 0, dtype=torch.float32) -> CausalLM:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16)
    return CausalLM(config).to(dtype)


# ------------------------------------------------------------------------- the schedule


def test_learning_rate_schedule_is_what_the_trainer_sets() -> None:
    for schedule in SCHEDULES:
        model = decoder()
        phase = Phase(
            "lm", model, next_token_loss, lr=3e-3, warmup_steps=4, schedule=schedule, min_lr=3e-4
        )
        trainer = Trainer(model, phase, windows_sampler(), quiet(max_steps=12))
        trainer.fit()
        logged = [row["lm/lr"] for row in trainer.history]
        expected = learning_rate_schedule(3e-3, 12, 4, schedule, 3e-4)
        assert logged == pytest.approx(expected, rel=1e-12), schedule


def test_learning_rate_schedule_by_its_formula() -> None:
    rates = learning_rate_schedule(1.0, 10, 4, "cosine", 0.1)
    assert rates[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert rates[4] == pytest.approx(1.0)
    assert rates[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))
    assert learning_rate_schedule(2.0, 3, 0, "constant") == [2.0, 2.0, 2.0]
    assert learning_rate_schedule(1.0, 5, 5, "linear") == pytest.approx(
        [1 / 6, 2 / 6, 0.5, 4 / 6, 5 / 6]
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"peak_lr": -1e-3, "max_steps": 10}, r"peak_lr=-0.001 \(float\) is not allowed"),
        ({"peak_lr": 0, "max_steps": 10}, r"peak_lr=0 \(int\) is not allowed"),
        ({"peak_lr": 1e-3, "max_steps": 0}, r"max_steps=0"),
        (
            {"peak_lr": 1e-3, "max_steps": 10, "warmup_steps": 11},
            r"warmup_steps=11 .* longer than the run of max_steps=10",
        ),
        ({"peak_lr": 1e-3, "max_steps": 10, "warmup_steps": -1}, r"warmup_steps=-1"),
        ({"peak_lr": 1e-3, "max_steps": 10, "schedule": "step"}, r"schedule='step'"),
        ({"peak_lr": 1e-3, "max_steps": 10, "min_lr": 1e-2}, r"min_lr=0.01 .* at most peak_lr"),
    ],
)
def test_learning_rate_schedule_refuses_bad_input(arguments, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        learning_rate_schedule(**arguments)


# ------------------------------------------------------------------------- the range test


def test_exponential_rates_and_smoothing() -> None:
    rates = exponential_rates(1e-4, 1.0, 5)
    assert rates == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert smooth([4.0], 0.9) == [4.0]  # bias-corrected: the first value is itself
    assert smooth([2.0, 2.0, 2.0], 0.5) == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 0.5 / (1 - 0.25)])
    for bad, message in (
        (lambda: exponential_rates(0, 1, 5), r"min_lr=0"),
        (lambda: exponential_rates(-1e-3, 1, 5), r"min_lr=-0.001"),
        (lambda: exponential_rates(1e-2, 1e-3, 5), r"max_lr=0.001 .* above min_lr"),
        (lambda: exponential_rates(1e-3, 1, 1), r"steps=1"),
        (lambda: smooth([1.0], 1.0), r"smoothing=1.0"),
    ):
        with pytest.raises(ArgumentError, match=message):
            bad()


def test_range_test_follows_the_rates_trains_and_stops_when_it_diverges() -> None:
    model = decoder()
    before = [p.detach().clone() for p in model.parameters()]
    test = lr_range_test(
        model, next_token_loss, windows_sampler(), min_lr=1e-4, max_lr=10.0, steps=60, seed=0
    )
    assert test.rates == exponential_rates(1e-4, 10.0, 60)[: len(test.rates)]
    assert len(test.losses) == len(test.smoothed) == len(test.rates)
    assert test.smoothed == pytest.approx(smooth(test.losses, 0.9))
    assert min(test.smoothed) < test.smoothed[0] - 0.3, "the loss never fell"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # a rate of 10 wrecks this model: the test stops before the last rate
    assert test.stopped is not None and len(test.rates) < 60
    rate = suggest_lr(test)
    assert rate == pytest.approx(test.rates[test.lowest] / 10)
    assert suggest_lr(test, divide_by=1) == test.rates[test.lowest]


def test_range_test_is_repeatable() -> None:
    first = lr_range_test(decoder(), next_token_loss, windows_sampler(), steps=20, seed=3)
    again = lr_range_test(decoder(), next_token_loss, windows_sampler(), steps=20, seed=3)
    assert first == again


def test_range_test_refuses_bad_input() -> None:
    for arguments, message in (
        ({"min_lr": -1.0}, r"min_lr=-1.0"),
        ({"max_lr": 1e-6}, r"max_lr=1e-06"),
        ({"steps": 1}, r"steps=1"),
        ({"weight_decay": -0.1}, r"weight_decay=-0.1"),
        ({"grad_clip": 0.0}, r"grad_clip=0.0"),
        ({"stop_factor": 1.0}, r"stop_factor=1.0"),
    ):
        with pytest.raises(ArgumentError, match=message):
            lr_range_test(decoder(), next_token_loss, windows_sampler(), **arguments)
    frozen = decoder().requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters with requires_grad"):
        lr_range_test(frozen, next_token_loss, windows_sampler(), steps=5)
    with pytest.raises(ArgumentError, match=r"divide_by=0.5"):
        suggest_lr(RangeTest([1e-3], [1.0], [1.0], 0.9), divide_by=0.5)


def test_range_test_stops_at_a_non_finite_loss() -> None:
    def exploding(model, windows, step):
        loss, metrics = next_token_loss(model, windows, step)
        return (loss * math.inf if step == 3 else loss), metrics

    test = lr_range_test(decoder(), exploding, windows_sampler(), steps=10)
    assert len(test.losses) == 3 and "inf" in test.stopped

    def at_once(model, windows, step):
        return next_token_loss(model, windows, step)[0] * math.nan, {}

    with pytest.raises(ValueError, match="start from a lower min_lr"):
        lr_range_test(decoder(), at_once, windows_sampler(), steps=10)


# -------------------------------------------------------------------- accumulation


def masked_sampler(rows: int = 3):
    stream = tokens(400)
    mask_id = VOCAB - 1  # the last id stands for [MASK] in these tests

    def batch_fn(step: int, generator: torch.Generator):
        starts = torch.randint(len(stream) - BLOCK, (rows,), generator=generator)
        windows = stream[starts[:, None] + torch.arange(BLOCK)].clamp(max=VOCAB - 2)
        return mask_tokens(
            windows,
            mask_id=mask_id,
            vocab_size=VOCAB,
            special_ids=[mask_id],
            mask_rate=0.3,
            generator=generator,
        )

    return batch_fn


def masked_loss(model, batch, step):
    inputs, labels = batch
    selected = labels != IGNORE_INDEX
    return F.cross_entropy(model(inputs, positions=selected), labels[selected]), {}


def masked_count(batch) -> int:
    return int((batch[1] != IGNORE_INDEX).sum())


def encoder() -> MaskedLM:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16, causal=False
    )
    return MaskedLM(config).double()


def one_step_gradients(loss_fn, batch_fn, k: int) -> tuple[dict, float]:
    model = encoder()
    trainer = Trainer(
        model,
        Phase("mlm", model, loss_fn),
        batch_fn,
        quiet(max_steps=1, grad_accumulation=k, grad_clip=None),
    )
    trainer.fit()
    return {n: p.grad.clone() for n, p in model.named_parameters()}, trainer.history[0]["mlm/loss"]


def test_a_loss_reporting_its_targets_gives_the_large_batch_gradient_and_one_without_does_not():
    """The trainer's accumulation on BERT-masked micro-batches (sslm_lab.training.trainer)."""
    k, micro = 4, masked_sampler()

    def large(step, generator):
        parts = [micro(step, generator) for _ in range(k)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def counted(model, batch, step):
        loss, metrics = masked_loss(model, batch, step)
        return loss, {**metrics, "targets": masked_count(batch)}

    generator = torch.Generator().manual_seed(0)  # the trainer's stream, seed 0
    counts = [masked_count(micro(0, generator)) for _ in range(k)]
    assert len(set(counts)) > 1, "the test needs micro-batches of different sizes"
    large_grads, large_loss = one_step_gradients(masked_loss, large, 1)
    plain_grads, plain_loss = one_step_gradients(masked_loss, micro, k)
    weighted_grads, weighted_loss = one_step_gradients(counted, micro, k)
    assert weighted_loss == pytest.approx(large_loss, abs=1e-12)
    assert plain_loss != pytest.approx(large_loss, abs=1e-6)
    for name, gradient in large_grads.items():
        torch.testing.assert_close(weighted_grads[name], gradient, rtol=0, atol=1e-12)
    assert any(not torch.allclose(plain_grads[n], g, atol=1e-8) for n, g in large_grads.items())


# ------------------------------------------------------------------ the notebook's profile


def test_the_notebook_refuses_a_warmup_longer_than_its_run() -> None:
    values = {
        "seed": 0,
        "max_steps": 10,
        "warmup_steps": 11,
        "peak_lr": None,
        "grad_accumulation": None,
        "precision": None,
        "seeds": None,
    }
    with pytest.raises(ArgumentError, match=r"warmup_steps=11 is longer than the run"):
        training_craft.PARAMETERS.validate(**values)
    training_craft.PARAMETERS.validate(**{**values, "warmup_steps": 10})
    for name, value, message in (
        ("peak_lr", -1e-3, r"peak_lr=-0.001"),
        ("grad_accumulation", 0, r"grad_accumulation=0"),
        ("precision", "fp8", r"precision='fp8'"),
    ):
        with pytest.raises(ArgumentError, match=message):
            training_craft.PARAMETERS.validate(**{**values, "warmup_steps": None, name: value})
