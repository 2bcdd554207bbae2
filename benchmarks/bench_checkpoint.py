"""Checkpoint save and load, with and without the manifest's sha256 hashing.

A checkpoint of a ~100 M-parameter model: a plain stack of Linear layers (fp32 weights,
~400 MB) with its AdamW state (two moments, ~800 MB), as `Trainer.save_checkpoint`
writes it. Two procedures, timed alternately so that a burst of load from other
processes hits both alike:

- "without hashing": what sslm_lab did before manifests. Save: safetensors and
  torch.save into a staging folder, fsync both files, rename it into place, replace
  `latest`. Load: check names and shapes from the safetensors header, torch.load the
  state, load the weights.
- "with hashing": `sslm_lab.training.checkpoint.save_checkpoint` / `load_checkpoint`,
  which also hash both files (in the same pass as the fsync on save), check that the
  weights are finite, write the manifest, and verify every byte against it before loading.

Also timed alone: hashing both files (`file_digest`), the part hashing adds to a load.
Each figure is the median of `--repeats` rounds after one warm-up round; in each round
both procedures run, in alternating order, each from an empty folder (an earlier
checkpoint still in the page cache makes the next write slower). Loads run right after
their save, so the files come from the page cache for both procedures, as when a run
resumes on the machine that wrote the checkpoint. Wall and CPU seconds are both given:
on a shared machine the CPU seconds say what the work itself costs.

    python benchmarks/bench_checkpoint.py              # about 1.5 minutes on 2 CPU cores
    python benchmarks/bench_checkpoint.py --layers 2   # ~34 M parameters, quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from sslm_lab.files import atomic_write_text, file_digest, staged_folder
from sslm_lab.files import weight_mismatches as header_mismatches
from sslm_lab.training.checkpoint import (
    STATE_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    step_folder_name,
)

DEFAULT_OUT = Path(__file__).parent / "results" / "checkpoint.json"


def build(layers: int, width: int) -> tuple[nn.Module, dict]:
    """The model and a training state holding a populated AdamW state."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter) * 1e-3
    optimizer.step()  # creates both moments for every parameter
    model.zero_grad(set_to_none=True)
    state = {"format": 2, "step": 1, "phases": {"lm": {"optimizer": optimizer.state_dict()}}}
    return model, {**state, "rng": rng_states(1)}


def save_without_hashing(directory: Path, step: int, model: nn.Module, state: dict) -> None:
    """The save before manifests, step for step."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / step_folder_name(step)
    with staged_folder(final) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        torch.save(state, staging / STATE_FILE)
        # staged_folder fsyncs every file before the rename, as the old save did itself
    atomic_write_text(directory / "latest", final.name + "\n")


def load_without_hashing(folder: Path, model: nn.Module) -> dict:
    """The load before manifests: header check, state, weights."""
    weights = folder / WEIGHTS_FILE
    assert not header_mismatches(weights, model)
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    load_model(model, str(weights), strict=True)
    return state


def timed(function: Callable[..., object], *args: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call. On a shared
    machine the CPU seconds say what the work costs, whatever else runs beside it."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def hash_both(folder: Path) -> None:
    for name in (WEIGHTS_FILE, STATE_FILE):
        file_digest(folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    model, state = build(args.layers, args.width)
    parameters = sum(p.numel() for p in model.parameters())
    root = Path(tempfile.mkdtemp(prefix="bench_checkpoint-", dir=args.dir))
    keys = (
        "save_without_hashing",
        "save_with_hashing",
        "load_without_hashing",
        "load_with_hashing",
        "hash_both_files",
    )
    times: dict[str, list[float]] = {key: [] for key in keys}
    cpu_times: dict[str, list[float]] = {key: [] for key in keys}
    sizes: dict[str, int] = {}
    name = step_folder_name(1)
    procedures = {
        "without_hashing": (save_without_hashing, load_without_hashing),
        "with_hashing": (save_checkpoint, load_checkpoint),
    }
    try:
        for round_ in range(args.repeats + 1):  # round 0 warms up (first writes fault pages in)
            # Alternate which goes first, and let each start from an empty page cache of
            # checkpoints: an earlier checkpoint still in memory makes the next write slower.
            order = list(procedures) if round_ % 2 else list(reversed(procedures))
            for procedure in order:
                save, load = procedures[procedure]
                folder = root / procedure
                measured = [("save", timed(save, folder, 1, model, state))]
                measured.append(("load", timed(load, folder / name, model)))
                if procedure == "with_hashing":
                    measured.append(("hash", timed(hash_both, folder / name)))
                    sizes = {
                        n: (folder / name / n).stat().st_size for n in (WEIGHTS_FILE, STATE_FILE)
                    }
                shutil.rmtree(folder)
                if round_ == 0:
                    continue
                for kind, (wall, cpu) in measured:
                    key = "hash_both_files" if kind == "hash" else f"{kind}_{procedure}"
                    times[key].append(wall)
                    cpu_times[key].append(cpu)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    medians = {key: statistics.median(values) for key, values in times.items()}
    cpu_medians = {key: statistics.median(values) for key, values in cpu_times.items()}
    total_mb = sum(sizes.values()) / 1e6
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{parameters / 1e6:.1f} M parameters; {WEIGHTS_FILE} {sizes[WEIGHTS_FILE] / 1e6:.0f} MB, "
        f"{STATE_FILE} {sizes[STATE_FILE] / 1e6:.0f} MB; median of {args.repeats}; "
        f"{os.cpu_count()} CPU cores, load average {load_average:.1f} at the end"
    )
    print(f"{'':14} {'without hashing':>16} {'with hashing':>14} {'added':>8}")
    for label, table in (("wall", medians), ("CPU", cpu_medians)):
        for kind in ("save", "load"):
            before, after = table[f"{kind}_without_hashing"], table[f"{kind}_with_hashing"]
            added = 100 * (after - before) / before
            print(f"{kind + ' (' + label + ')':14} {before:15.2f}s {after:13.2f}s {added:+7.0f}%")
    digest, digest_cpu = medians["hash_both_files"], cpu_medians["hash_both_files"]
    print(
        f"hashing both files alone: {digest:.2f}s wall, {digest_cpu:.2f}s CPU "
        f"({total_mb / digest_cpu:.0f} MB per CPU second)"
    )

    record = {
        "parameters": parameters,
        "file_bytes": sizes,
        "repeats": args.repeats,
        "wall_seconds": times,
        "cpu_seconds": cpu_times,
        "median_wall_seconds": medians,
        "median_cpu_seconds": cpu_medians,
        "load_average_at_end": load_average,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
