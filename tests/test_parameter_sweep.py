"""Every notebook parameter, tried with wrong types, values out of range and every boundary.

No list per notebook is written here: the parameters come from each notebook's cell
tagged `parameters`, and what each may be from its spec in `sslm_lab.lab.profiles`
(`NOTEBOOK_PARAMETERS`), whose `bad_values` and `good_values` give the cases. A bad value
must stop the notebook in the validation cell (the first code cell after the parameters)
with a message naming the parameter; a good one must pass it.

The many cases run the parameters cell and the validation cell in this process, the way
papermill would (its injected values replace the defaults), which takes milliseconds a
case. For each notebook, one bad and one good case also go through papermill itself, on
the notebook cut after its validation cell, so the real path is checked too.
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
from sslm_lab.lab.profiles.parameters import TOGETHER

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


def truncated(name: str, folder: Path) -> Path:
    """The notebook cut after its validation cell, written to `folder`."""
    notebook, validation = first_cells(name)
    notebook.cells = notebook.cells[: validation + 1]
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_papermill_stops_at_the_validation_cell_and_passes_a_boundary(name, tmp_path) -> None:
    specs = NOTEBOOK_PARAMETERS[name].specs
    parameter, spec = next(iter(specs.items()))
    source = truncated(name, tmp_path)
    run = {"kernel_name": "python3", "cwd": str(tmp_path), "progress_bar": False}
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        bad = {"profile": "smoke", parameter: "not a valid value"}
        papermill.execute_notebook(str(source), str(tmp_path / "bad.ipynb"), parameters=bad, **run)
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
    good = {"profile": "smoke", **{p: s.good_values()[0] for p, s in specs.items()}}
    papermill.execute_notebook(str(source), str(tmp_path / "good.ipynb"), parameters=good, **run)
