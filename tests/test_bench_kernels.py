"""benchmarks/bench_kernels.py runs at its smallest sizes and writes its JSON (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_kernels.py"
KERNELS = (
    "dropout",
    "gelu_tanh",
    "masked_scores",
    "outside_cpu_autocast",
    "projected_cross_entropy",
    "keep_freed_memory",
)


@pytest.mark.slow  # 10-15 s idle: the script starts two more processes (keep_freed_memory)
def test_quick_run_prints_a_table_and_writes_a_row_or_a_skip_per_kernel(tmp_path: Path) -> None:
    out = tmp_path / "kernels.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,  # about 10 s idle; 54 s on 2 cores under a load average of 12
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "plain/ours" in result.stdout and f"wrote {out}" in result.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["quick"] is True
    assert {"cpu", "avx512_bf16", "torch", "torch_threads"} <= set(report["machine"])
    for kernel in KERNELS:
        rows = [row for row in report["rows"] if row["kernel"] == kernel]
        assert rows or kernel in report["skipped"], f"no row and no reason for {kernel}"
        assert all(row["ours_ms"] >= 0 and row["plain_ms"] >= 0 for row in rows), rows
        # system time per step may round to 0 at these sizes; wall times may not
        assert not rows or any(row["ours_ms"] > 0 and row["plain_ms"] > 0 for row in rows)
        assert not rows or kernel in result.stdout
    gelu = next(row for row in report["rows"] if row["kernel"] == "gelu_tanh")
    assert 0 <= gelu["ours_max_error"] < 1e-5 and 0 <= gelu["plain_max_error"] < 1e-5
