"""Tests for sslm_lab.training.trainer: the loop, its speed features, and its guards.

Checkpoints, exact resume and torchrun are in test_trainer_resume.py.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from trainer_worker import (
    TinyLM,
    block_sampler,
    clean_lm_loss,
    gan_trainer,
    lm_trainer,
    losses,
    make_tokens,
)

import sslm_lab.training.callbacks as trainer_module
from sslm_lab.lab.viz.training import plot_history
from sslm_lab.training import hardware
from sslm_lab.training.batches import count_items, sample_rows, shard_batch
from sslm_lab.training.trainer import (
    NonFiniteLossError,
    Phase,
    Trainer,
    TrainerConfig,
    adamw_param_groups,
    lr_multiplier,
)


def quiet(**overrides) -> TrainerConfig:
    return TrainerConfig(**{"device": "cpu", "progress": False, **overrides})


def test_lr_multiplier_warms_up_then_follows_a_cosine_to_the_floor():
    schedule = dict(warmup_steps=4, decay_steps=14, schedule="cosine", min_ratio=0.1)
    values = [lr_multiplier(update, **schedule) for update in range(20)]
    assert values[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert values[4] == pytest.approx(1.0)
    assert values[9] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert values[14:] == pytest.approx([0.1] * 6)
    assert all(a >= b for a, b in zip(values[4:], values[5:], strict=False))
    constant = dict(schedule, schedule="constant")
    assert [lr_multiplier(u, **constant) for u in (0, 4, 19)] == pytest.approx([0.2, 1, 1])
    linear = dict(schedule, schedule="linear")  # BERT's decay, and transformers' default
    values = [lr_multiplier(update, **linear) for update in range(20)]
    assert values[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert values[9] == pytest.approx(0.1 + 0.9 * 0.5)
    assert values[14:] == pytest.approx([0.1] * 6)
    steps = [a - b for a, b in zip(values[4:14], values[5:15], strict=False)]
    assert steps == pytest.approx([0.09] * 10)  # a straight line


def test_weight_decay_only_on_parameters_with_two_or_more_dimensions():
    model = TinyLM()
    model.norm.requires_grad_(False)  # frozen parameters are left out entirely
    decay, no_decay = adamw_param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])
    named = {id(p): name for name, p in model.named_parameters()}
    assert sorted(named[id(p)] for p in decay["params"]) == [
        "embedding.weight",  # listed once although the head shares it
        "hidden.weight",
        "mix.weight",
    ]
    assert sorted(named[id(p)] for p in no_decay["params"]) == ["hidden.bias", "mix.bias"]
    trainer = lm_trainer(None, 1)
    groups = trainer._states[0].optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]


def test_lr_scale_gives_each_factor_its_own_groups_and_the_schedule_scales_them_alike():
    torch.manual_seed(0)
    model = TinyLM(dropout=0.0)
    factors = {"embedding": 0.25, "mix": 0.5}  # the rest (hidden, norm) at 1

    def scale(name: str) -> float:
        return factors.get(name.split(".")[0], 1.0)

    groups = adamw_param_groups(model, 0.1, lr=0.02, lr_scale=scale)
    named = {id(p): name for name, p in model.named_parameters()}
    summary = [
        (g["lr"], g["weight_decay"], sorted(named[id(p)] for p in g["params"])) for g in groups
    ]
    assert summary == [
        (0.005, 0.1, ["embedding.weight"]),
        (0.01, 0.1, ["mix.weight"]),
        (0.01, 0.0, ["mix.bias"]),
        (0.02, 0.1, ["hidden.weight"]),
        (0.02, 0.0, ["hidden.bias", "norm.bias", "norm.weight"]),
    ]
    phase = Phase(
        "lm", model, clean_lm_loss, lr=0.02, warmup_steps=2, schedule="constant", lr_scale=scale
    )
    trainer = Trainer(model, phase, block_sampler(make_tokens(), 8), quiet(max_steps=6))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    history = trainer.fit()
    optimizer = trainer._states[0].optimizer
    rates = [g["lr"] for g in optimizer.param_groups]
    # past the warmup every group runs at its factor of the phase's rate, which the row logs
    assert rates == pytest.approx([0.02 * g["lr_scale"] for g in groups])
    assert [row["lm/lr"] for row in history] == pytest.approx([0.02 / 3, 0.02 * 2 / 3] + [0.02] * 4)
    assert all(not torch.equal(before[name], p) for name, p in model.named_parameters())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "1", True, None])
def test_lr_scale_returning_a_bad_factor_names_the_parameter(bad):
    model = TinyLM()
    with pytest.raises(ValueError, match=r"lr_scale\('embedding.weight'\)"):
        adamw_param_groups(model, 0.1, lr=0.01, lr_scale=lambda name: bad)
    with pytest.raises(ValueError, match=r"Phase\('lm'\)\.lr_scale"):
        Phase("lm", model, clean_lm_loss, lr_scale=0.5)


def test_single_phase_training_learns_and_records_history(capsys):
    trainer = lm_trainer(None, 40, dropout=0.0, noisy=False)
    history = trainer.fit()
    assert [row["step"] for row in history] == list(range(1, 41))
    assert sum(losses(history)[-5:]) / 5 < 0.6 * history[0]["lm/loss"]
    row = history[-1]
    assert {"lm/loss", "lm/lr", "lm/accuracy", "lm/grad_norm", "step_ms", "tokens_per_s"} <= set(
        row
    )
    assert "mfu" not in row  # a CPU has no peak FLOPs in the table: MFU is unknown
    assert trainer.summary()["mfu"] == "unknown"
    assert trainer.summary()["tokens_per_s"] > 0
    assert capsys.readouterr().err == ""  # progress=False is silent


def test_progress_bar_shows_loss_and_throughput(capsys, monkeypatch):
    # tqdm reads TQDM_DISABLE once, at import (the root conftest sets it): force the bar on.
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(
        trainer_module, "tqdm", functools.partial(trainer_module.tqdm, disable=False)
    )
    lm_trainer(None, 3, progress=True).fit()
    err = capsys.readouterr().err
    assert "training" in err and "lm=" in err and "tokens/s=" in err


def test_tqdm_disable_silences_the_notebook_bar_too(monkeypatch):
    # tqdm.notebook, which tqdm.auto picks inside Jupyter, ignores TQDM_DISABLE by itself.
    from tqdm.notebook import tqdm as notebook_tqdm

    disabled = []  # each bar's state when the trainer creates it (close() disables any bar)

    def recording_bar(*args, **kwargs):
        bar = notebook_tqdm(*args, **kwargs)
        disabled.append(bar.disable)
        return bar

    monkeypatch.setattr(trainer_module, "tqdm", recording_bar)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    lm_trainer(None, 2, progress=True).fit()
    monkeypatch.delenv("TQDM_DISABLE")
    lm_trainer(None, 2, progress=True).fit()
    assert disabled == [True, False]


def test_mfu_is_reported_when_the_model_counts_its_flops_and_the_peak_is_known(monkeypatch):
    monkeypatch.setattr(trainer_module, "peak_flops", lambda *args: 1e12)
    trainer = lm_trainer(None, 2)
    row = trainer.fit()[-1]
    expected = row["tokens_per_s"] * trainer.model.flops_per_token() / 1e12
    assert row["mfu"] == pytest.approx(expected)


def test_peak_flops_table_knows_h100_h200_a100_and_says_unknown_otherwise():
    assert hardware.gpu_model("NVIDIA H100 80GB HBM3") == "H100 SXM"
    assert hardware.gpu_model("NVIDIA H100 PCIe") == "H100 PCIe"
    assert hardware.gpu_model("NVIDIA H100 NVL") == "H100 NVL"
    assert hardware.gpu_model("NVIDIA H200") == "H200"
    assert hardware.gpu_model("NVIDIA A100-SXM4-80GB") == "A100"
    assert hardware.gpu_model("NVIDIA GeForce RTX 4090") is None
    assert hardware.PEAK_TFLOPS["H100 SXM"]["bf16"] == pytest.approx(989.4)
    assert hardware.peak_flops(torch.device("cpu"), "bf16") is None
    assert hardware.model_flops_utilization(1e6, 6e6, 1e13) == pytest.approx(0.6)
    assert hardware.model_flops_utilization(1e6, None, 1e13) is None


def test_precision_auto_picks_bf16_only_where_the_hardware_multiplies_bf16(monkeypatch, tmp_path):
    cpu = torch.device("cpu")
    for precision in ("fp32", "bf16", "fp16"):  # the other values keep their meaning
        assert hardware.resolve_precision(precision, cpu) == precision
    monkeypatch.setattr(hardware, "native_bf16_cpu", lambda: True)
    assert hardware.resolve_precision("auto", cpu) == "bf16"
    model = TinyLM()
    trainer = Trainer(model, Phase("lm", model, clean_lm_loss), [], quiet(precision="auto"))
    assert trainer.precision == "bf16" and trainer.config.precision == "auto"
    monkeypatch.setattr(hardware, "native_bf16_cpu", lambda: False)
    assert hardware.resolve_precision("auto", cpu) == "fp32"
    # The decision reads the CPU's flags, never a timing.
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert "avx512_bf16" in hardware.cpu_flags(flags)
    assert hardware.cpu_flags(tmp_path / "missing") == set()


def test_device_auto_picks_the_fastest_device_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert hardware.resolve_device("auto").type == expected
    assert hardware.resolve_device("cpu") == torch.device("cpu")


def test_compile_option_compiles_each_phase_module_once_in_place(monkeypatch):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda module, *a, **k: compiled.append(module))
    trainer = lm_trainer(None, 1, compile=True)
    assert compiled == [trainer.model]  # in place: state_dict names (and checkpoints) unchanged
    lm_trainer(None, 1)  # compile=False, the default, leaves the model as it is
    assert len(compiled) == 1


def test_gradient_accumulation_matches_one_batch_twice_as_large():
    tokens = make_tokens()
    sampler = block_sampler(tokens, 8)
    generator = torch.Generator().manual_seed(3)
    big = [sampler(step, generator) for step in range(6)]  # fixed batches of 8
    halves = [tuple(t[rows] for t in batch) for batch in big for rows in (slice(0, 4), slice(4, 8))]

    def run(data, accumulation):
        torch.manual_seed(0)
        model = TinyLM(dropout=0.0)
        phase = Phase("lm", model, clean_lm_loss, lr=1e-2)
        config = quiet(max_steps=6, grad_accumulation=accumulation)
        history = Trainer(model, phase, data, config).fit()
        return losses(history), model

    big_losses, big_model = run(big, 1)
    accumulated_losses, accumulated_model = run(halves, 2)
    torch.testing.assert_close(accumulated_losses, big_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(accumulated_model.parameters(), big_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_gan_trains_two_optimizers_with_their_own_schedules():
    trainer = gan_trainer(10)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    history = trainer.fit()

    for name, p in trainer.model.named_parameters():
        assert not torch.equal(p, before[name]), f"{name} did not change"
    disc_state, gen_state = trainer._states
    assert disc_state.updates == 10 and disc_state.scheduler.last_epoch == 10
    assert gen_state.updates == 5 and gen_state.scheduler.last_epoch == 5
    disc_lrs = [row["discriminator/lr"] for row in history]
    assert disc_lrs[:3] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2])  # warmup, then cosine
    assert disc_lrs[-1] < disc_lrs[3]
    assert [row.get("generator/lr") for row in history] == [5e-3, None] * 5
    assert all("discriminator/real_score" in row for row in history)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_autocasts_on_cpu(precision):
    if not torch.amp.autocast_mode.is_autocast_available("cpu"):
        pytest.skip("this torch has no CPU autocast")
    seen = []

    def loss_fn(model, batch, step):
        inputs, targets = batch
        logits = model(inputs)
        seen.append(model.head(model.embedding(inputs)).dtype)  # a Linear under autocast
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten()), {}

    torch.manual_seed(0)
    model = TinyLM(dropout=0.0)
    config = quiet(max_steps=12, precision=precision)
    trainer = Trainer(
        model, Phase("lm", model, loss_fn, lr=3e-2), block_sampler(make_tokens(), 8), config
    )
    history = trainer.fit()
    assert set(seen) == {hardware.AUTOCAST_DTYPES[precision]}
    assert all(math.isfinite(x) for x in losses(history))
    assert losses(history)[-1] < losses(history)[0]
    assert model.hidden.weight.dtype == torch.float32  # master weights stay fp32
    state = trainer._states[0]
    assert state.scaler.is_enabled() == (precision == "fp16")
    overflows = sum("lm/overflow" in row for row in history)  # fp16 starts at scale 65536
    assert state.updates == state.scheduler.last_epoch == 12 - overflows


def test_eval_every_and_early_stopping():
    evaluated = []

    def eval_fn(step):
        evaluated.append(step)
        return {"val/loss": {2: 1.0, 4: 0.5}.get(step, 0.9)}  # best at step 4, then flat

    trainer = lm_trainer(
        None,
        100,
        eval_fn=eval_fn,
        eval_every=2,
        early_stopping_metric="val/loss",
        early_stopping_patience=2,
    )
    history = trainer.fit()
    assert evaluated == [2, 4, 6, 8]
    assert trainer.step == 8 and "val/loss" in history[-1] and "val/loss" not in history[-2]
    assert "has not improved on 0.5 for 2 evaluations" in trainer.stop_reason


def test_eval_runs_in_eval_mode_without_gradients():
    modes = []

    def eval_fn(step):
        modes.append((trainer.model.training, torch.is_grad_enabled()))
        return {"val/x": torch.tensor(1.0)}

    trainer = lm_trainer(None, 2, eval_fn=eval_fn, eval_every=1)
    trainer.fit()
    assert modes == [(False, False), (False, False)]
    assert trainer.model.training


def test_callbacks_see_every_row_and_can_stop_training():
    seen = []

    def callback(trainer, row):
        seen.append(row["step"])
        if row["step"] == 3:
            trainer.stop_reason = "enough"

    trainer = lm_trainer(None, 10, callbacks=[callback])
    trainer.fit()
    assert seen == [1, 2, 3] and trainer.step == 3


def test_fit_again_with_more_steps_continues_the_same_run():
    trainer = lm_trainer(None, 4)
    trainer.fit()
    trainer.config.max_steps = 6
    assert [row["step"] for row in trainer.fit()] == [1, 2, 3, 4, 5, 6]


def test_plot_history_returns_a_figure_with_one_line_per_key():
    trainer = lm_trainer(None, 3)
    trainer.fit()
    figure = plot_history(trainer.history)
    assert isinstance(figure, Figure)
    assert [line.get_label() for line in figure.axes[0].lines] == ["lm/loss"]
    figure = plot_history(trainer.history, ["lm/loss", "lm/accuracy"])
    assert len(figure.axes[0].lines) == 2
    with pytest.raises(KeyError, match="no history row has 'nope'"):
        plot_history(trainer.history, ["nope"])


def test_tensorboard_logging_when_installed_and_a_warning_when_not(tmp_path):
    trainer = lm_trainer(None, 2, tensorboard=True, log_dir=tmp_path / "tb")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="tensorboard is not installed"):
            trainer.fit()
    else:
        trainer.fit()
        assert any((tmp_path / "tb").iterdir())


def test_batch_helpers_sample_count_and_shard():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    batch = sample_rows(x, y, batch_size=4)(0, torch.Generator().manual_seed(0))
    assert batch[0].shape == (4, 1) and torch.equal(batch[0][:, 0].long(), batch[1])
    assert count_items((torch.zeros(3, 7, dtype=torch.long), None)) == ("tokens", 21, 7)
    assert count_items({"image": torch.zeros(5, 8, 8)}) == ("samples", 5, None)
    shards = [shard_batch({"a": torch.arange(6), "n": 3}, rank, 2) for rank in (0, 1)]
    assert shards[0]["a"].tolist() == [0, 1, 2] and shards[1]["a"].tolist() == [3, 4, 5]
    assert shards[1]["n"] == 3
    with pytest.raises(ValueError, match="multiple of WORLD_SIZE=4"):
        shard_batch(torch.arange(6), 0, 4)


# ---------------------------------------------------------------- guards and errors


def step_counter():
    """A loss wrapper that counts calls: guards must fail before the first one."""
    calls = []

    def loss_fn(model, batch, step):
        calls.append(step)
        return clean_lm_loss(model, batch, step)

    return loss_fn, calls


@pytest.mark.parametrize(
    "phase_overrides, config_overrides, message",
    [
        (
            {"lr": 0.0},
            {},
            r"Phase\('lm'\)\.lr=0\.0 \(float\) is not allowed; allowed: a finite number > 0",
        ),
        ({"lr": -1e-3}, {}, r"Phase\('lm'\)\.lr=-0\.001 \(float\)"),
        (
            {"schedule": "step"},
            {},
            r"schedule='step' \(str\) is not allowed; allowed: one of cosine, linear, constant",
        ),
        (
            {"warmup_steps": -1},
            {},
            r"warmup_steps=-1 \(int\) is not allowed; allowed: an integer >= 0",
        ),
        (
            {"min_lr": 1.0},
            {},
            r"min_lr=1\.0 \(float\) is not allowed; allowed: a finite number in \[0, 0\.001\]",
        ),
        (
            {"betas": (0.9, 1.0)},
            {},
            r"betas\[1\]=1\.0 \(float\) is not allowed; allowed: a finite number in \[0, 1\)",
        ),
        (
            {},
            {"grad_accumulation": 0},
            r"grad_accumulation=0 \(int\) is not allowed; allowed: an integer >= 1",
        ),
        ({}, {"max_steps": 0}, r"TrainerConfig\.max_steps=0 \(int\)"),
        (
            {},
            {"grad_clip": 0},
            r"grad_clip=0 \(int\) is not allowed; allowed: a finite number > 0, or None",
        ),
        (
            {},
            {"precision": "fp8"},
            r"precision='fp8' \(str\) is not allowed; allowed: fp32, bf16, fp16, auto",
        ),
        (
            {},
            {"device": "tpu"},
            r"device='tpu' \(str\) is not allowed; allowed: 'auto', 'cpu', 'cuda'",
        ),
        ({}, {"device": "banana"}, r"device='banana' \(str\)"),
        (
            {},
            {"early_stopping_mode": "up"},
            r"early_stopping_mode='up' \(str\) is not allowed; allowed: one of min, max",
        ),
        ({}, {"eval_every": 5}, r"eval_every: got 5, but no eval_fn"),
        ({}, {"checkpoint_every": 5}, r"checkpoint_every needs TrainerConfig\.checkpoint_dir"),
    ],
)
def test_invalid_settings_fail_before_any_step(phase_overrides, config_overrides, message):
    loss_fn, calls = step_counter()
    model = TinyLM()
    with pytest.raises(ValueError, match=message):
        phase = Phase("lm", model, loss_fn, **phase_overrides)
        config = quiet(**{"max_steps": 3, **config_overrides})
        Trainer(model, phase, block_sampler(make_tokens(), 4), config).fit()
    assert calls == []


def test_cuda_asked_for_without_a_gpu_fails_with_what_is_available():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    model = TinyLM()
    with pytest.raises(ValueError, match=r"device: got 'cuda', but torch\.cuda\.is_available"):
        Trainer(model, Phase("lm", model, clean_lm_loss), [], quiet(device="cuda"))


def test_bf16_on_a_device_without_bf16_fails_before_any_step(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_supported", lambda device: False)
    loss_fn, calls = step_counter()
    model = TinyLM()
    with pytest.raises(ValueError, match=r"precision: got 'bf16', but cpu cannot compute in bf16"):
        Trainer(model, Phase("lm", model, loss_fn), [], quiet(precision="bf16")).fit()
    assert calls == []


def test_a_phase_whose_parameters_are_outside_the_model_is_refused():
    model, stranger = TinyLM(), nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"Phase\('other'\)\.module has parameters outside"):
        Trainer(
            model,
            [Phase("lm", model, clean_lm_loss), Phase("other", stranger, clean_lm_loss)],
            [],
            quiet(),
        )
    with pytest.raises(
        ValueError,
        match=r"phases=\['lm', 'lm'\] \(list\) is not allowed; allowed: at least one phase, with distinct names",
    ):
        Trainer(model, [Phase("lm", model, clean_lm_loss)] * 2, [], quiet())


def nan_at(bad_steps):
    def loss_fn(model, batch, step):
        loss, metrics = clean_lm_loss(model, batch, step)
        return (loss * float("nan") if step in bad_steps else loss), metrics

    return loss_fn


def test_a_nonfinite_loss_stops_naming_the_step_and_the_last_good_checkpoint(tmp_path):
    model = TinyLM()
    phase = Phase("lm", model, nan_at({6}), lr=1e-2)
    config = quiet(max_steps=10, checkpoint_dir=tmp_path, checkpoint_every=2)
    trainer = Trainer(model, phase, block_sampler(make_tokens(), 4), config)
    weights_before = model.hidden.weight.detach().clone()
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "loss is nan at step 7" in message
    assert f"last good checkpoint is {tmp_path / 'step_0000006'}" in message
    assert "skip_nonfinite=True" in message
    assert trainer.step == 6
    assert torch.isfinite(model.hidden.weight).all()  # stopped before the bad update
    assert not torch.equal(model.hidden.weight, weights_before)


def test_a_nonfinite_loss_without_checkpoints_says_so():
    model = TinyLM()
    trainer = Trainer(
        model, Phase("lm", model, nan_at({0})), block_sampler(make_tokens(), 4), quiet(max_steps=3)
    )
    with pytest.raises(NonFiniteLossError, match="step 1.*no checkpoint was saved"):
        trainer.fit()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_nonfinite_steps_can_be_skipped_and_counted(precision):
    model = TinyLM()
    config = quiet(max_steps=8, skip_nonfinite=True, precision=precision)
    trainer = Trainer(
        model, Phase("lm", model, nan_at({2, 5})), block_sampler(make_tokens(), 4), config
    )
    history = trainer.fit()
    assert trainer.skipped_steps == 2 and trainer.step == 8
    assert [row["step"] for row in history if "lm/skipped" in row] == [3, 6]
    assert trainer._states[0].updates == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_micro_batches_holding_different_numbers_of_targets_add_up_to_the_large_batch() -> None:
    from sslm_lab.heads import MaskedLM
    from sslm_lab.masking import IGNORE_INDEX
    from sslm_lab.objectives import masked_lm_objective
    from sslm_lab.training.trainer import TARGETS
    from sslm_lab.transformer import TransformerConfig

    config = TransformerConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8)
    generator = torch.Generator().manual_seed(0)
    micro = []
    for masked in (1, 5, 12):  # targets per micro-batch: very different
        inputs = torch.randint(0, 20, (2, 8), generator=generator)
        labels = torch.full((2, 8), IGNORE_INDEX)
        labels.view(-1)[:masked] = inputs.view(-1)[:masked]
        micro.append((inputs, labels))
    large = (torch.cat([b[0] for b in micro]), torch.cat([b[1] for b in micro]))

    def float64_mlm(module, batch, step, counted=True):  # the objective's loss, in float64
        inputs, labels = batch
        selected = labels != IGNORE_INDEX
        loss = F.cross_entropy(module(inputs, positions=selected), labels[selected])
        return loss, ({TARGETS: int(selected.sum())} if counted else {})

    def gradients(loss_fn, batches, accumulation):
        torch.manual_seed(0)
        model = MaskedLM(config).double()
        config_ = TrainerConfig(
            max_steps=1, grad_accumulation=accumulation, grad_clip=None, progress=False
        )
        (row,) = Trainer(model, Phase("mlm", model, loss_fn, lr=1e-3), batches, config_).fit()
        return {name: p.grad.clone() for name, p in model.named_parameters()}, row["mlm/loss"]

    reference, large_loss = gradients(float64_mlm, [large], 1)
    weighted, weighted_loss = gradients(float64_mlm, micro, 3)
    for name, gradient in weighted.items():
        torch.testing.assert_close(gradient, reference[name], rtol=1e-9, atol=1e-12)
    assert weighted_loss == pytest.approx(large_loss, rel=1e-12)
    # a loss that reports no count is averaged per micro-batch: not the large batch's
    plain, plain_loss = gradients(functools.partial(float64_mlm, counted=False), micro, 3)
    assert plain_loss != pytest.approx(large_loss, rel=1e-6)
    assert any(not torch.allclose(plain[n], reference[n], rtol=1e-4) for n in plain)
    # the suite's masked-LM objective reports its masked positions as the count
    _, metrics = masked_lm_objective(MaskedLM(config), micro[1], 0)
    assert metrics[TARGETS] == 5
