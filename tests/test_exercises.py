"""Exercises in nbgrader's format: student copies, grading, and the jupytext round trip.

A small instructor notebook is built here, so these tests run in seconds; the same
functions make the student copies of the real notebooks (`sslm-lab student`).
"""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest
from notebook_records import PAPERMILL_CASES

from sslm_lab.lab import cli
from sslm_lab.lab.exercises import (
    exercises,
    grade_notebook,
    grades_table,
    solution_regions,
    student_copy,
)

SOLUTION = '"grade": false, "grade_id": "{id}", "locked": false, "schema_version": 3, '
SOLUTION += '"solution": true, "task": false'
CHECK = '"grade": true, "grade_id": "{id}", "locked": true, "points": {points}, '
CHECK += '"schema_version": 3, "solution": false, "task": false'
SOURCE = f"""# %% tags=["parameters"]
profile = None

# %%
import math

# %% nbgrader={{{SOLUTION.format(id="square")}}}
def square(x):
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION


# %% nbgrader={{{CHECK.format(id="square_check", points=2)}}}
assert square(3) == 9, "square(3) should be 9"
### BEGIN HIDDEN TESTS
assert square(-2) == 4
### END HIDDEN TESTS

# %% nbgrader={{{SOLUTION.format(id="cube")}}}
def cube(x):
    ### BEGIN SOLUTION
    return x**3
    ### END SOLUTION


# %% nbgrader={{{CHECK.format(id="cube_check", points=1)}}}
assert cube(2) == 8, "cube(2) should be 8"

# %%
# Later cells use the package's way (here: math), never the student's function.
print("still running:", math.sqrt(16))
"""


def instructor_notebook(folder: Path) -> Path:
    notebook = jupytext.reads(SOURCE, fmt="py:percent")
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    path = folder / "lesson.ipynb"
    nbformat.write(notebook, path)
    return path


def error_cells(path: Path) -> list[str]:
    """grade_ids of the executed cells that show an error (any cell, graded or not)."""
    notebook = nbformat.read(path, as_version=4)
    return [
        cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
        for index, cell in enumerate(notebook.cells)
        if any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    ]


def test_nbgrader_metadata_survives_the_jupytext_round_trip() -> None:
    notebook = jupytext.reads(SOURCE, fmt="py:percent")
    notebook.metadata["jupytext"] = {"cell_metadata_filter": "tags,nbgrader,-all"}
    again = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
    assert [c.metadata for c in again.cells] == [c.metadata for c in notebook.cells]
    assert [e.grade_id for e in exercises(again)] == ["square_check", "cube_check"]
    project = Path(__file__).resolve().parent.parent / "jupytext.toml"
    assert 'cell_metadata_filter = "tags,nbgrader,-all"' in project.read_text()


def test_the_student_copy_has_no_solution_line_and_no_hidden_test(tmp_path) -> None:
    instructor = nbformat.read(instructor_notebook(tmp_path), as_version=4)
    student = student_copy(instructor)
    text = "\n".join(cell.source for cell in student.cells)
    for region in solution_regions(instructor):
        for line in region:
            assert line.strip() not in text, f"solution line left in: {line!r}"
    assert "HIDDEN" not in text and "square(-2)" not in text
    assert text.count("raise NotImplementedError()") == 2
    assert "square(-2)" in "\n".join(c.source for c in instructor.cells), "original changed"


def test_grading_scores_instructor_student_and_pasted_back_copies(tmp_path) -> None:
    instructor = instructor_notebook(tmp_path)
    full = grade_notebook(instructor, tmp_path / "graded-instructor", timeout=120)
    assert full.points == full.possible == {"square_check": 2.0, "cube_check": 1.0}
    assert full.error is None and full.messages == {}

    student = tmp_path / "student" / "lesson.ipynb"
    student.parent.mkdir()
    nbformat.write(student_copy(nbformat.read(instructor, as_version=4)), student)
    blank = grade_notebook(student, tmp_path / "graded-student", timeout=120)
    assert blank.total == 0 and set(blank.messages) == {"square_check", "cube_check"}
    assert blank.messages["square_check"].startswith("NotImplementedError")
    # Executed, the student copy fails its exercise checks and nothing else...
    executed = tmp_path / "graded-student" / "lesson.ipynb"
    assert error_cells(executed) == ["square_check", "cube_check"]
    assert "still running: 4.0" in json.dumps(nbformat.read(executed, as_version=4).cells[-1])

    # ...and with the solutions pasted back it scores full marks again.
    pasted = nbformat.read(student, as_version=4)
    originals = nbformat.read(instructor, as_version=4)
    for cell, original in zip(pasted.cells, originals.cells, strict=True):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = original.source
    pasted_path = tmp_path / "pasted" / "lesson.ipynb"
    pasted_path.parent.mkdir()
    nbformat.write(pasted, pasted_path)
    again = grade_notebook(pasted_path, tmp_path / "graded-pasted", timeout=120)
    assert again.points == again.possible  # the hidden test runs again only on the instructor's


def test_grade_reports_broken_submissions_and_goes_on(tmp_path, capsys) -> None:
    instructor = instructor_notebook(tmp_path)
    broken = nbformat.read(instructor, as_version=4)
    broken.cells[2].source = "def square(x):\n    return x *"  # a syntax error
    looping = nbformat.read(instructor, as_version=4)
    looping.cells[4].source = "def cube(x):\n    while True:\n        pass\n\ncube(1)"
    paths = []
    for name, notebook in (("broken", broken), ("looping", looping)):
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(notebook, path)
        paths.append(path)
    not_json = tmp_path / "garbage.ipynb"
    not_json.write_text("this is not a notebook")
    out = tmp_path / "grades"
    code = cli.main(
        ["grade", str(paths[0]), str(paths[1]), str(not_json), "--out", str(out), "--timeout", "5"]
    )
    assert code == 0
    rows = json.loads((out / "grades.json").read_text())
    # each row is named by the path as given, so same-named files of two students differ
    assert [r["notebook"] for r in rows] == [str(paths[0]), str(paths[1]), str(not_json)]
    records = {Path(r["notebook"]).name: r for r in rows}
    assert records["broken.ipynb"]["points"] == {"square_check": 0.0, "cube_check": 1.0}
    assert (
        "SyntaxError" in records["broken.ipynb"]["messages"]["square_check"]
        or "NameError" in (records["broken.ipynb"]["messages"]["square_check"])
    )
    assert "Timeout" in records["looping.ipynb"]["error"] and records["looping.ipynb"]["total"] == 0
    assert records["garbage.ipynb"]["error"].startswith("cannot read the notebook")
    table = (out / "grades.md").read_text()
    assert f"| {paths[0]} | square_check | 0 / 2 |" in table and "garbage.ipynb" in table
    assert grades_table([]).count("\n") == 2


def test_student_command_writes_copies_and_refuses_a_full_folder(tmp_path, capsys) -> None:
    instructor = instructor_notebook(tmp_path)
    out = tmp_path / "class"
    assert cli.main(["student", str(out), str(instructor)]) == 0
    copy = nbformat.read(out / "lesson.ipynb", as_version=4)
    assert "x * x" not in "\n".join(cell.source for cell in copy.cells)
    assert cli.main(["student", str(out), str(instructor)]) == 2
    assert "is not empty" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_a_bad_timeout_is_refused_before_anything_runs(tmp_path, bad) -> None:
    from sslm_lab.checks import ArgumentError

    with pytest.raises(ArgumentError, match=r"timeout="):
        grade_notebook(instructor_notebook(tmp_path), tmp_path / "out", timeout=int(bad))


# ---------------------------------------------------------------- the real notebooks

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WITH_EXERCISES = [
    path for path in sorted(NOTEBOOKS.glob("*.ipynb")) if exercises(nbformat.read(path, 4))
]


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda path: path.stem)
def test_a_real_notebooks_student_copy_keeps_no_solution(path: Path) -> None:
    instructor = nbformat.read(path, as_version=4)
    student_lines = "\n".join(cell.source for cell in student_copy(instructor).cells).split("\n")
    # A solution line may also stand outside any solution (a common idiom): it must not
    # occur in the copy more often than it does outside the solutions.
    outside, inside = [], False
    for line in "\n".join(cell.source for cell in instructor.cells).split("\n"):
        inside = inside or "### BEGIN SOLUTION" in line
        if not inside:
            outside.append(line)
        inside = inside and "### END SOLUTION" not in line
    for region in solution_regions(instructor):
        for line in region:
            if line.strip():
                left = student_lines.count(line) - outside.count(line)
                assert left <= 0, f"{path.name}: solution line left in: {line!r}"
    assert not any("BEGIN HIDDEN TESTS" in line for line in student_lines)
    assert 3 <= len(exercises(instructor)) <= 5, "3-5 exercises per notebook"


@pytest.mark.slow
def test_a_real_notebook_scores_full_marks(tmp_path: Path, monkeypatch) -> None:
    """The instructor's copy of one real notebook, graded. (nbval runs every instructor
    copy, so a failing check anywhere fails the suite already; this shows the scoring of
    real check cells.)"""
    path = NOTEBOOKS / "00_tour.ipynb"
    monkeypatch.setenv("SSLM_RESULTS_DIR", str(tmp_path / "results"))
    full = grade_notebook(path, tmp_path / "instructor", timeout=600)
    assert full.error is None and full.points == full.possible, full.messages
    assert full.total == sum(e.points for e in exercises(nbformat.read(path, 4))) > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda path: path.stem)
def test_a_real_notebooks_student_copy_fails_only_its_checks_and_records_its_results(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSLM_RESULTS_DIR", str(tmp_path / "results"))
    student = tmp_path / "student" / path.name
    student.parent.mkdir()
    nbformat.write(student_copy(nbformat.read(path, as_version=4)), student)
    blank = grade_notebook(student, tmp_path / "graded", timeout=600)
    checks = [exercise.grade_id for exercise in exercises(nbformat.read(path, 4))]
    assert blank.error is None, blank.error
    assert blank.total == 0 and sorted(blank.messages) == sorted(checks)
    assert error_cells(tmp_path / "graded" / path.name) == checks, "a non-exercise cell failed"
    # This is the notebook's run with its default parameters: what it recorded is checked
    # here, as test_notebooks.py checks the run with other parameters.
    parameter_sets, check = PAPERMILL_CASES[path.stem]
    records = json.loads((tmp_path / "results" / "results.json").read_text())
    assert records[path.stem]["profile"] == "smoke"
    check(records[path.stem]["metrics"], parameter_sets[0])
