"""A real browser: JupyterLab served by `sslm-lab lab`, a notebook run from the menu, a
widget changed by hand, and the page checked for what a learner would see.

Chromium is Debian's `chromium` package (`.ci/run` installs it when missing); Playwright
drives it. On a machine without it the test is skipped and says why. The notebooks are
copied to a temporary folder first, so JupyterLab's autosave never touches the checkout.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on this machine: apt-get install chromium"
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_lab(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"JupyterLab did not answer on {url}")


def test_jupyterlab_runs_the_tour_and_its_widget_answers(tmp_path) -> None:
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns("*.json"))
    port = free_port()
    environment = {
        **os.environ,
        "SSLM_PROFILE": "smoke",
        "SSLM_RESULTS_DIR": str(tmp_path / "results"),
        "TQDM_DISABLE": "1",
    }
    command = [
        sys.executable,
        "-m",
        "sslm_lab.lab.cli",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--notebook-dir={notebooks}",  # a copy: the lab command then serves it instead
        f"--ServerApp.runtime_dir={tmp_path / 'runtime'}",
    ]
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    screenshot = tmp_path / "jupyterlab-00_tour.png"
    started = time.perf_counter()
    try:
        wait_for_lab(f"http://127.0.0.1:{port}/lab", server)
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/00_tour.ipynb")
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            # The last cell prints where the results went: the whole notebook has run.
            page.get_by_text("recorded in results.json").wait_for(timeout=180_000)
            box = page.locator(".widget-textarea textarea").first
            box.wait_for(state="attached", timeout=60_000)
            box.scroll_into_view_if_needed()
            view = page.locator(".widget-html-content").first
            before = view.inner_text()
            box.fill("Zounds! a new line of text typed by hand")
            page.wait_for_function(
                "([el, old]) => el.innerText !== old", arg=[view.element_handle(), before]
            )
            after = view.inner_text()
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).count()
            page.screenshot(path=str(screenshot), full_page=False)
            browser.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"browser test: {time.perf_counter() - started:.0f} s, screenshot {screenshot}")
    assert "Zounds" in after.replace("·", " ") and after != before
    assert errors == 0, "a cell shows an error or writes to stderr"
    assert (tmp_path / "results" / "results.json").is_file()
    assert screenshot.stat().st_size > 10_000
