"""Every notebook parameter, tried with wrong types, values out of range and every boundary.

No list per notebook is written here: the parameters come from each notebook's cell
tagged `parameters`, and what each may be from its spec in `sslm_lab.lab.profiles`
(`NOTEBOOK_PARAMETERS`), whose `bad_values` and `good_values` give the cases. A bad value
must stop the notebook in the validation cell (the first code cell after the parameters)
with a message naming the parameter; a good one must pass it.

The many cases run the parameters cell and the validation cell in this process, the way
papermill would (its injected values replace the defaults), which takes milliseconds a
case. For each notebook, one bad case also goes through papermill itself, on the notebook
cut after its validation cell, so the real path is checked too; good values go through it
in the runs at the ends.

A spec can also allow a value that the notebook fails on later. So each notebook also
runs, through papermill, with every parameter at the low end of what its spec allows and
then at the high end (`ends`: the smallest sizes, the largest seed, one character of text
and the longest allowed), cut after the cell that `EXTREME_RUNS` names.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from sslm_lab.checks import ArgumentError
from sslm_lab.lab.profiles import NOTEBOOK_PARAMETERS, PROFILE_NAMES
from sslm_lab.lab.profiles.parameters import TOGETHER, ends

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
PROFILE_BAD, PROFILE_GOOD = [3, "huge", "", True], [*PROFILE_NAMES, None]


def first_cells(name: str) -> tuple[nbformat.NotebookNode, int]:
    """The notebook, and the index of its validation cell (the code cell after parameters)."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    parameters = next(i for i in code if "parameters" in notebook.cells[i].metadata.get("tags", []))
    return notebook, next(i for i in code if i > parameters)


def declared(name: str) -> list[str]:
    notebook, validation = first_cells(name)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict[str, Any] = {}
    exec(cell.source, namespace)
    return [key for key in namespace if not key.startswith("__")]


def run_validation(name: str, values: dict[str, Any]) -> None:
    """The parameters cell, `values` injected after it as papermill does, the validation cell."""
    notebook, validation = first_cells(name)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(parameters.source, namespace)
    namespace.update(values)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(notebook.cells[validation].source, namespace)


def cases(kind: str) -> list:
    found = []
    for name in NAMES:
        specs = NOTEBOOK_PARAMETERS[name].specs if name in NOTEBOOK_PARAMETERS else {}
        profile_values = PROFILE_BAD if kind == "bad" else PROFILE_GOOD
        found += [
            pytest.param(name, "profile", v, id=f"{name}-profile={v!r}") for v in profile_values
        ]
        for parameter, spec in specs.items():
            values = spec.bad_values() if kind == "bad" else spec.good_values()
            found += [
                pytest.param(name, parameter, v, id=f"{name}-{parameter}={v!r}") for v in values
            ]
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_parameter_has_a_spec(name: str) -> None:
    assert name in NOTEBOOK_PARAMETERS, f"add {name}'s Parameters to NOTEBOOK_PARAMETERS"
    assert set(declared(name)) == {"profile", *NOTEBOOK_PARAMETERS[name].specs}, (
        "the parameters cell and the spec in sslm_lab.lab.profiles name different parameters"
    )


@pytest.mark.parametrize(("name", "parameter", "value"), cases("bad"))
def test_a_bad_value_stops_the_notebook_in_its_validation_cell(name, parameter, value) -> None:
    with pytest.raises(ValueError) as caught:  # ArgumentError is a ValueError and a TypeError
        run_validation(name, {"profile": "smoke", parameter: value})
    assert f"{parameter}=" in str(caught.value), str(caught.value)


@pytest.mark.parametrize(("name", "parameter", "value"), cases("good"))
def test_a_boundary_value_passes_the_validation_cell(name, parameter, value, monkeypatch) -> None:
    monkeypatch.setenv("SSLM_PROFILE", "smoke")
    try:
        run_validation(name, {parameter: value})
    except ArgumentError as error:
        # Allowed on its own, but a rule may refuse it beside the others' defaults (n_embd=1
        # with n_head=2): that refusal must say so and name it.
        assert str(error).startswith(TOGETHER) and f"{parameter}=" in str(error), str(error)


def last_cell(name: str, through: str | None = None) -> int:
    """The index of the validation cell, or of the code cell after it that holds `through`."""
    notebook, validation = first_cells(name)
    if through is None:
        return validation
    found = [
        i
        for i, cell in enumerate(notebook.cells)
        if i > validation and cell.cell_type == "code" and through in cell.source
    ]
    assert len(found) == 1, f"{name}: {len(found)} code cells hold {through!r}, not one"
    return found[0]


def truncated(name: str, folder: Path, through: str | None = None) -> Path:
    """The notebook cut after its validation cell (or after the cell `last_cell` finds),
    written to `folder`."""
    notebook, _ = first_cells(name)
    notebook.cells = notebook.cells[: last_cell(name, through) + 1]
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_papermill_stops_at_the_validation_cell(name, tmp_path) -> None:
    """A bad value through papermill itself; the good values' run is the low end's below."""
    parameter = next(iter(NOTEBOOK_PARAMETERS[name].specs))
    source = truncated(name, tmp_path)
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "bad.ipynb"),
            parameters={"profile": "smoke", parameter: "not a valid value"},
            kernel_name="python3",
            cwd=str(tmp_path),
            progress_bar=False,
        )
    assert caught.value.ename == "ArgumentError"
    assert f"{parameter}='not a valid value'" in caught.value.evalue
    executed = nbformat.read(tmp_path / "bad.ipynb", as_version=4)
    failed = [
        c
        for c in executed.cells
        if c.cell_type == "code"
        and c.get("outputs")
        and any(output.get("output_type") == "error" for output in c.outputs)
    ]
    assert len(failed) == 1 and failed[0] is executed.cells[-1], "not the validation cell"


# The runs at the extremes: each notebook, with every parameter at the low end of what its
# spec allows and then at the high end, runs up to the cell that holds the line given here:
# past the cells that read its parameters (its first training run among them), not to its
# end, which would double the notebooks' share of the suite's time. The parameters named
# beside it are first read further on, behind minutes of other work: their ends are
# validated together (below) but not run.
EXTREME_RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "00_tour": ("for tokenizer in tokenizers.values():", ()),  # BPE tokens per character
    "01_attention": ("encoder_config = TransformerConfig(", ()),  # before MiniLM is loaded
    "02_masked_lm": ("fig = plot_masked_lm_history(", ("nsp_ablation",)),  # the trained MLM
    # the KV-cache timings; the prompt's bound is set by the KV-cache exercise further on
    "03_autoregressive_lm": ("cache_speedup = cache_seconds[False]", ("prompt",)),
    "03b_training_craft": ("range_started = time.perf_counter()", ("grad_accumulation", "seeds")),
    "04_vae": ("fixes = [name for name in variants", ()),  # the sentence VAEs
    "05_gan": ("main_run = train_gan(", ("electra_steps",)),  # the main digit GAN
    "06_contrastive": ("simclr_trainer", ("simcse_steps", "query")),  # the main SimCLR run
    "07_fine_tuning": ("encoders ready in", ("finetune_steps", "passage")),  # the pretraining
    "08_real_pretrained_model": ("line_words = words(line)", ("finetune_steps",)),
    "09_known_language": (
        "language = make_language(",
        ("objectives", "budgets", "pretrain_steps"),
    ),
}
ENDS = ("low", "high")


def at_the_end(name: str, end: str) -> dict[str, Any]:
    """Every parameter of the notebook at the `end` ("low" or "high") of what it allows."""
    specs = NOTEBOOK_PARAMETERS[name].specs
    return {parameter: ends(spec)[ENDS.index(end)] for parameter, spec in specs.items()}


@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_has_an_extreme_run_that_ends_after_its_validation_cell(name) -> None:
    assert name in EXTREME_RUNS, f"add {name}'s cut to EXTREME_RUNS"
    through, not_reached = EXTREME_RUNS[name]
    assert last_cell(name, through) > first_cells(name)[1]
    assert set(not_reached) <= set(NOTEBOOK_PARAMETERS[name].specs)


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("name", NAMES)
def test_the_ends_of_every_spec_fit_together(name: str, end: str) -> None:
    NOTEBOOK_PARAMETERS[name].validate(**at_the_end(name, end))  # the rules too


@pytest.mark.slow
@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_with_every_parameter_at_one_end(name, end, tmp_path, monkeypatch):
    monkeypatch.setenv("SSLM_RESULTS_DIR", str(tmp_path))
    # Checkpoints of a one-step run must not reach a later notebook: a folder of its own.
    monkeypatch.setenv("SSLM_RUNS_DIR", str(tmp_path / "runs"))
    source = truncated(name, tmp_path, through=EXTREME_RUNS[name][0])
    papermill.execute_notebook(
        str(source),
        str(tmp_path / f"{end}.ipynb"),
        parameters={"profile": "smoke", **at_the_end(name, end)},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=600,
    )
