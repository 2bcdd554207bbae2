"""Tests for sslm_lab.lab.reproduce and `sslm-lab reproduce`: choosing notebooks and
parameters, running them in order, and the reports a failed notebook leaves behind."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from sslm_lab.lab import cli
from sslm_lab.lab.dry_run import TRAINER_STEPS
from sslm_lab.lab.reproduce import (
    available_notebooks,
    markdown_report,
    parameters_for,
    parse_parameter,
    reproduce,
    select_notebooks,
)

NAMES = ["00_tour", "01_attention", "02_masked_lm"]


def test_notebooks_are_chosen_by_name_or_number_in_running_order():
    assert select_notebooks([], NAMES) == NAMES
    assert select_notebooks(["02", "00_tour", "00"], NAMES) == ["00_tour", "02_masked_lm"]
    with pytest.raises(ValueError, match=r"'7' is not one of .*00_tour, 01_attention"):
        select_notebooks(["7"], NAMES)
    assert available_notebooks()[:2] == ["00_tour", "01_attention"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed=1", ("seed", 1)),
        ("mask_rate=0.25", ("mask_rate", 0.25)),
        ("nsp_ablation=True", ("nsp_ablation", True)),
        ("nsp_ablation=false", ("nsp_ablation", False)),
        ("max_steps=None", ("max_steps", None)),
        ("prompt=ROMEO.", ("prompt", "ROMEO.")),
        ("prompt=a=b", ("prompt", "a=b")),
    ],
)
def test_parameters_are_read_as_literals_or_kept_as_text(text, expected):
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["seed", "=1", "two words=1"])
def test_a_malformed_parameter_names_itself_and_the_form(text):
    with pytest.raises(ValueError, match=r"parameter .* is not allowed; write NAME=VALUE"):
        parse_parameter(text)


def write_notebook(folder: Path, name: str, parameters: str, body: str) -> None:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell, nbformat.v4.new_code_cell(body)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, folder / f"{name}.ipynb")


@pytest.fixture
def tiny_notebooks(tmp_path: Path) -> Path:
    """Three notebooks that take a second each: one records, one fails, one records."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    record = (
        "from sslm_lab.lab.results import record_results\n"
        "record_results({name!r}, {{'seed': seed, 'loss': 1.2345678, 'tokens': 12345, "
        "'tokens_per_s': 16380.4}}, profile=profile)\n"
    )
    write_notebook(folder, "10_first", "profile = None\nseed = 0", record.format(name="10_first"))
    write_notebook(
        folder, "11_fails", "profile = None\nrate = 0.5", "raise ValueError(f'rate={rate} is bad')"
    )
    write_notebook(folder, "12_last", "profile = None\nseed = 0", record.format(name="12_last"))
    return folder


def test_parameters_go_only_to_notebooks_that_declare_them(tiny_notebooks):
    names = ["10_first", "11_fails", "12_last"]
    given = parameters_for(names, tiny_notebooks, {"seed": 3, "rate": 0.1})
    assert given == {"10_first": {"seed": 3}, "11_fails": {"rate": 0.1}, "12_last": {"seed": 3}}
    with pytest.raises(ValueError, match=r"'sede' is not declared .* parameters are: rate, seed"):
        parameters_for(names, tiny_notebooks, {"sede": 3})
    with pytest.raises(ValueError, match="--profile"):
        parameters_for(names, tiny_notebooks, {"profile": "gpu"})


@pytest.mark.slow
def test_a_failed_notebook_is_reported_and_the_rest_still_run(tiny_notebooks, tmp_path):
    out = tmp_path / "out"
    runs = reproduce(
        profile="smoke",
        parameters={"seed": 7},
        out=out,
        folder=tiny_notebooks,
        say=lambda *args, **kwargs: None,
    )
    assert [(run.name, run.status) for run in runs] == [
        ("10_first", "ok"),
        ("11_fails", "failed"),
        ("12_last", "ok"),
    ]
    assert runs[1].error == "ValueError: rate=0.5 is bad"
    assert runs[0].metrics == {
        "seed": 7,
        "loss": 1.2345678,
        "tokens": 12345,
        "tokens_per_s": 16380.4,
    }
    assert sorted(path.name for path in out.iterdir()) == [
        "10_first.ipynb",
        "11_fails.ipynb",
        "12_last.ipynb",
        "results.json",
        "results.md",
        "summary.json",
    ]
    records = json.loads((out / "results.json").read_text())
    assert sorted(records) == ["10_first", "12_last"]
    assert records["12_last"]["profile"] == "smoke"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["device"] == "cpu"
    assert [entry["status"] for entry in summary["notebooks"]] == ["ok", "failed", "ok"]
    table = (out / "results.md").read_text()
    assert "| 11_fails | failed |" in table and "ValueError: rate=0.5 is bad" in table
    assert "| loss | 1.235 |" in table and "| tokens | 12,345 |" in table
    assert "| tokens_per_s | 16,380 |" in table

    with pytest.raises(FileExistsError, match="not empty"):  # never overwrite a finished run
        reproduce(profile="smoke", out=out, folder=tiny_notebooks)


@pytest.mark.slow
def test_stop_on_failure_leaves_the_rest_not_run(tiny_notebooks, tmp_path):
    runs = reproduce(
        ["11", "12"],
        profile="smoke",
        out=tmp_path / "out",
        folder=tiny_notebooks,
        stop_on_failure=True,
        say=lambda *args, **kwargs: None,
    )
    assert [(run.name, run.status) for run in runs] == [
        ("11_fails", "failed"),
        ("12_last", "not run"),
    ]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| 12_last | not run | – |" in table


def test_markdown_report_escapes_table_breaking_errors():
    from sslm_lab.lab.reproduce import NotebookRun

    run = NotebookRun("03_x", "failed", 3.0, "AssertionError: a | b\nsecond line", 12)
    text = markdown_report([run], "laptop", {"device": "cpu"})
    assert "| 03_x | failed | 3 s | – | AssertionError: a \\| b second line (cell [12]) |" in text


@pytest.mark.slow
def test_cli_runs_a_real_notebook_and_exits_by_its_status(tmp_path, capsys):
    out = tmp_path / "tour"
    assert (
        cli.main(["reproduce", "00", "--profile", "smoke", "--out", str(out), "-p", "seed=2"]) == 0
    )
    records = json.loads((out / "results.json").read_text())
    assert records["00_tour"]["metrics"]["seed"] == 2
    assert (
        f"| trigram_bpc | {records['00_tour']['metrics']['trigram_bpc']:.4g} |"
        in (out / "results.md").read_text()
    )

    assert cli.main(["reproduce", "00", "--profile", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "profile='huge' (str) is not allowed; allowed: one of smoke" in capsys.readouterr().err
    assert cli.main(["reproduce", "00", "-p", "sede=1", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing started


def test_list_shows_each_notebook_with_its_parameters_and_runs_nothing(capsys, tmp_path):
    assert cli.main(["reproduce", "--list", "--out", str(tmp_path / "never")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == available_notebooks()
    assert '02_masked_lm: seed=0, mask_rate=0.15, strategy="token"' in "\n".join(lines)
    assert not (tmp_path / "never").exists()


TRAINS = """\
import torch
from sslm_lab.lab.results import record_results, run_dir
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig

torch.manual_seed(seed)
model = torch.nn.Linear(8, 1)
inputs = torch.randn(16, 8)
batch = (inputs, inputs.sum(1, keepdim=True))  # learnable: the sum
history = Trainer(
    model,
    Phase("fit", model, lambda m, b, s: ((m(b[0]) - b[1]).pow(2).mean(), {})),
    [batch],
    TrainerConfig(max_steps=1000, progress=False),
).fit()
(run_dir("20_trains", profile) / "saved.txt").write_text("kept")
"""
LEARNED = """\
final = history[-1]["fit/loss"]
assert final < history[0]["fit/loss"] / 2, "the loss fell"
record_results("20_trains", {"steps": len(history), "loss": final}, profile=profile)
"""


@pytest.mark.slow
def test_a_dry_run_cuts_training_skips_learning_asserts_and_reports_memory(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder, "20_trains", "profile = None\nseed = 0", TRAINS)
    notebook = nbformat.read(folder / "20_trains.ipynb", as_version=4)
    closing = nbformat.v4.new_code_cell(LEARNED)
    closing.metadata["tags"] = ["asserts-learning"]
    notebook.cells.append(closing)
    nbformat.write(notebook, folder / "20_trains.ipynb")
    runs_folder = tmp_path / "real-runs"
    monkeypatch.setenv("SSLM_RUNS_DIR", str(runs_folder))
    out = tmp_path / "out"
    # Any profile may be dry-run (it is made for gpu); smoke keeps this test fast.
    (run,) = reproduce(
        profile="smoke", out=out, folder=folder, dry_run=True, say=lambda *a, **k: None
    )
    assert run.status == "ok", run.error
    assert run.metrics["steps"] == TRAINER_STEPS  # a length from no table: the trainer's cap
    assert run.dry_run["skipped"] == {"cells": 1, "assertions": 1}
    (fit,) = run.dry_run["fits"]
    assert fit["model"] == "Linear" and fit["parameters"] == fit["trainable"] == 9
    assert fit["batch"] == ["(16, 8) float32", "(16, 1) float32"]
    assert fit["max_steps"] == TRAINER_STEPS
    memory = fit["memory"]
    # 9 weights: 36 bytes each of parameters and gradients, 72 of AdamW's moments
    assert (memory["parameters"], memory["gradients"], memory["optimizer"]) == (36, 36, 72)
    assert memory["activations"] > 0 and run.dry_run["kernel"]["kernel_peak_rss"] > 0
    # what the notebook saved stayed in the dry run's folder
    assert (out / "runs" / "20_trains" / "smoke" / "saved.txt").exists()
    assert not runs_folder.exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry run"].startswith("2 training steps")
    assert summary["notebooks"][0]["dry_run"]["fits"][0]["memory"] == memory
    table = (out / "results.md").read_text()
    assert "# sslm_lab dry run, profile `smoke`" in table
    assert "1 skipped, in 1 cells tagged `asserts-learning`" in table
    assert "| Linear | 9 | 9 | 1 |" in table and "fits in 80 GB" in table
    assert "| loss |" not in table  # two steps' numbers are not results

    # Without --dry-run the same notebook trains in full, even with the cap in the shell,
    # and its assertion about learning runs.
    monkeypatch.setenv("SSLM_DRY_RUN_STEPS", "2")
    (real,) = reproduce(
        profile="smoke", out=tmp_path / "real", folder=folder, say=lambda *a, **k: None
    )
    assert real.status == "ok", real.error
    assert real.metrics["steps"] == 1000 and real.dry_run is None
    assert "dry run" not in (tmp_path / "real" / "results.md").read_text()


def test_dry_run_flag_reaches_reproduce(monkeypatch, tmp_path):
    seen = {}

    def fake_reproduce(notebooks, **options):
        seen.update(options)
        return []

    monkeypatch.setattr("sslm_lab.lab.reproduce.reproduce", fake_reproduce)
    assert cli.main(["reproduce", "03", "--profile", "gpu", "--dry-run"]) == 0
    assert seen["dry_run"] is True and seen["profile"] == "gpu"
    assert cli.main(["reproduce", "03", "--profile", "gpu"]) == 0
    assert seen["dry_run"] is False


def test_a_dry_run_refuses_what_a_run_refuses_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "x"
    assert cli.main(["reproduce", "00", "--dry-run", "--profile", "huge", "--out", str(out)]) == 2
    assert "profile='huge' (str) is not allowed" in capsys.readouterr().err
    assert not out.exists()


def seeded_notebooks(tmp_path: Path) -> Path:
    """Two notebooks whose records depend on the seed: a number, a verdict, the runs folder."""
    folder = tmp_path / "seeded"
    folder.mkdir()
    body = (
        "import os\n"
        "from sslm_lab.lab.results import record_results\n"
        "record_results({name!r}, {{'seed': seed, 'loss': 1.0 + seed, 'verdict': "
        "'better' if seed < 2 else 'not established', 'runs': os.environ['SSLM_RUNS_DIR']}}, "
        "profile=profile)\n"
    )
    for name in ("20_first", "21_second"):
        write_notebook(folder, name, "profile = None\nseed = 0", body.format(name=name))
    return folder


@pytest.mark.slow
def test_seeds_run_every_notebook_per_seed_and_report_mean_interval_and_n(tmp_path):
    from scipy import stats

    out = tmp_path / "out"
    runs = reproduce(
        profile="smoke",
        out=out,
        folder=seeded_notebooks(tmp_path),
        seeds=[0, 1, 2],
        say=lambda *args, **kwargs: None,
    )
    assert [(run.name, run.parameters["seed"], run.status) for run in runs] == [
        (name, seed, "ok") for seed in (0, 1, 2) for name in ("20_first", "21_second")
    ]
    for seed in (0, 1, 2):  # each seed has its own reports and its own runs folder
        records = json.loads((out / f"seed-{seed}" / "results.json").read_text())
        assert records["20_first"]["metrics"]["loss"] == 1.0 + seed
        assert records["21_second"]["metrics"]["runs"] == str(out / f"seed-{seed}" / "runs")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2]
    loss = summary["notebooks"]["21_second"]["metrics"]["loss"]
    spread = stats.t.ppf(0.975, 2) * 1 / 3**0.5  # losses 1, 2, 3: standard deviation 1
    assert loss["n"] == 3 and loss["mean"] == pytest.approx(2.0)
    assert loss["interval"] == pytest.approx([2.0 - spread, 2.0 + spread])
    verdict = summary["notebooks"]["20_first"]["metrics"]["verdict"]
    assert verdict == {"n": 3, "counts": {"better": 2, "not established": 1}}
    table = (out / "results.md").read_text()
    assert "| loss | 2 | -0.4841 to 4.484 | 3 |" in table
    assert "| verdict | better ×2, not established ×1 | – | 3 |" in table
    assert "seed 0 ok, seed 1 ok, seed 2 ok" in table


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([], r"seeds=\[\] is not allowed"),
        ([0, 0], r"repeats a seed"),
        ([1, -1], r"holds -1"),
        ([True], r"holds True"),
        ([2**32], r"holds 4294967296; allowed: .*\[0, 4294967295\]"),
        ("012", r"seeds='012' is not allowed"),
    ],
)
def test_bad_seeds_are_refused_before_anything_runs(seeds, message, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        reproduce(profile="smoke", out=out, folder=seeded_notebooks(tmp_path), seeds=seeds)
    assert not out.exists()


def test_seeds_refuse_a_seed_parameter_a_dry_run_and_notebooks_without_seed(
    tiny_notebooks, tmp_path
):
    out = tmp_path / "out"
    folder = seeded_notebooks(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        reproduce(profile="smoke", out=out, folder=folder, seeds=[0, 1], parameters={"seed": 3})
    with pytest.raises(ValueError, match="dry run"):
        reproduce(profile="smoke", out=out, folder=folder, seeds=[0, 1], dry_run=True)
    with pytest.raises(ValueError, match="11_fails declare no seed parameter"):
        reproduce(profile="smoke", out=out, folder=tiny_notebooks, seeds=[0, 1])
    assert not out.exists()


def test_the_seeds_flag_is_parsed_and_refused_by_its_form(monkeypatch, capsys):
    from sslm_lab.lab import reproduce as module

    seen = {}
    monkeypatch.setattr(module, "reproduce", lambda *args, **kwargs: seen.update(kwargs) or [])
    assert cli.main(["reproduce", "00", "--seeds", "0, 1,2"]) == 0
    assert seen["seeds"] == [0, 1, 2]
    assert cli.main(["reproduce", "00", "--seeds", "0,x"]) == 2
    assert "--seeds '0,x' is not allowed; write integers separated by commas" in (
        capsys.readouterr().err
    )
