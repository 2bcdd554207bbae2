"""`sslm-lab reproduce --profile gpu --dry-run`: every notebook at its shapes, cut short.

A dry run proves code paths, not results. Each notebook runs on whatever device is
present with the models, batch sizes, sequence lengths, vocabularies and grids of its
profile, but

- **training is cut to STEPS steps.** Every training length in the sizes tables
  (`max_steps`, `sentence_steps`, `electra_steps`, ...) becomes STEPS, so a notebook's
  own bookkeeping (a sample saved at its last step, a curve over its evaluations) sees
  the run it asked for; and the trainer itself stops every fit() after TRAINER_STEPS
  steps ($SSLM_DRY_RUN_STEPS, `sslm_lab.training.dry_run`), whatever the notebook
  passed, so a length that does not come from a table (a `-p max_steps=...`, a recipe)
  is cut too, and one a notebook derives from a cut length (05's remedy runs k
  discriminator steps per generator step: 2 x k trainer steps) is not cut below it;
- **evaluation sets are cut to one batch** (`val_windows`, `eval_blocks`, ...: one
  training batch of the notebook), and a few loops that repeat one pass many times to a
  few passes (timing repeats, tokens per generated sample, importance samples); CUTS
  lists every cut with its reason. Shapes stay, except the batch of 01's attention
  timing (see CUTS);
- **assertions about what was learned are skipped**: in the cells tagged
  `asserts-learning` every `assert` statement becomes `pass`, and the report counts
  them. Everything else in those cells runs (the closing cells record their numbers),
  and every other cell runs as written, derivations checked against the package
  included;
- **nothing leaves the run's folder**: checkpoints and encoders that later notebooks
  load go to `<out>/runs/` ($SSLM_RUNS_DIR), never where a real run would find them.

Each trainer's first step is measured (`sslm_lab.training.dry_run`: the model's class
and parameter count, the batch's shapes, and an estimate of the memory of one training
step: parameters, gradients, AdamW's moments, and the activations saved for backward,
measured at the real shapes, and the gradients flowing back through them); the report
sets each against 80 GB, one H100, beside the peak CUDA allocated where there is CUDA.

The cuts are applied by a cell the dry run adds after the notebook's parameters cell
(`cut_profiles()`), to the notebook's copy in the output folder only: the notebooks
in `notebooks/` are never changed. A training length given with `-p` is kept by the
notebook and cut by the trainer.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from sslm_lab.training.dry_run import LOG_ENV_VAR, MARGIN, STEPS_ENV_VAR

STEPS = 2  # at least 2: 03 measures its speed over the steps after the first
TRAINER_STEPS = 5 * STEPS  # the most any fit() runs (see the docstring)
LEARNING_TAG = "asserts-learning"
ADDED_TAG = "dry-run"  # the cells a dry run adds to its copy of a notebook
DEVICE_BYTES = 80e9  # one H100 80GB
SKIPPED = "pass  # dry run: an assertion about what was learned, skipped"

# What a dry run cuts, per section of the profile (sslm_lab.lab.profiles): field -> the
# value in a dry run, a number or the name of another field of the section (its value
# is used: "batch_size" is one training batch). A profile's own value is kept where it
# is smaller already. Training lengths become STEPS; evaluation sets one batch.
CUTS: dict[str, dict[str, int | str]] = {
    "attention": {
        "bench_repeats": 1,  # timed rounds per sequence length (after one warm-up round)
        # The explicit path's weight table at batch 32 and 2,048 tokens is 6.4 GB in fp32,
        # about 19 GB alive in its backward: more than a laptop has. One sequence keeps
        # every length and path of the timing, at 1/32 of the memory.
        "bench_batch": 1,
    },
    "masked_lm": {"max_steps": STEPS, "ablation_steps": STEPS, "val_windows": "batch_size"},
    "causal_lm": {
        "max_steps": STEPS,
        "bpe_max_steps": STEPS,
        "dropout_steps": STEPS,
        "eval_blocks": "batch_size",
        # Tokens per sample, a loop of one forward pass each. Decoding past block_size (the
        # sliding window) still runs: the KV-cache cell decodes 2 x block_size tokens.
        "sample_tokens": 16,
    },
    # 03b (in progress beside this file): its training lengths and val set; not yet run dry
    "training_craft": {
        "max_steps": STEPS,
        "range_steps": STEPS,
        "slow_precision_steps": STEPS,
        "sweep_steps": STEPS,
        "val_windows": "batch_size",
    },
    "vae": {
        "max_steps": STEPS,
        "large_steps": STEPS,
        "beta_steps": STEPS,
        "sentence_steps": STEPS,
        "val_lines": "sentence_batch_size",
        # importance samples of the sentence VAEs' IWAE bound: drawn one at a time, each a
        # pass of the decoder over the val lines (the digits' k = 1000 takes seconds: kept)
        "sentence_iwae_samples": 2,
    },
    "gan": {
        "gan_steps": STEPS,
        "electra_steps": STEPS,
        "mlm_steps": STEPS,
        "val_windows": "electra_batch_size",
    },
    "contrastive": {
        "max_steps": STEPS,
        "supervised_steps": STEPS,
        "study_steps": STEPS,
        "simcse_steps": STEPS,
        "cpc_steps": STEPS,
        "cpc_eval_batches": 1,
    },
    "finetune": {
        "pretrain_steps": STEPS,
        "finetune_steps": STEPS,
        "names_steps": STEPS,
        "overfit_steps": STEPS,
        "names_eval_speeches": "batch_size",
    },
    "real_model": {"finetune_steps": STEPS, "names_steps": STEPS},
    # 09 (in progress beside this file): its training lengths; not yet run dry
    "known_language": {
        "pretrain_steps": STEPS,
        "curve_steps": STEPS,
        "finetune_steps": STEPS,
    },
}

# The sections of the profile each notebook reads (08 reads 07's data sizes too).
SECTIONS = {
    "00_tour": ("tour",),
    "01_attention": ("attention",),
    "02_masked_lm": ("masked_lm",),
    "03_autoregressive_lm": ("causal_lm",),
    "03b_training_craft": ("training_craft",),
    "04_vae": ("vae",),
    "05_gan": ("gan",),
    "06_contrastive": ("contrastive",),
    "07_fine_tuning": ("finetune",),
    "08_real_pretrained_model": ("real_model", "finetune"),
    "09_known_language": ("known_language",),
}

# Fields named like a training length that are not one, so they keep their value.
NOT_TRAINING_LENGTHS = {
    "warmup_steps",  # the schedule's warm-up (the trainer handles warmup > max_steps)
    "anneal_steps",  # the KL weight's ramp, a schedule
    "interpolation_steps",  # points on a line between two codes
    "remedy_discriminator_steps",  # discriminator updates per generator update
    # the judge of 05: a full-batch fit of a small classifier, by hand, on the CPU (its
    # 300 steps take a few seconds); the linear probes of 06 to 08 are such fits as well
    "classifier_steps",
}


def _cut_value(sizes: Any, field: str, cut: int | str) -> Any:
    value = getattr(sizes, field)
    wanted = getattr(sizes, cut) if isinstance(cut, str) else cut
    return value if value is None or value <= wanted else wanted


def cut_sizes(sizes: Any, cuts: dict[str, int | str]) -> Any:
    """A copy of one section's sizes with `cuts` applied (a smaller own value is kept)."""
    return dataclasses.replace(
        sizes, **{field: _cut_value(sizes, field, cut) for field, cut in cuts.items()}
    )


def cuts_for(profile: str, notebook: str) -> dict[str, tuple[Any, Any]]:
    """What a dry run of `notebook` at `profile` cuts: {"section.field": (full, cut)}."""
    from sslm_lab.lab.profiles import PROFILES

    made = {}
    for section in SECTIONS.get(notebook, ()):
        sizes = getattr(PROFILES[profile], section, None)
        if sizes is None:  # a notebook whose table is not in this checkout
            continue
        for field, cut in CUTS.get(section, {}).items():
            value = _cut_value(sizes, field, cut)
            if value != getattr(sizes, field):
                made[f"{section}.{field}"] = (getattr(sizes, field), value)
    return made


def cut_profiles(profile: str, notebook: str) -> dict[str, tuple[Any, Any]]:
    """Apply CUTS to every profile in this process; return `cuts_for(profile, notebook)`.

    Called by the cell a dry run adds after a notebook's parameters cell, so the
    notebook's `profiles.get_profile(profile)` returns the cut sizes.
    """
    from sslm_lab.lab import profiles

    made = cuts_for(profile, notebook)
    for name, sizes in profiles.PROFILES.items():
        cut = {
            section: cut_sizes(getattr(sizes, section), cuts)
            for section, cuts in CUTS.items()
            if hasattr(sizes, section)
        }
        profiles.PROFILES[name] = dataclasses.replace(sizes, **cut)
    return made


def record_kernel_peak() -> dict[str, int | None]:
    """Log the kernel's peak memory: resident on the host, and allocated on CUDA."""
    import resource
    import sys

    from sslm_lab.training.dry_run import cuda_peak, log

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    record = {
        "kernel_peak_rss": peak if sys.platform == "darwin" else peak * 1024,
        "kernel_cuda_peak": cuda_peak(),
    }
    log(record)
    return record


def _skip_assertions(source: str) -> tuple[str, int]:
    """`source` with each assert statement replaced by `pass`; and how many there were.

    Each assert must be a statement on lines of its own (it is, in these notebooks; a
    notebook that breaks the rule fails here, before anything runs).
    """
    lines = source.splitlines()
    asserts = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
    for node in sorted(asserts, key=lambda node: node.lineno, reverse=True):
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        indent = len(first) - len(first.lstrip())
        rest = last[node.end_col_offset :].strip()
        if node.col_offset != indent or (rest and not rest.startswith("#")):
            raise ValueError(
                f"line {node.lineno}: an assert that shares its lines with other code can't be "
                "skipped by a dry run; give it lines of its own"
            )
        lines[node.lineno - 1 : node.end_lineno] = [" " * indent + SKIPPED]
    return "\n".join(lines), len(asserts)


def _added_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [ADDED_TAG]
    return cell


CUT_CELL = """\
# Added by the dry run (sslm_lab.lab.dry_run): training cut to a few steps, evaluation to a
# batch; in this copy only, the notebook itself is unchanged.
from sslm_lab.lab.dry_run import cut_profiles

for size, (full, cut) in cut_profiles({profile!r}, {notebook!r}).items():
    print(f"dry run: {{size}} {{full}} -> {{cut}}")"""
PEAK_CELL = """\
# Added by the dry run: this kernel's peak memory, for the report.
from sslm_lab.lab.dry_run import record_kernel_peak

record_kernel_peak()"""


def prepare(
    notebook: nbformat.NotebookNode, name: str, profile: str
) -> tuple[nbformat.NotebookNode, dict[str, int]]:
    """A dry run's copy of `notebook` (called `name`, run at `profile`): assertions about
    learning skipped, the profile cut after the parameters cell, the kernel's peak memory
    logged at the end.

    Returns the copy and what was skipped: {"cells": tagged cells, "assertions": statements}.
    """
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    skipped = {"cells": 0, "assertions": 0}
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and LEARNING_TAG in tags:
            cell.source, count = _skip_assertions(cell.source)
            skipped["cells"] += 1
            skipped["assertions"] += count
        if cell.cell_type == "code" and "parameters" in tags:
            cells.append(_added_cell(CUT_CELL.format(profile=profile, notebook=name)))
    notebook.cells = [*cells, _added_cell(PEAK_CELL)]
    return notebook, skipped


def environment(out: Path, name: str) -> dict[str, str]:
    """The variables a dry run sets for the kernel of notebook `name` writing to `out`."""
    from sslm_lab.lab.results import RUNS_ENV_VAR

    return {
        STEPS_ENV_VAR: str(TRAINER_STEPS),
        LOG_ENV_VAR: str(log_path(out, name)),
        RUNS_ENV_VAR: str(out / "runs"),
    }


UNSET: dict[str, None] = {STEPS_ENV_VAR: None, LOG_ENV_VAR: None}  # for a run that is not dry


def log_path(out: Path, name: str) -> Path:
    return out / "dry-run" / f"{name}.jsonl"


def read_log(path: Path) -> dict[str, Any]:
    """What the kernel logged: {"fits": [one record per trainer], "kernel": {...}}."""
    found: dict[str, Any] = {"fits": [], "kernel": {}}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "model" in record:
            found["fits"].append(record)
        else:
            found["kernel"].update(record)
    return found


def _gb(value: int | None) -> str:
    return "–" if value is None else f"{value / 1e9:.2f}"


def _models(fits: Sequence[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """Distinct (model, parameters, trained, count) in order of first appearance."""
    counts: dict[tuple[str, int, int], int] = {}
    for fit in fits:
        key = (fit["model"], fit["parameters"], fit["trainable"])
        counts[key] = counts.get(key, 0) + 1
    return [(*key, count) for key, count in counts.items()]


SUMMARY = (
    f"A dry run proves code paths, not results: training cut to {STEPS} steps (no run past "
    f"{TRAINER_STEPS}), evaluation "
    "sets to a batch, assertions about what was learned skipped (sslm_lab/lab/dry_run.py). "
    "Memory per training step: parameters and buffers, gradients, AdamW's two moments, "
    "the activations saved for backward as measured in the step at these shapes and the "
    "precision it ran in, and the gradients flowing back through them (twice the largest "
    f"saved tensor), all times {1 + MARGIN:.2f} for what is not counted (temporaries, the "
    "CUDA context and kernel workspaces, allocator fragmentation, data kept on the device). "
    "The notebooks' own numbers are not shown: two steps teach nothing."
)


def _time(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.0f} s"


def markdown(
    name: str,
    report: dict[str, Any],
    seconds: float | None = None,
    cpu_seconds: float | None = None,
) -> list[str]:
    """The dry-run section of one notebook in results.md."""
    fits = report["fits"]
    skipped = report["skipped"]
    lines = [
        "",
        f"## {name} (dry run)",
        "",
        f"Wall time {_time(seconds)}, CPU time {_time(cpu_seconds)}.",
        f"Assertions about what was learned: {skipped['assertions']} skipped, in "
        f"{skipped['cells']} cells tagged `{LEARNING_TAG}`.",
    ]
    cuts = report.get("cuts") or {}
    if cuts:
        lines.append(
            "Cut: " + ", ".join(f"`{size}` {full} → {cut}" for size, (full, cut) in cuts.items())
        )
    if not fits:
        lines.append("No model trained through the Trainer.")
    else:
        lines += ["", "| model | parameters | trained | fits |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {model} | {total:,} | {trained:,} | {count} |"
            for model, total, trained, count in _models(fits)
        ]
        lines += [
            "",
            f"Memory of one training step, GB (×{1 + MARGIN:.2f} for what is not counted) "
            f"against {DEVICE_BYTES / 1e9:.0f} GB:",
            "",
            "| model | batch | device | precision | parameters | gradients | optimizer "
            "| activations | activation gradients | total | of 80 GB | measured peak |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        seen = set()
        for fit in fits:
            memory = fit["memory"]
            batch = json.dumps(fit["batch"]).replace("|", "\\|").replace('"', "")
            key = (fit["model"], fit["parameters"], batch, memory["total"])
            if key in seen:
                continue
            seen.add(key)
            lines.append(
                f"| {fit['model']} | {batch} | {fit.get('device', '–')} | {fit['precision']} "
                f"| {_gb(memory['parameters'])} "
                f"| {_gb(memory['gradients'])} | {_gb(memory['optimizer'])} "
                f"| {_gb(memory['activations'])} | {_gb(memory.get('activation_gradients'))} "
                f"| {_gb(memory['total'])} "
                f"| {memory['total'] / DEVICE_BYTES:.1%} | {_gb(fit.get('cuda_peak'))} |"
            )
        largest = max(fit["memory"]["total"] for fit in fits)
        verdict = "fits" if largest <= DEVICE_BYTES else "DOES NOT FIT"
        lines += ["", f"Largest step: {_gb(largest)} GB, {verdict} in 80 GB."]
        on_host = sorted(
            {f["model"] for f in fits if f.get("cuda_available") and f.get("device") == "cpu"}
        )
        if on_host:
            lines.append(f"Trained on the CPU although CUDA is here: {', '.join(on_host)}.")
    kernel = report.get("kernel") or {}
    if kernel.get("kernel_peak_rss"):
        lines.append(f"Kernel peak resident memory: {_gb(kernel['kernel_peak_rss'])} GB.")
    if kernel.get("kernel_cuda_peak"):
        lines.append(f"Kernel peak CUDA memory allocated: {_gb(kernel['kernel_cuda_peak'])} GB.")
    return lines
