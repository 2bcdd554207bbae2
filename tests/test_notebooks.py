"""The notebooks are tests: pairs stay in sync, and papermill runs each with parameters.

nbval executes the same notebooks separately (the `notebooks/` folder is on pytest's
path with `--nbval-lax`); this file checks what nbval can't: the jupytext pairs, that
parameters reach the notebook, and the numbers each notebook records.

Each notebook is run twice with papermill, each run's records checked: with its default
`smoke` parameters by the grading test in test_exercises.py (the student copy, whose
cells after a failed exercise still run), and here with a different parameter set. A
notebook without exercises has its default run here as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
from notebook_records import PAPERMILL_CASES

from sslm_lab.lab.exercises import exercises
from sslm_lab.lab.stored import stamp, stamp_problem

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("*.ipynb"))
GRADED = {path.stem for path in PAIRS if exercises(nbformat.read(path, as_version=4))}


def test_notebook_folder_is_not_empty() -> None:
    assert PAIRS, f"no notebooks found in {NOTEBOOKS}"


@pytest.mark.parametrize("ipynb", PAIRS, ids=lambda path: path.stem)
def test_pair_in_sync(ipynb: Path) -> None:
    source = ipynb.with_suffix(".py")
    assert source.exists(), f"{ipynb.name} has no paired {source.name}"
    notebook = jupytext.read(ipynb)
    as_text = jupytext.writes(notebook, fmt="py:percent")
    assert as_text == source.read_text(), (
        f"{ipynb.name} and {source.name} differ: run `jupytext --sync {source}`"
    )


@pytest.mark.parametrize("ipynb", PAIRS, ids=lambda path: path.stem)
def test_stored_outputs_come_from_the_committed_source(ipynb: Path) -> None:
    """The outputs in the .ipynb were made by the code now in the .py (`lab.stored`)."""
    problem = stamp_problem(
        nbformat.read(ipynb, as_version=4), jupytext.read(ipynb.with_suffix(".py"))
    )
    assert problem is None, (
        f"{ipynb.name}'s stored outputs may not come from {ipynb.stem}.py: {problem}; run "
        f"`sslm-lab execute {ipynb.stem} --profile laptop`"
    )


def test_a_cell_edited_after_execution_breaks_the_stamp() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    stamp(notebook, "laptop")
    edited = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(2)")])
    assert stamp_problem(notebook, notebook) is None
    assert stamp_problem(notebook, edited) == "its code cells changed after its outputs were made"
    assert "no stamp" in stamp_problem(edited, edited)


@pytest.mark.parametrize("ipynb", PAIRS, ids=lambda path: path.stem)
def test_parameters_cell_first(ipynb: Path) -> None:
    """The first code cell is tagged `parameters` and starts with `profile`."""
    notebook = nbformat.read(ipynb, as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), "first code cell lacks the tag"
    assert first_code.source.startswith("profile = "), "the parameters cell must start with profile"


def test_every_notebook_has_papermill_cases() -> None:
    missing = sorted({path.stem for path in PAIRS} - set(PAPERMILL_CASES))
    assert not missing, f"add papermill cases for: {missing}"


def test_every_notebook_has_a_default_and_a_different_parameter_set() -> None:
    for name, (parameter_sets, _) in PAPERMILL_CASES.items():
        assert len(parameter_sets) >= 2, name
        assert parameter_sets[0] == {"profile": "smoke"}, f"{name}: the default set comes first"
        assert all(len(params) > 1 for params in parameter_sets[1:]), name


# The default set of a notebook with exercises runs in test_exercises.py's grading test.
CASES = [
    pytest.param(name, index, id=f"{name}-{index}")
    for name, (parameter_sets, _) in PAPERMILL_CASES.items()
    for index in range(len(parameter_sets))
    if index > 0 or name not in GRADED
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "index"), CASES)
def test_papermill(name: str, index: int, tmp_path: Path, monkeypatch) -> None:
    parameter_sets, check = PAPERMILL_CASES[name]
    params = parameter_sets[index]
    monkeypatch.setenv("SSLM_RESULTS_DIR", str(tmp_path))
    output = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(output),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=600,
    )
    executed = nbformat.read(output, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1, "papermill did not inject the parameters"
    records = json.loads((tmp_path / "results.json").read_text())
    assert records[name]["profile"] == params["profile"]
    check(records[name]["metrics"], params)
