#!/usr/bin/env python3
"""Set up sslm_lab in a local virtual environment, then open the lab or run the tests.

    python3 bootstrap.py lab     # set up, then open JupyterLab on notebooks/
    python3 bootstrap.py test    # set up, then run the whole test suite
    python3 bootstrap.py reproduce --profile gpu   # set up, then run every notebook
                                                   # and write a results table

Needs only Python >= 3.10 with pip and venv. Safe to run again: every step checks
whether it is already done and says what it does.

Which torch build is installed (`--torch`, or the SSLM_TORCH environment variable):

    auto  (default) CUDA build when `nvidia-smi` is found, otherwise CPU-only
    cpu   CPU-only build (about 200 MB instead of several GB)
    cuda  the CUDA build from PyPI (Linux and Windows)
    keep  install no torch; use whatever the environment already has

The choice is made once per virtual environment; delete .venv/ to change it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "sslm_lab-installed.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_SPEC = "torch>=2.4"
TORCH_CHOICES = ("auto", "cpu", "cuda", "keep")


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    say("$ " + " ".join(str(part) for part in command))
    return subprocess.run(command, **kwargs)


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def ensure_venv() -> Path:
    python = venv_python()
    if python.exists():
        say(f"virtual environment present: {VENV}")
    else:
        say(f"creating virtual environment: {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    return python


def torch_installed(python: Path) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    return subprocess.run([str(python), "-c", probe]).returncode == 0


def resolve_torch_choice(choice: str) -> str:
    if choice not in TORCH_CHOICES:
        sys.exit(f"--torch={choice!r} is not allowed; choose one of {', '.join(TORCH_CHOICES)}")
    if choice != "auto":
        return choice
    return "cuda" if shutil.which("nvidia-smi") else "cpu"


def install_torch(python: Path, choice: str) -> None:
    """Install torch before the package, so the package's loose range is already met."""
    if choice == "keep":
        say("--torch=keep: leaving torch as it is")
        return
    if torch_installed(python):
        say("torch already installed in the virtual environment: keeping it")
        return
    pip = [str(python), "-m", "pip", "install"]
    if choice == "cuda":
        say("installing the CUDA build of torch from PyPI (several GB)")
        run([*pip, TORCH_SPEC], check=True)
        return
    # CPU: first a wheel this machine already holds (a local wheel folder set up in
    # pip's configuration installs in seconds and needs no network) ...
    # (--no-deps: torch's own small dependencies come from the package index in
    # the next step, when pip installs sslm_lab and finds torch already satisfied.)
    say("installing a CPU-only torch: trying wheels already on this machine first")
    if run([*pip, "--no-index", "--no-deps", TORCH_SPEC]).returncode == 0:
        return
    # ... then PyTorch's CPU-only index. macOS wheels on PyPI are CPU/MPS builds already.
    if platform.system() == "Darwin":
        run([*pip, TORCH_SPEC], check=True)
    else:
        run([*pip, TORCH_SPEC, "--index-url", CPU_INDEX], check=True)


def install_fingerprint(extras: str, torch_choice: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return f"pyproject={digest} extras={extras} torch={torch_choice}\n"


def install_package(python: Path, extras: str, torch_choice: str) -> None:
    fingerprint = install_fingerprint(extras, torch_choice)
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        say(f"sslm_lab[{extras}] already installed and pyproject.toml unchanged")
        return
    install_torch(python, torch_choice)
    say(f"installing sslm_lab[{extras}] in editable mode")
    target = f".[{extras}]" if extras else "."
    run([str(python), "-m", "pip", "install", "-e", target], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def prepare_data(python: Path) -> None:
    say("preparing data caches under data/ (skipped when already there)")
    run([str(python), "-m", "sslm_lab.lab.cli", "data"], check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=("lab", "test", "reproduce", "setup"))
    parser.add_argument("--torch", default=os.environ.get("SSLM_TORCH", "auto"))
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="passed on to jupyter lab / pytest / sslm-lab reproduce",
    )
    args = parser.parse_args(argv)
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be started by an older Python
        sys.exit(f"Python >= 3.10 is needed; this is {platform.python_version()}")

    torch_choice = resolve_torch_choice(args.torch)
    started = time.monotonic()
    python = ensure_venv()
    extras = "test" if args.command == "test" else ""
    if STAMP.exists() and "extras=test" in STAMP.read_text():
        extras = "test"  # never downgrade an environment that already has the test tools
    install_package(python, extras, torch_choice)
    prepare_data(python)
    say(f"setup done in {time.monotonic() - started:.0f} s")
    if args.command == "setup":
        return 0
    if args.command in ("lab", "reproduce"):
        command = [str(python), "-m", "sslm_lab.lab.cli", args.command]
        run_env = os.environ
    else:
        command = [str(python), "-m", "pytest"]
        # Notebooks execute in the small `smoke` profile under tests.
        run_env = {**os.environ, "SSLM_PROFILE": "smoke"}
    try:
        return run([*command, *args.rest], cwd=ROOT, env=run_env).returncode
    except KeyboardInterrupt:  # Ctrl-C reaches the child too; it shuts down on its own
        return 130


if __name__ == "__main__":
    sys.exit(main())
