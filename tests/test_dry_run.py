"""Tests for the dry run: the trainer's step cap and its measurement of a step
(sslm_lab.training.dry_run), and the notebook side (sslm_lab.lab.dry_run): which sizes are
cut, which assertions are skipped, and the report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from sslm_lab.lab import dry_run as lab_dry_run
from sslm_lab.lab.profiles import PROFILES, Profile
from sslm_lab.lab.reproduce import available_notebooks
from sslm_lab.training import dry_run
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig


def tiny_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_saved_activations_are_counted_by_hand_once_per_storage_at_their_peak():
    model = tiny_model()
    x = torch.randn(5, 3)
    with dry_run.SavedTensors([*model.parameters()]) as saved:
        for _ in range(2):  # the second pass reuses what the first one's backward freed
            model(x).pow(2).sum().backward()
    # Saved for backward, weights left out: the input of the first layer (5 x 3 floats,
    # 60 bytes); ReLU's output, which the second layer saves as its input too (5 x 4, 80
    # bytes, counted once); the output that pow(2) differentiates (5 x 2, 40 bytes).
    assert saved.peak == 60 + 80 + 40
    assert saved.largest == 80


def test_step_memory_is_parameters_gradients_adam_and_activations_with_the_margin():
    model = tiny_model()
    parameters = 3 * 4 + 4 + 4 * 2 + 2  # 26 floats of 4 bytes
    memory = dry_run.step_memory(model, list(model.parameters()), 180, largest_saved=80)
    assert memory["parameters"] == memory["gradients"] == 4 * parameters
    assert memory["optimizer"] == 2 * 4 * parameters  # exp_avg and exp_avg_sq
    assert memory["activation_gradients"] == 2 * 80  # one flowing in, one out
    assert memory["total"] == round((4 * 4 * parameters + 180 + 160) * (1 + dry_run.MARGIN))

    model[0].requires_grad_(False)  # frozen: weights only, no gradient, no moments
    trained = [p for p in model.parameters() if p.requires_grad]
    frozen_memory = dry_run.step_memory(model, trained, activations=None)
    assert frozen_memory["parameters"] == 4 * parameters
    assert frozen_memory["gradients"] == 4 * (4 * 2 + 2)
    assert frozen_memory["activations"] is None  # not measured: not in the total
    assert frozen_memory["activation_gradients"] is None
    assert frozen_memory["total"] == round(4 * (parameters + 3 * 10) * (1 + dry_run.MARGIN))

    half = tiny_model().to(torch.bfloat16)  # bytes per element follow the dtype
    assert dry_run.step_memory(half, list(half.parameters()), 0)["parameters"] == 2 * parameters


def test_outside_a_dry_run_the_config_is_the_one_given(monkeypatch):
    monkeypatch.delenv(dry_run.STEPS_ENV_VAR, raising=False)
    config = TrainerConfig(max_steps=5000)
    assert dry_run.capped(config) is config
    assert dry_run.dry_run_steps() is None


def test_a_dry_run_cuts_max_steps_and_keeps_a_shorter_run(monkeypatch):
    monkeypatch.setenv(dry_run.STEPS_ENV_VAR, "2")
    config = TrainerConfig(max_steps=5000, eval_every=250)
    cut = dry_run.capped(config)
    assert cut.max_steps == 2 and cut.eval_every == 250 and config.max_steps == 5000
    short = TrainerConfig(max_steps=1)
    assert dry_run.capped(short) is short


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5"])
def test_a_bad_step_cap_names_the_variable(monkeypatch, text):
    monkeypatch.setenv(dry_run.STEPS_ENV_VAR, text)
    with pytest.raises(ValueError, match=r"\$SSLM_DRY_RUN_STEPS=.*whole number >= 1"):
        Trainer(tiny_model(), Phase("p", nn.Linear(1, 1), lambda m, b, s: (b.sum(), {})), [])


def regression_loss(module, batch, step):
    inputs, targets = batch
    return (module(inputs) - targets).pow(2).mean(), {}


def test_the_trainer_stops_at_the_cap_and_logs_its_first_step(monkeypatch, tmp_path, capsys):
    log = tmp_path / "fits.jsonl"
    monkeypatch.setenv(dry_run.STEPS_ENV_VAR, "2")
    monkeypatch.setenv(dry_run.LOG_ENV_VAR, str(log))
    model = tiny_model()
    batch = (torch.randn(5, 3), torch.randn(5, 2))
    trainer = Trainer(
        model,
        Phase("fit", model, regression_loss),
        [batch],
        TrainerConfig(max_steps=100, eval_every=50, progress=False),
        eval_fn=lambda step: {"val": 0.0},
    )
    history = trainer.fit()
    assert len(history) == 2 and "val" in history[-1]  # evaluated at the last step
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["model"] == "Sequential"
    assert record["parameters"] == record["trainable"] == 26
    assert record["batch"] == ["(5, 3) float32", "(5, 2) float32"]
    assert record["phases"] == ["fit"] and record["max_steps"] == 2
    assert record["precision"] == "fp32" and record["device"] == "cpu"
    # the hand count above, plus what the loss saves: the difference that pow(2) needs
    assert record["memory"]["activations"] == 60 + 80 + 40
    assert record["memory"]["activation_gradients"] == 2 * 80  # ReLU's output is the largest
    assert record["memory"]["total"] == round((16 * 26 + 180 + 160) * (1 + dry_run.MARGIN))
    assert "dry run: Sequential (26 parameters, 26 trained)" in capsys.readouterr().out


def allocator_peak(step) -> int:
    """The most bytes the CPU allocator held during `step()` beyond what existed before,
    from the profiler's memory timeline (a private API of torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as profiler:
        step()
    held = peak = 0
    for _, action, _, size in profiler._memory_profile().timeline:
        held += size if action == Action.CREATE else -size if action == Action.DESTROY else 0
        peak = max(peak, held)
    return peak


@pytest.mark.parametrize("vocab_size", [256, 8192])
def test_the_estimate_covers_what_the_allocator_held_in_the_step(monkeypatch, tmp_path, vocab_size):
    """A causal LM's first step at fp32 on the CPU: the weights plus the allocator's peak
    during the step (gradients, AdamW's moments, activations, their gradients,
    temporaries) against the estimate. Measured on this 2-core VM (one thread, torch 2.13):
    at vocabulary 256 the measured bytes were 0.82 of the counted ones (0.65 of the total
    with the margin); at 8,192, where the logits' gradients are the largest tensors, 0.88
    (0.71). Without the activation gradients the counted bytes there were 1.8 x short."""
    from sslm_lab.heads import CausalLM
    from sslm_lab.objectives import causal_lm_objective
    from sslm_lab.transformer import TransformerConfig

    log = tmp_path / "fits.jsonl"
    monkeypatch.setenv(dry_run.STEPS_ENV_VAR, "1")
    monkeypatch.setenv(dry_run.LOG_ENV_VAR, str(log))
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=vocab_size, block_size=64, n_layer=2, n_embd=64)
    model = CausalLM(config)
    windows = torch.randint(0, vocab_size, (8, 65))
    phase = Phase("lm", model, causal_lm_objective)
    trainer = Trainer(model, phase, [windows], TrainerConfig(max_steps=1, progress=False))
    held = allocator_peak(trainer.fit)
    memory = json.loads(log.read_text())["memory"]
    measured = memory["parameters"] + held
    counted = memory["total"] / (1 + memory["margin"])
    assert measured <= counted  # the estimate is an upper bound even without its margin
    assert measured >= 0.5 * memory["total"]  # and not one so loose that it says nothing


def test_outside_a_dry_run_the_trainer_logs_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(dry_run.STEPS_ENV_VAR, raising=False)
    monkeypatch.setenv(dry_run.LOG_ENV_VAR, str(tmp_path / "never.jsonl"))
    model = tiny_model()
    batch = (torch.randn(5, 3), torch.randn(5, 2))
    config = TrainerConfig(max_steps=5, progress=False)
    assert len(Trainer(model, Phase("fit", model, regression_loss), [batch], config).fit()) == 5
    assert not (tmp_path / "never.jsonl").exists()


# ---------------------------------------------------------------- the notebook side


def test_every_cut_names_a_size_and_makes_the_gpu_run_smaller():
    gpu = PROFILES["gpu"]
    read = {section for used in lab_dry_run.SECTIONS.values() for section in used}
    for section, cuts in lab_dry_run.CUTS.items():
        assert section in read, f"{section}: no notebook in SECTIONS reads it"
        sizes = getattr(gpu, section, None)
        if sizes is None:  # its notebook's table is not in this checkout yet: cut nothing
            continue
        cut = lab_dry_run.cut_sizes(sizes, cuts)  # an unknown field fails here
        for field in cuts:
            assert getattr(cut, field) <= getattr(sizes, field), f"{section}.{field}"
    sections = {field.name for field in dataclasses.fields(Profile)} - {"name", "description"}
    for notebook in available_notebooks():  # each notebook here has its sections named
        assert set(lab_dry_run.SECTIONS[notebook]) <= sections, notebook


def test_every_training_length_in_the_tables_is_cut_or_said_not_to_be_one():
    """A new `*_steps` row must be cut by a dry run, or listed as not a training length."""
    for section in (field.name for field in dataclasses.fields(Profile)):
        if section in ("name", "description"):
            continue
        sizes = getattr(PROFILES["gpu"], section)
        for field in dataclasses.fields(sizes):
            if field.name.endswith("_steps"):
                cut = field.name in lab_dry_run.CUTS.get(section, {})
                assert cut or field.name in lab_dry_run.NOT_TRAINING_LENGTHS, (
                    f"{section}.{field.name}: add it to CUTS or NOT_TRAINING_LENGTHS"
                )


def test_cuts_for_reports_what_changes_for_a_notebook():
    gpu = PROFILES["gpu"].causal_lm
    made = lab_dry_run.cuts_for("gpu", "03_autoregressive_lm")
    assert made["causal_lm.max_steps"] == (gpu.max_steps, lab_dry_run.STEPS)
    assert made["causal_lm.eval_blocks"] == (gpu.eval_blocks, gpu.batch_size)  # one batch
    assert lab_dry_run.cuts_for("gpu", "00_tour") == {}
    assert lab_dry_run.cuts_for("smoke", "unknown_notebook") == {}
    assert "finetune.names_eval_speeches" in lab_dry_run.cuts_for("gpu", "08_real_pretrained_model")


def test_cut_profiles_changes_this_process_only_as_reported(monkeypatch):
    from sslm_lab.lab import profiles

    monkeypatch.setattr(profiles, "PROFILES", dict(profiles.PROFILES))
    full = PROFILES["gpu"].masked_lm
    made = lab_dry_run.cut_profiles("gpu", "02_masked_lm")
    gpu = profiles.get_profile("gpu")
    assert gpu.masked_lm.max_steps == 2 and made["masked_lm.max_steps"] == (full.max_steps, 2)
    assert gpu.masked_lm.val_windows == gpu.masked_lm.batch_size == full.batch_size
    assert gpu.masked_lm.n_embd == full.n_embd and full.max_steps > 2  # shapes stay
    assert profiles.get_profile("smoke").masked_lm.max_steps <= 2
    assert PROFILES["gpu"].masked_lm is full  # the module's own table: untouched


def notebook_of(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    return notebook


def test_prepare_skips_assertions_about_learning_and_nothing_else():
    learned = (
        "loss = 1.0  # trained\n"
        "assert loss < 0.5, (\n"
        "    'a message over two lines'\n"
        ")\n"
        "if True:\n"
        "    assert loss < 0.1  # nested\n"
        "record = loss"
    )
    notebook = notebook_of(
        ("profile = None", ["parameters"]),
        ("assert 1 + 1 == 2", []),
        (learned, [lab_dry_run.LEARNING_TAG]),
    )
    prepared, skipped = lab_dry_run.prepare(notebook, "02_masked_lm", "gpu")
    assert skipped == {"cells": 1, "assertions": 2}
    sources = [cell.source for cell in prepared.cells]
    assert sources[0] == "profile = None"
    assert "cut_profiles('gpu', '02_masked_lm')" in sources[1]  # right after the parameters
    assert sources[2] == "assert 1 + 1 == 2"  # not tagged: runs as written
    assert sources[3] == (
        "loss = 1.0  # trained\n"
        f"{lab_dry_run.SKIPPED}\n"
        "if True:\n"
        f"    {lab_dry_run.SKIPPED}\n"
        "record = loss"
    )
    assert "record_kernel_peak()" in sources[4]
    assert [cell.metadata["tags"] for cell in prepared.cells[1::3]] == [["dry-run"], ["dry-run"]]
    exec(compile(sources[3], "cell", "exec"), {})  # still valid Python, and it passes
    assert notebook.cells[2].source == learned  # the original is left alone


def test_an_assertion_sharing_its_line_cannot_be_skipped():
    notebook = notebook_of(("x = 1; assert x == 2", [lab_dry_run.LEARNING_TAG]))
    with pytest.raises(ValueError, match="line 1: an assert that shares its lines"):
        lab_dry_run.prepare(notebook, "x", "gpu")


# Notebooks that train but have no cell tagged yet: their dry run stops at the first
# assertion about learning that two steps do not meet. Owed with issue 34's close.
UNTAGGED: set[str] = set()


def test_every_notebook_can_be_prepared_and_tags_its_closing_assertions():
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        _, skipped = lab_dry_run.prepare(notebook, path.stem, "gpu")
        if path.stem in UNTAGGED:
            continue
        learns = path.stem not in ("00_tour", "01_attention")  # these two train nothing
        assert (skipped["assertions"] > 0) == learns, (
            f"{path.stem}: tag the cells that assert what was learned "
            f"`{lab_dry_run.LEARNING_TAG}`, so that a dry run skips them"
        )


def test_the_report_sets_each_step_against_80_gb():
    fit = {
        "model": "CausalLM",
        "parameters": 10_000_000,
        "trainable": 10_000_000,
        "memory": {
            "parameters": 40e6,
            "gradients": 40e6,
            "optimizer": 80e6,
            "activations": 2e9,
            "activation_gradients": 1e9,
            "margin": 0.25,
            "total": 90e9,
        },
        "batch": ["(64, 257) int64"],
        "device": "cuda:0",
        "precision": "bf16",
        "cuda_available": True,
    }
    report = {
        "skipped": {"cells": 1, "assertions": 17},
        "cuts": {"causal_lm.max_steps": (5000, 2)},
        "fits": [fit, fit, {**fit, "model": "Electra", "device": "cpu"}],
        "kernel": {"kernel_peak_rss": 3e9},
    }
    text = "\n".join(lab_dry_run.markdown("03_autoregressive_lm", report, 61.0, 95.0))
    assert "Wall time 61 s, CPU time 95 s." in text
    assert "17 skipped, in 1 cells tagged `asserts-learning`" in text
    assert "`causal_lm.max_steps` 5000 → 2" in text
    assert "| CausalLM | 10,000,000 | 10,000,000 | 2 |" in text
    assert "| Electra | 10,000,000 | 10,000,000 | 1 |" in text
    row = "| CausalLM | [(64, 257) int64] | cuda:0 | bf16 | 0.04 | 0.04 | 0.08 | 2.00 | 1.00 | 90.00 |"
    assert row + " 112.5% | – |" in text
    assert "Largest step: 90.00 GB, DOES NOT FIT in 80 GB." in text
    assert "Trained on the CPU although CUDA is here: Electra." in text
    assert "Kernel peak resident memory: 3.00 GB." in text
