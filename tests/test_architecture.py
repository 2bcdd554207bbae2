"""The import direction of sslm_lab, checked by the import-linter contracts in pyproject.toml.

lab on top; the ideas (transformer, heads, masking, ...) and training below it, neither
importing the other; data and the small helpers (files, eval_mode) at the bottom.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the package in `project` with the contracts in its pyproject.toml."""
    environment = {**os.environ, "PYTHONPATH": str(project)}  # before the editable install
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # data is the bottom layer: it may not reach up to the notebook tooling...
        ("data/cache.py", "import sslm_lab.lab.results", "lab on top"),
        # ...the trainer may not know an objective...
        ("training/batches.py", "import sslm_lab.objectives", "the trainer knows no objective"),
        # ...an idea may not know the trainer...
        ("masking.py", "import sslm_lab.training.trainer", "an idea knows no trainer"),
        # ...and the checkpoint files may not reach into the loop, not even for typing.
        (
            "training/checkpoint.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sslm_lab.training.trainer",
            "checkpoints and callbacks know no trainer",
        ),
    ],
)
def test_an_import_against_the_direction_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(ROOT / "sslm_lab", tmp_path / "sslm_lab")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "sslm_lab" / module
    target.write_text(target.read_text() + f"\n{line}  # added against the direction\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout


def test_a_new_module_needs_a_layer(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "sslm_lab", tmp_path / "sslm_lab")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "sslm_lab" / "newidea.py").write_text('"""An idea not yet placed."""\n')
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "newidea" in result.stdout + result.stderr
