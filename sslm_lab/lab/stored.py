"""Stored outputs that come from the committed source, and the command that makes them.

A notebook's `.ipynb` carries the outputs a reader sees without running anything. They
are only worth trusting if the code that printed them is the code in the `.py` beside
it; editing a cell and syncing the pair keeps the old outputs under the new code. So
every execution of a stored notebook stamps it:

    sslm-lab execute 04 05 --profile laptop      # execute in place, then stamp

writes into the notebook's metadata the sha256 of its code cells, as they were when the
outputs were made (`code_hash`), and the profile. tests/test_notebooks.py compares that
stamp with the hash of the code cells of the `.py` (`stamp_problem`): an edited cell not
re-executed fails the tests, naming the notebook and the command to run.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import nbformat

from sslm_lab.lab.profiles import resolve_profile_name
from sslm_lab.lab.reproduce import NOTEBOOKS, _environment, available_notebooks, select_notebooks

STAMP_KEY = "sslm_lab"


def code_hash(notebook: nbformat.NotebookNode) -> str:
    """sha256 of the notebook's code cells in order: the same from either file of a pair."""
    sources = [cell.source.strip() for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256("\n\x1e\n".join(sources).encode("utf-8")).hexdigest()


def stamp(notebook: nbformat.NotebookNode, profile: str) -> None:
    """Record in `notebook`'s metadata that its outputs come from its code cells as they are."""
    notebook.metadata[STAMP_KEY] = {
        "code_sha256": code_hash(notebook),
        "profile": profile,
        "executed": time.strftime("%Y-%m-%d"),
    }


def stamp_problem(stored: nbformat.NotebookNode, source: nbformat.NotebookNode) -> str | None:
    """Why the stored notebook's outputs may not come from `source`'s code; None if they do."""
    recorded = stored.metadata.get(STAMP_KEY, {}).get("code_sha256")
    if recorded is None:
        return "it has no stamp: it was not executed with `sslm-lab execute`"
    if recorded != code_hash(source):
        return "its code cells changed after its outputs were made"
    return None


def execute_stored(
    requested: list[str], profile: str | None = None, timeout: int | None = None
) -> list[Path]:
    """Execute each notebook in `notebooks/` in place, in running order, and stamp it.

    The kernel runs in the notebooks' folder with `SSLM_PROFILE` set, as a reader's would;
    `results.json` and run folders go where the environment says (see `lab.results`).
    """
    from nbclient import NotebookClient

    profile = resolve_profile_name(profile)
    written = []
    for name in select_notebooks(requested, available_notebooks()):
        path = NOTEBOOKS / f"{name}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        with _environment(SSLM_PROFILE=profile):
            client = NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            )
            client.execute()
        stamp(notebook, profile)
        nbformat.write(notebook, path)
        print(f"{name}: executed at {profile} in {time.perf_counter() - started:.0f} s, stamped")
        written.append(path)
    return written


def unstamped(folder: Path = NOTEBOOKS) -> dict[str, str]:
    """Each notebook pair in `folder` whose stored outputs may not come from its `.py`."""
    import jupytext

    problems = {}
    for name in available_notebooks(folder):
        stored = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        problem = stamp_problem(stored, jupytext.read(folder / f"{name}.py"))
        if problem is not None:
            problems[name] = problem
    return problems
