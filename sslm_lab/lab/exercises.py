"""Exercises in nbgrader's format: the students' copies, and grading a class's submissions.

An exercise in a notebook is two code cells, with nbgrader's cell metadata (in the
py:percent source it sits on the cell line, `# %% nbgrader={...}`):

- a *solution* cell (`"solution": true`) whose answer stands between `### BEGIN SOLUTION`
  and `### END SOLUTION`;
- a *check* cell (`"grade": true, "points": N`, locked) that compares the student's
  function with the package's on fixed inputs, and may hold more comparisons between
  `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`, for grading only.

Later cells use the package's version, never the student's, so an unsolved exercise
fails its own check and nothing else. Instructors can drop the notebooks into an nbgrader
course as they are; without one:

    student_copy(notebook)          nbgrader's own ClearSolutions and ClearHiddenTests, and
                                    the outputs of exercise cells cleared
    grade_notebook(path)            run it (papermill, smoke sizes, a timeout), then score
                                    every check cell with nbgrader's determine_grade

Needs the optional extra `course` (`pip install 'sslm_lab[course]'`: nbgrader).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from sslm_lab.checks import check_int

KERNEL = "python3"


def _nbgrader() -> Any:
    try:
        import nbgrader.preprocessors
        import nbgrader.utils
    except ImportError:
        raise ModuleNotFoundError(
            "exercises need nbgrader: pip install 'sslm_lab[course]' (nbgrader 0.9 works "
            "beside JupyterLab 4)"
        ) from None
    return nbgrader


@dataclass(frozen=True)
class Exercise:
    """One graded check cell: its id, its points, and the solution cell it checks."""

    grade_id: str
    points: float
    cell_index: int


def nbgrader_metadata(cell: nbformat.NotebookNode) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """The graded check cells of `notebook`, in order."""
    found = []
    for index, cell in enumerate(notebook.cells):
        meta = nbgrader_metadata(cell)
        if meta.get("grade"):
            found.append(Exercise(meta["grade_id"], float(meta["points"]), index))
    return found


def solution_regions(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """The lines between BEGIN SOLUTION and END SOLUTION, one list per region."""
    regions, current = [], None
    for cell in notebook.cells:
        for line in cell.source.split("\n"):
            if "### BEGIN SOLUTION" in line:
                current = []
            elif "### END SOLUTION" in line:
                regions.append(current or [])
                current = None
            elif current is not None:
                current.append(line)
    return regions


def student_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The students' version: solutions replaced by a stub that raises NotImplementedError,
    hidden tests removed, and the outputs of solution and check cells cleared (by
    nbgrader's own preprocessors). The notebook given is not changed."""
    nbgrader = _nbgrader()
    student = copy.deepcopy(notebook)
    resources: dict[str, Any] = {}
    for preprocessor in (
        nbgrader.preprocessors.ClearSolutions(),
        nbgrader.preprocessors.ClearHiddenTests(),
    ):
        student, resources = preprocessor.preprocess(student, resources)
    clear = nbgrader.preprocessors.ClearOutput()
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code" and nbgrader_metadata(cell):
            clear.preprocess_cell(cell, resources, index)
    return student


def write_student_copies(notebooks: list[Path], out_dir: str | os.PathLike) -> list[Path]:
    """A student copy of each notebook in `out_dir` (which must be new or empty)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: name a new folder, so nothing is overwritten")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student = student_copy(nbformat.read(path, as_version=4))
        target = out / Path(path).name
        nbformat.write(student, target)
        written.append(target)
    return written


# ---------------------------------------------------------------------------- grading


@dataclass
class Grade:
    """What one submission scored: points per exercise, and why a check failed."""

    notebook: str
    points: dict[str, float] = field(default_factory=dict)
    possible: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # grade_id -> the check's error
    error: str | None = None  # the submission itself could not be run
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.points.values())


def _error_text(cell: nbformat.NotebookNode) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output['ename']}: {output['evalue']}".splitlines()[0][:300]
    return ""


def score(notebook: nbformat.NotebookNode, name: str) -> Grade:
    """Score an executed notebook's check cells with nbgrader's determine_grade."""
    nbgrader = _nbgrader()
    grade = Grade(name)
    for exercise in exercises(notebook):
        cell = notebook.cells[exercise.cell_index]
        points, possible = nbgrader.utils.determine_grade(cell)
        grade.points[exercise.grade_id] = float(points or 0.0)
        grade.possible[exercise.grade_id] = float(possible)
        message = _error_text(cell)
        if message:
            grade.messages[exercise.grade_id] = message
    return grade


def grade_notebook(
    path: str | os.PathLike, out_dir: str | os.PathLike, timeout: int = 600
) -> Grade:
    """Run a submission at smoke size with papermill, every cell even after errors, then
    score it. A submission that cannot run (not a notebook, a cell past `timeout` seconds)
    is reported with the reason and scores 0 on every exercise it has."""
    import papermill

    check_int("timeout", timeout, low=1, hint="seconds one cell may run")
    path, out = Path(path), Path(out_dir)
    # The path as given names the row: 200 students' files are all called 00_tour.ipynb,
    # and submissions/alice/00_tour.ipynb says whose it is.
    label = str(path)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / path.name
    started = time.perf_counter()
    try:
        original = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook
        return Grade(label, error=f"cannot read the notebook ({type(error).__name__}: {error})")
    failure = None
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters={"profile": "smoke"},
            kernel_name=KERNEL,
            language="python",
            cwd=str(out),
            progress_bar=False,
            execution_timeout=timeout,
            allow_errors=True,  # a failed check must not stop the checks after it
        )
    except papermill.PapermillExecutionError:
        pass  # cells raised; their outputs say which, and score() reads them
    except Exception as error:  # a timeout, a dead kernel
        failure = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    notebook = nbformat.read(executed, as_version=4) if executed.exists() else original
    grade = score(notebook, label)
    if failure is not None:
        grade.error = failure
        grade.points = {grade_id: 0.0 for grade_id in grade.possible}
    grade.seconds = time.perf_counter() - started
    return grade


def grades_table(grades: list[Grade]) -> str:
    """A Markdown table: one row per notebook and exercise, with points and the failure."""
    lines = ["| notebook | exercise | points | failing check |", "| --- | --- | --- | --- |"]
    for grade in grades:
        if grade.error and not grade.possible:
            lines.append(f"| {grade.notebook} | – | 0 | {grade.error} |")
        for grade_id, possible in grade.possible.items():
            why = grade.messages.get(grade_id, "") or (grade.error or "")
            why = why.replace("|", "\\|")
            points = grade.points.get(grade_id, 0.0)
            lines.append(f"| {grade.notebook} | {grade_id} | {points:g} / {possible:g} | {why} |")
        if grade.possible:
            total = sum(grade.possible.values())
            lines.append(f"| {grade.notebook} | **total** | **{grade.total:g} / {total:g}** | |")
    return "\n".join(lines) + "\n"
