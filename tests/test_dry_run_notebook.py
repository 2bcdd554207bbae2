"""One real notebook's dry run at the gpu profile, on the CPU: `sslm-lab reproduce NB
--profile gpu --dry-run` proves the gpu code paths of NOTEBOOK and reports its models,
parameter counts and memory per training step. The whole dry run is measured by hand (see
the README's "Reproducing the results"): it takes too long for the test suite."""

from __future__ import annotations

import json

import pytest

from sslm_lab.lab import cli
from sslm_lab.lab.dry_run import DEVICE_BYTES, STEPS, TRAINER_STEPS
from sslm_lab.lab.profiles import PROFILES

# The cheapest notebook that trains: its gpu dry run took 53 s of CPU time on this suite's
# 2-core VM at one thread (211 s wall under load); 04 took 63 s, 02 87 s, 03 475 s.
NOTEBOOK = "05_gan"


@pytest.mark.slow
def test_a_notebook_runs_at_gpu_shapes_cut_to_two_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLM_RUNS_DIR", str(tmp_path / "runs"))  # 02's encoder: not found
    out = tmp_path / "dry"
    command = ["reproduce", NOTEBOOK, "--profile", "gpu", "--dry-run", "--out", str(out)]
    assert cli.main(command) == 0
    summary = json.loads((out / "summary.json").read_text())
    (run,) = summary["notebooks"]
    assert run["status"] == "ok" and summary["profile"] == "gpu"
    report = run["dry_run"]
    gpu = PROFILES["gpu"].gan
    assert report["cuts"]["gan.electra_steps"] == [gpu.electra_steps, STEPS]
    assert report["skipped"]["assertions"] > 0
    models = {fit["model"] for fit in report["fits"]}
    assert {"ModuleDict", "Electra"} <= models  # the GAN (both players) and ELECTRA
    for fit in report["fits"]:
        assert fit["max_steps"] <= TRAINER_STEPS and fit["trainable"] <= fit["parameters"]
        memory = fit["memory"]
        assert memory["activations"] > 0
        assert 0 < memory["total"] < DEVICE_BYTES
    electra = next(fit for fit in report["fits"] if fit["model"] == "Electra")
    # ELECTRA reads the gpu batch: electra_batch_size windows
    assert f"({gpu.electra_batch_size}, " in json.dumps(electra["batch"])
    table = (out / "results.md").read_text()
    assert f"## {NOTEBOOK} (dry run)" in table and "fits in 80 GB" in table
