"""Run the notebooks with papermill at one profile and gather what they recorded.

    sslm-lab reproduce                         # every notebook, in order, laptop profile
    sslm-lab reproduce --profile gpu           # the headline numbers, on one GPU
    sslm-lab reproduce 02 03 --profile smoke   # some notebooks, by number or by name
    sslm-lab reproduce -p seed=1               # a parameter, for each notebook that has it
    sslm-lab reproduce --list                  # the notebooks and the parameters each has
    sslm-lab reproduce --profile gpu --dry-run # gpu shapes, 2 steps each, on any machine
    sslm-lab reproduce --seeds 0,1,2           # every notebook once per seed, then mean ± interval

Everything goes to one folder, `runs/reproduce/<profile>-<date>-<time>/` unless `--out`
names another:

    NN_name.ipynb   each notebook as executed, outputs and all
    results.json    what each notebook recorded (`sslm_lab.lab.results.record_results`)
    results.md      the same as tables, with status and wall time per notebook
    summary.json    status, wall time, error and metrics per notebook, and the machine

The notebooks run in order because later ones load what earlier ones saved (under
`runs/<notebook>/<profile>/`). A notebook that fails (an error, or an assertion about
what it should have learned) is reported with its error and the rest still run, unless
`--stop-on-failure`; the exit code is 1 when any failed. The two reports are rewritten
after every notebook, so an interrupted run keeps what it finished.

With `--seeds 0,1,2` the chosen notebooks run in order once per seed, each seed into its
own folder `seed-<s>/` (reports, executed notebooks, and `runs/` for what the notebooks
save, so one seed's 07 reuses that seed's 02); the top folder's `results.md` and
`summary.json` then give, per notebook and metric, the mean over the seeds that ran, a 95 %
Student-t interval of that mean and n, and for verdicts and other text the count of each
value. A seed's notebook that failed is left out of its metrics, and its row says so.

A dry run (`--dry-run`, `sslm_lab.lab.dry_run`) runs each notebook at its profile's
shapes with training cut to two steps, evaluation to a batch and the assertions about
what was learned skipped, keeps what the notebooks save in its own folder, and adds to
both reports each notebook's models, parameter counts and memory per training step.
"""

from __future__ import annotations

import ast
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from sslm_lab.checks import check_bool, check_int
from sslm_lab.files import atomic_write_text
from sslm_lab.lab import dry_run as dry_runs
from sslm_lab.lab.profiles import resolve_profile_name
from sslm_lab.lab.profiles.parameters import MAX_SEED
from sslm_lab.lab.results import ENV_VAR as RESULTS_ENV_VAR
from sslm_lab.lab.results import RESULTS_FILE, RUNS_ENV_VAR, read_results, results_path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO_ROOT / "notebooks"


@dataclass
class NotebookRun:
    """One notebook's execution: how it ended, how long it took, what it recorded."""

    name: str
    status: str = "not run"  # "ok", "failed" or "not run"
    seconds: float | None = None
    error: str | None = None  # "ValueError: ..." for a failed notebook
    failed_cell: int | None = None  # execution count of the failing cell
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float | None = None  # this process's and its kernel's, user + system
    # A dry run's findings (sslm_lab.lab.dry_run): "skipped" assertions, "cuts" made,
    # "fits" (one record per trainer: model, parameters, batch, memory), "kernel" peak.
    dry_run: dict[str, Any] | None = None


def available_notebooks(folder: Path = NOTEBOOKS) -> list[str]:
    """The notebooks in `folder`, by name (`00_tour`, ...), in their running order."""
    return sorted(path.stem for path in Path(folder).glob("*.ipynb"))


def select_notebooks(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """Resolve names or number prefixes ("02", "02_masked_lm") to notebooks, in running order.

    Nothing requested means all of them.
    """
    if not requested:
        return list(available)
    chosen = set()
    for request in requested:
        matches = [name for name in available if name == request or name.split("_")[0] == request]
        if len(matches) != 1:
            raise ValueError(
                f"notebook {request!r} is not one of the notebooks; give a name or its number: "
                + ", ".join(available)
            )
        chosen.add(matches[0])
    return [name for name in available if name in chosen]


def parse_parameter(text: str) -> tuple[str, Any]:
    """ "name=value" -> (name, value); the value is read as a Python or JSON literal if it
    is one (1, 0.5, True, true, None, "text"), else kept as the string typed."""
    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals or not name.isidentifier():
        raise ValueError(f"parameter {text!r} is not allowed; write NAME=VALUE, e.g. seed=1")
    for parse in (ast.literal_eval, json.loads):
        try:
            return name, parse(raw)
        except (ValueError, SyntaxError):
            continue
    return name, raw


def declared_parameters(notebook: Path) -> dict[str, str]:
    """The names in a notebook's cell tagged `parameters`, with their defaults as written."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    return {name: entry["default"] for name, entry in found.items()}


def describe_notebooks(folder: Path = NOTEBOOKS) -> str:
    """Each notebook with the parameters `-p` can set, and their defaults."""
    lines = []
    for name in available_notebooks(folder):
        declared = declared_parameters(Path(folder) / f"{name}.ipynb")
        given = ", ".join(f"{key}={value}" for key, value in declared.items() if key != "profile")
        lines.append(f"{name}: {given or '(no parameters besides profile)'}")
    return "\n".join(lines)


def parameters_for(
    names: Sequence[str], folder: Path, parameters: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Give each notebook the parameters its own parameters cell declares.

    A parameter that none of the chosen notebooks declares is a typo: refuse it before
    anything runs, naming the parameters they do have.
    """
    declared = {name: declared_parameters(folder / f"{name}.ipynb") for name in names}
    known = set().union(*declared.values()) if declared else set()
    for key in parameters:
        if key == "profile":
            raise ValueError("give the profile with --profile, not as -p profile=...")
        if key not in known:
            raise ValueError(
                f"parameter {key!r} is not declared by any of {', '.join(names)}; "
                f"their parameters are: {', '.join(sorted(known - {'profile'}))}"
            )
    return {
        name: {key: value for key, value in parameters.items() if key in declared[name]}
        for name in names
    }


@contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set environment variables for the kernels papermill starts (None: unset one), then
    restore them."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(
    run: NotebookRun,
    source: Path,
    out: Path,
    profile: str,
    timeout: int | None,
    dry_run: bool = False,
    runs_dir: Path | None = None,
) -> NotebookRun:
    """Execute one notebook into `out`; fill in `run` with how it went. `runs_dir`: where
    the notebook saves and looks for checkpoints (else the environment's or the project's).

    A dry run executes a prepared copy of the notebook (`sslm_lab.lab.dry_run.prepare`)
    and reads what its kernel logged."""
    # A dry run's step cap left in the shell must not cut a real run short.
    variables = {RESULTS_ENV_VAR: str(out), "SSLM_PROFILE": profile, **dry_runs.UNSET}
    if runs_dir is not None:
        variables[RUNS_ENV_VAR] = str(runs_dir)
    with tempfile.TemporaryDirectory() as scratch:
        if dry_run:
            source = _prepare_dry_run(run, source, Path(scratch), out, profile)
            variables.update(dry_runs.environment(out, run.name))
        return _execute(run, source, out, profile, timeout, variables)


def _prepare_dry_run(
    run: NotebookRun, source: Path, scratch: Path, out: Path, profile: str
) -> Path:
    notebook, skipped = dry_runs.prepare(nbformat.read(source, as_version=4), run.name, profile)
    cuts = dry_runs.cuts_for(profile, run.name)
    run.dry_run = {"skipped": skipped, "cuts": cuts, "fits": [], "kernel": {}}
    prepared = scratch / source.name
    nbformat.write(notebook, prepared)
    log = dry_runs.log_path(out, run.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    return prepared


def _execute(
    run: NotebookRun,
    source: Path,
    out: Path,
    profile: str,
    timeout: int | None,
    variables: dict[str, str | None],
) -> NotebookRun:
    import papermill

    started, cpu_started = time.perf_counter(), _cpu_seconds()
    try:
        with _environment(**variables):
            papermill.execute_notebook(
                str(source),
                str(out / source.name),
                parameters={"profile": profile, **run.parameters},
                kernel_name="python3",
                cwd=str(out),
                progress_bar=False,
                execution_timeout=timeout,
            )
        run.status = "ok"
    except papermill.PapermillExecutionError as error:
        run.status = "failed"
        run.error = f"{error.ename}: {error.evalue}"
        run.failed_cell = error.exec_count
    except Exception as error:  # the kernel died, a cell timed out, the file is broken
        run.status = "failed"
        run.error = f"{type(error).__name__}: {error}"
    run.seconds = time.perf_counter() - started
    run.cpu_seconds = _cpu_seconds() - cpu_started
    records = read_results(out) if results_path(out).exists() else {}
    if run.name in records:
        run.metrics = records[run.name]["metrics"]
    if run.dry_run is not None:
        run.dry_run.update(dry_runs.read_log(dry_runs.log_path(out, run.name)))
    return run


def machine() -> dict[str, str]:
    """What the numbers were measured on: device, versions, and the checkout's commit."""
    import torch

    from sslm_lab.training.hardware import device_name, resolve_device

    info = {
        "device": device_name(resolve_device("auto")),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": str(torch.get_num_threads()),
    }
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    info["commit"] = commit or "unknown (not a git checkout)"
    return info


def _value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def markdown_report(runs: Sequence[NotebookRun], profile: str, context: dict[str, str]) -> str:
    """The results as Markdown: one line per notebook, then each notebook's metrics (or,
    for a dry run, what each notebook built and the memory of its training steps)."""
    dry_run = any(run.dry_run is not None for run in runs)
    lines = [
        f"# sslm_lab {'dry run' if dry_run else 'results'}, profile `{profile}`",
        "",
        ", ".join(f"{key} {value}" for key, value in context.items()),
        "",
    ]
    if dry_run:
        lines += [dry_runs.SUMMARY, ""]
    lines += [
        "| notebook | status | wall time | parameters | error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        parameters = ", ".join(f"{k}={v!r}" for k, v in run.parameters.items()) or "–"
        error = (run.error or "–").replace("|", "\\|").replace("\n", " ")
        if run.failed_cell is not None:
            error += f" (cell [{run.failed_cell}])"
        lines.append(
            f"| {run.name} | {run.status} | {_seconds(run.seconds)} | {parameters} | {error} |"
        )
    for run in runs:
        if run.dry_run is not None:
            lines += dry_runs.markdown(run.name, run.dry_run, run.seconds, run.cpu_seconds)
            continue
        if not run.metrics:
            continue
        lines += ["", f"## {run.name}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {_value(value)} |" for key, value in sorted(run.metrics.items())]
    return "\n".join(lines) + "\n"


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the kernels), in seconds."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _write_reports(out: Path, runs: Sequence[NotebookRun], profile: str, context: dict) -> None:
    """Both reports, each written whole to a temporary file and renamed into place."""
    summary = {"profile": profile, **context, "notebooks": [asdict(run) for run in runs]}
    texts = {
        "results.md": markdown_report(runs, profile, context),
        "summary.json": json.dumps(summary, indent=2, default=str) + "\n",
    }
    for name, text in texts.items():
        atomic_write_text(out / name, text)


def default_out(profile: str, dry_run: bool = False) -> Path:
    from sslm_lab.data.cache import project_folder

    stamp = time.strftime("%Y%m%d-%H%M%S")
    kind = f"{profile}-dry-run" if dry_run else profile
    return project_folder(RUNS_ENV_VAR, "runs") / "reproduce" / f"{kind}-{stamp}"


def reproduce(
    notebooks: Sequence[str] = (),
    *,
    profile: str | None = None,
    parameters: dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    folder: str | os.PathLike = NOTEBOOKS,
    stop_on_failure: bool = False,
    timeout: int | None = None,
    dry_run: bool = False,
    seeds: Sequence[int] | None = None,
    say: Any = print,
) -> list[NotebookRun]:
    """Execute `notebooks` (all by default) at `profile`; write the reports; return the runs.

    `seeds`: run the notebooks once per seed (passed as their `seed` parameter), each seed
    into `out/seed-<s>/`, and write the reports over the seeds to `out` (see the module's
    docstring); the runs of every seed are returned, seed by seed.

    `dry_run`: at the profile's shapes, but training cut to a few steps, evaluation to a
    batch and the assertions about learning skipped (`sslm_lab.lab.dry_run`). Every
    check that can fail (names, parameters, the output folder) runs before the first
    notebook starts.
    """
    folder = Path(folder)
    profile = resolve_profile_name(profile)
    names = select_notebooks(notebooks, available_notebooks(folder))
    if not names:
        raise ValueError(f"no notebooks (*.ipynb) in {folder}")
    check_int("timeout", timeout, low=1, allow_none=True, hint="seconds one cell may run")
    check_bool("dry_run", dry_run)
    seeds = check_seeds(seeds, names, folder, parameters or {}, dry_run)
    given = parameters_for(names, folder, dict(parameters or {}))
    out = Path(out) if out is not None else default_out(profile, dry_run)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} is not empty: name a new folder with --out, so no earlier results are lost"
        )
    out.mkdir(parents=True, exist_ok=True)
    if seeds is not None:
        by_seed: dict[int, list[NotebookRun]] = {}
        for seed in seeds:
            say(f"seed {seed}:")
            seeded = {name: {**values, "seed": seed} for name, values in given.items()}
            part = out / f"seed-{seed}"
            by_seed[seed] = _run_all(
                names,
                seeded,
                part,
                folder,
                profile,
                timeout,
                stop_on_failure,
                False,
                say,
                runs_dir=part / "runs",
            )
            _write_seed_reports(out, by_seed, profile)
            if stop_on_failure and any(run.status == "failed" for run in by_seed[seed]):
                break
        say(f"over the seeds: {out / 'results.md'}")
        return [run for runs in by_seed.values() for run in runs]
    return _run_all(names, given, out, folder, profile, timeout, stop_on_failure, dry_run, say)


def _run_all(
    names: Sequence[str],
    given: dict[str, dict[str, Any]],
    out: Path,
    folder: Path,
    profile: str,
    timeout: int | None,
    stop_on_failure: bool,
    dry_run: bool,
    say: Any,
    runs_dir: Path | None = None,
) -> list[NotebookRun]:
    """Run `names` in order into `out`, rewriting its reports after each notebook."""
    out.mkdir(parents=True, exist_ok=True)
    context = {**machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if dry_run:
        context["dry run"] = (
            f"{dry_runs.STEPS} training steps (no run past {dry_runs.TRAINER_STEPS}), "
            "evaluation cut to a batch"
        )
    runs = [NotebookRun(name, parameters=given[name]) for name in names]
    kind = "dry run at profile" if dry_run else "profile"
    say(f"{kind} {profile} on {context['device']}: {len(names)} notebooks -> {out}")
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    for run in runs:
        say(f"  {run.name}: running", flush=True)
        execute(run, folder / f"{run.name}.ipynb", out, profile, timeout, dry_run, runs_dir)
        ending = f"{run.status} ({_seconds(run.seconds)})" + (f": {run.error}" if run.error else "")
        say(f"  {run.name}: {ending}", flush=True)
        context["wall time"] = _seconds(time.perf_counter() - started)
        context["CPU time"] = _seconds(_cpu_seconds() - cpu_started)
        _write_reports(out, runs, profile, context)
        if run.status == "failed" and stop_on_failure:
            break
    say(f"tables: {out / 'results.md'}; records: {out / RESULTS_FILE}")
    return runs


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2` as a list of integers; anything else is refused naming the form."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ValueError(
            f"--seeds {text!r} is not allowed; write integers separated by commas: 0,1,2"
        )
    return [int(part) for part in parts]


def check_seeds(
    seeds: Sequence[int] | None,
    names: Sequence[str],
    folder: Path,
    parameters: dict[str, Any],
    dry_run: bool,
) -> list[int] | None:
    """The seeds to run, checked before anything runs: distinct integers in [0, MAX_SEED],
    every chosen notebook declaring `seed`, and no `-p seed=` beside them."""
    if seeds is None:
        return None
    allowed = f"a non-empty list of distinct integers in [0, {MAX_SEED}], e.g. 0,1,2"
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds={seeds!r} is not allowed; allowed: {allowed}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seeds={list(seeds)!r} holds {seed!r}; allowed: {allowed}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={list(seeds)!r} repeats a seed; allowed: {allowed}")
    if "seed" in parameters:
        raise ValueError("give the seeds with --seeds or one seed with -p seed=..., not both")
    if dry_run:
        raise ValueError("a dry run trains 2 steps: --seeds would repeat the same check")
    without = [n for n in names if "seed" not in declared_parameters(folder / f"{n}.ipynb")]
    if without:
        raise ValueError(f"--seeds: {', '.join(without)} declare no seed parameter")
    return list(seeds)


def seed_summary(by_seed: dict[int, Sequence[NotebookRun]]) -> dict[str, dict[str, Any]]:
    """Per notebook: its status per seed and, per metric, what the seeds that ran gave.

    Numbers (not booleans): n, the mean and a 95 % Student-t interval of the mean (None
    below n = 2). Anything else (verdicts, names): how often each value came out.
    """
    from scipy import stats

    summary: dict[str, dict[str, Any]] = {}
    for seed, runs in by_seed.items():
        for run in runs:
            entry = summary.setdefault(run.name, {"status": {}, "values": {}})
            entry["status"][seed] = run.status
            if run.status != "ok":
                continue
            for key, value in run.metrics.items():
                if key != "seed":
                    entry["values"].setdefault(key, []).append(value)
    for entry in summary.values():
        metrics = {}
        for key, values in entry.pop("values").items():
            numbers = all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            )
            if numbers:
                n, mean = len(values), sum(values) / len(values)
                interval = None
                if n >= 2:
                    spread = stats.t.ppf(0.975, n - 1) * stats.sem(values)
                    interval = [mean - spread, mean + spread]
                metrics[key] = {"n": n, "mean": mean, "interval": interval}
            else:
                counts: dict[str, int] = {}
                for value in values:
                    counts[str(value)] = counts.get(str(value), 0) + 1
                metrics[key] = {"n": len(values), "counts": counts}
        entry["metrics"] = metrics
    return summary


def seeds_markdown(summary: dict[str, dict[str, Any]], profile: str, seeds: Sequence[int]) -> str:
    """`seed_summary` as Markdown: per notebook its status per seed, then each metric."""
    lines = [
        f"# sslm_lab results over seeds {', '.join(map(str, seeds))}, profile `{profile}`",
        "",
        "Each seed's own reports are in `seed-<s>/`. Numbers: mean over the seeds that ran,",
        "95 % Student-t interval of the mean, n. Text (verdicts): how often each came out.",
    ]
    for name, entry in summary.items():
        status = ", ".join(f"seed {seed} {state}" for seed, state in entry["status"].items())
        lines += ["", f"## {name}", "", status, "", "| metric | mean | 95 % interval | n |"]
        lines.append("| --- | --- | --- | --- |")
        for key, metric in sorted(entry["metrics"].items()):
            if "counts" in metric:
                counts = ", ".join(f"{value} ×{count}" for value, count in metric["counts"].items())
                lines.append(f"| {key} | {counts} | – | {metric['n']} |")
                continue
            interval = metric["interval"]
            shown = "–" if interval is None else f"{_value(interval[0])} to {_value(interval[1])}"
            lines.append(f"| {key} | {_value(metric['mean'])} | {shown} | {metric['n']} |")
    return "\n".join(lines) + "\n"


def _write_seed_reports(out: Path, by_seed: dict[int, list[NotebookRun]], profile: str) -> None:
    summary = seed_summary(by_seed)
    seeds = list(by_seed)
    record = {"profile": profile, "seeds": seeds, **machine(), "notebooks": summary}
    atomic_write_text(out / "results.md", seeds_markdown(summary, profile, seeds))
    atomic_write_text(out / "summary.json", json.dumps(record, indent=2, default=str) + "\n")
