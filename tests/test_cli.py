"""End to end: the README's main command serves the notebooks, and `sslm-lab` behaves."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sslm_lab.lab import cli

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
def test_main_command_serves_jupyterlab_on_the_notebooks(tmp_path) -> None:
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        str(ROOT / "bootstrap.py"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.runtime_dir={tmp_path}",
    ]
    log = (tmp_path / "lab.log").open("w")
    # A new session, so the server that bootstrap starts can be stopped with it.
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        status, deadline = None, time.monotonic() + 120
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(1)
            status = get_status(f"http://127.0.0.1:{port}/lab?token={token}")
        listing = get_status(f"http://127.0.0.1:{port}/api/contents/00_tour.ipynb?token={token}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    output = (tmp_path / "lab.log").read_text()
    assert status == 200, f"JupyterLab did not answer 200 on /lab; its log:\n{output[-3000:]}"
    assert listing == 200, "the server does not serve notebooks/ as its root"
    assert "[bootstrap]" in output, "bootstrap should say what it does"


def test_doctor_reports_environment_and_caches(capsys) -> None:
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out and "data caches" in out
    assert code == 0, out


def test_doctor_exits_non_zero_with_the_fix_when_data_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SSLM_DATA_DIR", str(tmp_path / "empty"))
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert "sslm-lab data" in out and "MISSING" in out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "sslm-lab"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("lab", "data", "doctor"):
        assert command in result.stdout


def test_unknown_command_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-everything"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bootstrap_refuses_an_unknown_torch_choice() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bootstrap.py"), "--torch", "rocm", "setup"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "--torch='rocm'" in result.stderr and "auto, cpu, cuda, keep" in result.stderr


def test_bench_runs_a_benchmark_script_with_its_own_arguments(capfd) -> None:
    assert cli.main(["bench", "baby_gpt", "--help"]) == 0
    assert "--preset {cpu,gpu}" in capfd.readouterr().out
    assert cli.main(["bench", "bert"]) == 2
    assert "no benchmark 'bert'; choose one of attention, baby_gpt" in capfd.readouterr().err
