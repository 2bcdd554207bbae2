"""Record a notebook's headline metrics in `results.json` beside the executed notebook.

Each notebook ends with one call:

    record_results("00_tour", {"trigram_bpc": 2.1, ...}, profile=P.name)

The file maps notebook name → record, so several notebooks executed in one folder
share one `results.json`. The reproduce runner and the tests read only these records.
Where the file goes: $SSLM_RESULTS_DIR if set, else the kernel's working directory,
which is the notebook's own folder in JupyterLab and under nbval (the papermill
runner passes the output notebook's folder as the working directory).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from sslm_lab.data.cache import project_folder
from sslm_lab.files import atomic_write_text

RESULTS_FILE = "results.json"
ENV_VAR = "SSLM_RESULTS_DIR"
RUNS_ENV_VAR = "SSLM_RUNS_DIR"


def run_dir(notebook: str, profile: str) -> Path:
    """The folder where `notebook` keeps what later notebooks load (checkpoints, tokenizers).

    $SSLM_RUNS_DIR/<notebook>/<profile> if that variable is set, else `runs/` in the
    checkout (git-ignored), else ~/.cache/sslm_lab/runs. One folder per profile, so a
    quick smoke run never overwrites a laptop or gpu checkpoint. Created on demand.
    """
    directory = project_folder(RUNS_ENV_VAR, "runs") / notebook / profile
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def results_path(directory: str | os.PathLike | None = None) -> Path:
    if directory is None:
        directory = os.environ.get(ENV_VAR) or os.getcwd()
    return Path(directory) / RESULTS_FILE


def _check_metric(key: str, value: Any) -> float | int | str | bool:
    if isinstance(value, bool | str):
        return value
    if hasattr(value, "item"):  # numpy and torch scalars
        value = value.item()
    if not isinstance(value, int | float):
        raise TypeError(
            f"metric {key!r} has type {type(value).__name__}; allowed are numbers, bools and strings"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {key!r} is {value}; a recorded metric must be finite")
    return value


def record_results(
    notebook: str,
    metrics: dict[str, Any],
    *,
    profile: str,
    directory: str | os.PathLike | None = None,
) -> Path:
    """Merge `metrics` for `notebook` into results.json and return the file's path.

    The write goes to a temporary file that is renamed into place, so a crash never
    leaves a half-written file and other notebooks' records are kept.
    """
    if not notebook:
        raise ValueError("notebook must be a non-empty name such as '00_tour'")
    clean = {str(key): _check_metric(str(key), value) for key, value in metrics.items()}
    path = results_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = read_results(path.parent) if path.exists() else {}
    records[notebook] = {
        "profile": profile,
        "metrics": clean,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
    }
    return atomic_write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")


def read_results(directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """Read results.json from `directory` (same default as `record_results`)."""
    path = results_path(directory)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no {RESULTS_FILE} at {path}: has the notebook run to the end?"
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and rerun") from error
