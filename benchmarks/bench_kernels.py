"""The speed tricks of `sslm_lab.kernels`, each timed against what a user would write instead.

Every comparison runs both sides on the same inputs, at the sizes of one layer of a small
GPT-2 (batch 32 x 128 tokens, 4 heads, 256 wide, vocabulary 4096):

    dropout                   kernels.dropout (15 random bits an element) vs F.dropout, and
                              vs a mask from one uniform number an element (torch.rand_like);
                              forward + backward over (32, 4, 128, 128) attention weights
    gelu_tanh                 kernels.gelu_tanh vs F.gelu(approximate="tanh") over the
                              feed-forward activation (4096, 1024): forward alone (the trick
                              is forward-only) and forward + backward; plus each one's
                              largest error against float64 over 4 M normal draws
    masked_scores             causal attention with dropout, forward + backward through
                              softmax: kernels.masked_scores (bias inside torch.baddbmm) vs
                              (Q Kᵀ / √d).masked_fill, both with kernels.dropout
    outside_cpu_autocast      one attention layer (projections, causal attention, output
                              projection) under bf16 autocast, forward + backward: attention
                              in fp32 vs attention in bf16, and vs the whole layer in fp32
                              without autocast; for both of MultiHeadAttention's CPU paths,
                              explicit with dropout 0.1 and fused SDPA without dropout. Only
                              on a CPU that multiplies bf16 natively (`native_bf16_cpu`):
                              emulated bf16 is far slower and no run picks it.
    projected_cross_entropy   the vocabulary projection and its loss over 4096 rows, forward
                              + backward, a chunk of 4, 8, 16 or 32 MiB of logits at a time,
                              vs full logits + F.cross_entropy
    keep_freed_memory         training steps of a 2-layer, 256-wide causal LM (fp32, AdamW,
                              batch 32 x 128, dropout 0.1), each run in a process of its own,
                              with and without glibc told to keep freed memory: wall time,
                              system time (resource.getrusage) and minor page faults per step

Time: the median over `--repeats` steps after warm-up. The sides of a comparison are timed
in turn, step by step, the order reversed every other step, so that a burst of load from
other processes hits all of them alike (CUDA is synchronised around each step). The
keep_freed_memory runs alternate too, the side that goes first alternating as well; each
run reports the median step and its mean system time, and the table the median over runs.

On CUDA (when present, `--device auto` or `cuda`) dropout and gelu_tanh fall back to the
PyTorch operation and the model does not call masked_scores or projected_cross_entropy;
they are timed there only to show the fallback costs nothing and why the model skips them.

    python benchmarks/bench_kernels.py                 # about a minute of CPU time
    python benchmarks/bench_kernels.py --threads 1     # steadier where others share the cores
    python benchmarks/bench_kernels.py --quick --out /tmp/kernels.json   # tiny sizes, seconds

It prints a table and writes benchmarks/results/kernels.json with the machine: CPU model, its
bf16 flags, torch version and threads, the load average before and after each comparison.
plain/ours > 1: ours is faster. Beside wall time, each step's CPU time (time.process_time,
all of this process's threads) is kept: with `--threads 1` on a machine that other processes
share, it is the steadier measure (with several threads it also counts their spin-waiting).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab import kernels
from sslm_lab.heads import CausalLM
from sslm_lab.training.hardware import (
    NATIVE_BF16_CPU_FLAGS,
    cpu_flags,
    keep_freed_memory,
    native_bf16_cpu,
)
from sslm_lab.transformer import TransformerConfig, attention_explicit, attention_fast

DEFAULT_OUT = Path(__file__).parent / "results" / "kernels.json"
P = 0.1  # dropout probability, on the attention weights and in the LM


@dataclass(frozen=True)
class Sizes:
    """One small GPT-2's shapes; every tensor below is one of its layer's."""

    batch: int
    seq: int
    heads: int
    n_embd: int  # head_dim = n_embd // heads; feed-forward width 4 * n_embd
    vocab: int
    n_layer: int  # of the LM that keep_freed_memory trains
    error_draws: int  # normal draws for gelu_tanh's error against float64
    chunk_mib: tuple[float, ...]  # logits per chunk in projected_cross_entropy
    lm_warmup: int  # keep_freed_memory: untimed steps, timed steps, runs per side
    lm_steps: int
    lm_runs: int


FULL = Sizes(
    batch=32, seq=128, heads=4, n_embd=256, vocab=4096, n_layer=2, error_draws=1 << 22,
    chunk_mib=(4, 8, 16, 32), lm_warmup=1, lm_steps=3, lm_runs=2,
)  # fmt: skip
QUICK = Sizes(
    batch=2, seq=32, heads=2, n_embd=32, vocab=512, n_layer=1, error_draws=1 << 12,
    chunk_mib=(1 / 16, 1 / 8), lm_warmup=1, lm_steps=2, lm_runs=1,
)  # fmt: skip


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass
class Samples:
    """The timed steps of one side: wall-clock ms, and the process's CPU ms over the same step
    (all threads; less swayed than wall time when other processes take the cores)."""

    ms: list[float]
    cpu_ms: list[float] = field(default_factory=list)


def interleaved_ms(
    sides: dict[str, Callable[[], object]], warmup: int, repeats: int, device: str
) -> dict[str, Samples]:
    """Each step of each side timed, the sides taking turns (order reversed every other step)."""
    samples = {name: Samples([]) for name in sides}
    names = list(sides)
    for i in range(warmup + repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            sides[name]()
            synchronize(device)
            if i >= warmup:
                samples[name].ms.append((time.perf_counter() - start) * 1e3)
                samples[name].cpu_ms.append((time.process_time() - start_cpu) * 1e3)
    return samples


def forward_backward(function: Callable[..., Tensor], *inputs: Tensor) -> Callable[[], None]:
    """A step: `function(*inputs)` and its backward from a fixed random output gradient."""
    leaves = [x for x in inputs if x.requires_grad]
    grad_output = torch.randn_like(function(*inputs).float())

    def step() -> None:
        for x in leaves:
            x.grad = None
        function(*inputs).float().backward(grad_output)

    return step


def forward_only(function: Callable[..., Tensor], *inputs: Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            function(*inputs)

    return step


def row(
    kernel: str,
    compared_with: str,
    size: str,
    device: str,
    ours: Samples,
    plain: Samples,
    **extra: object,
) -> dict:
    """One line of the table: medians, ranges and plain / ours (> 1: ours is faster)."""
    ours_ms, plain_ms = statistics.median(ours.ms), statistics.median(plain.ms)
    entry = {
        "kernel": kernel,
        "compared_with": compared_with,
        "device": device,
        "size": size,
        "ours_ms": ours_ms,
        "plain_ms": plain_ms,
        "ratio": plain_ms / ours_ms if ours_ms > 0 else None,  # system time can be 0
        "ours_range_ms": [min(ours.ms), max(ours.ms)],
        "plain_range_ms": [min(plain.ms), max(plain.ms)],
    }
    if ours.cpu_ms and plain.cpu_ms:
        entry["ours_cpu_ms"] = statistics.median(ours.cpu_ms)
        entry["plain_cpu_ms"] = statistics.median(plain.cpu_ms)
    return entry | extra


# ---------------------------------------------------------------------------- the comparisons


def uniform_mask_dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout from one uniform number per element: the plain way to draw a mask."""
    return torch.where(torch.rand_like(x) >= p, x * (1 / (1 - p)), 0.0)


def bench_dropout(sizes: Sizes, args: argparse.Namespace, device: str) -> list[dict]:
    shape = (sizes.batch, sizes.heads, sizes.seq, sizes.seq)
    weights = torch.rand(shape, device=device, requires_grad=True)  # attention weights
    sides = {
        "ours": forward_backward(lambda x: kernels.dropout(x, P), weights),
        "F.dropout": forward_backward(lambda x: F.dropout(x, P, training=True), weights),
        "uniform mask": forward_backward(lambda x: uniform_mask_dropout(x, P), weights),
    }
    times = interleaved_ms(sides, args.warmup, args.repeats, device)
    size = f"{'x'.join(map(str, shape))} fwd+bwd"
    note = {"note": "falls back to F.dropout on this device"} if device != "cpu" else {}
    return [
        row("dropout", plain, size, device, times["ours"], times[plain], **note)
        for plain in ("F.dropout", "uniform mask")
    ]


def gelu_errors(draws: int) -> dict[str, float]:
    """Largest |error| of each float32 GELU against the same formula in float64."""
    x = torch.randn(draws, generator=torch.Generator().manual_seed(0))
    exact = F.gelu(x.double(), approximate="tanh")
    return {
        "ours_max_error": (kernels.gelu_tanh(x).double() - exact).abs().max().item(),
        "plain_max_error": (F.gelu(x, approximate="tanh").double() - exact).abs().max().item(),
    }


def bench_gelu(sizes: Sizes, args: argparse.Namespace, device: str) -> list[dict]:
    shape = (sizes.batch * sizes.seq, 4 * sizes.n_embd)  # the feed-forward activation
    x = torch.randn(shape, device=device, requires_grad=True)
    extra: dict[str, object]
    if device == "cpu":
        extra = gelu_errors(sizes.error_draws) | {"error_draws": sizes.error_draws}
    else:
        extra = {"note": "falls back to F.gelu on this device"}
    rows = []
    for pass_name, make in (("fwd", forward_only), ("fwd+bwd", forward_backward)):
        sides = {
            "ours": make(kernels.gelu_tanh, x),
            "plain": make(lambda t: F.gelu(t, approximate="tanh"), x),
        }
        times = interleaved_ms(sides, args.warmup, args.repeats, device)
        size = f"{shape[0]}x{shape[1]} {pass_name}"
        rows.append(
            row("gelu_tanh", 'F.gelu(approximate="tanh")', size, device, times["ours"],
                times["plain"], **extra, **{"pass": pass_name})
        )  # fmt: skip
    return rows


def causal_attention(
    query: Tensor, key: Tensor, value: Tensor, allowed: Tensor, bias_masking: bool
) -> Tensor:
    """softmax(masked Q Kᵀ / √d) with kernels.dropout, @ V; the scores one way or the other."""
    if bias_masking:
        scores = kernels.masked_scores(query, key, allowed)
    else:
        scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return kernels.dropout(scores.softmax(dim=-1), P) @ value


def bench_masked_scores(sizes: Sizes, args: argparse.Namespace, device: str) -> list[dict]:
    shape = (sizes.batch, sizes.heads, sizes.seq, sizes.n_embd // sizes.heads)
    query, key, value = (torch.randn(shape, device=device, requires_grad=True) for _ in "qkv")
    allowed = torch.ones(sizes.seq, sizes.seq, dtype=torch.bool, device=device).tril()
    sides = {
        "ours": forward_backward(
            lambda q, k, v: causal_attention(q, k, v, allowed, True), query, key, value
        ),
        "plain": forward_backward(
            lambda q, k, v: causal_attention(q, k, v, allowed, False), query, key, value
        ),
    }
    times = interleaved_ms(sides, args.warmup, args.repeats, device)
    size = f"{'x'.join(map(str, shape))} causal, dropout {P}, fwd+bwd"
    note = {"note": "attention_explicit does not call it on this device"} if device != "cpu" else {}
    return [
        row("masked_scores", "(Q Kᵀ/√d).masked_fill", size, device, times["ours"],
            times["plain"], **note)
    ]  # fmt: skip


def attention_layer(
    x: Tensor,
    projections: nn.Linear,
    output: nn.Linear,
    heads: int,
    attend: Callable[[Tensor, Tensor, Tensor], Tensor],
    precision: str,
) -> Tensor:
    """x (batch, seq, n_embd) through q, k, v, `attend` and the output projection; precision:
    "fp32 attention" (bf16 autocast, attention through outside_cpu_autocast), "bf16
    attention" (all of it under bf16 autocast) or "fp32" (no autocast)."""
    batch, seq, n_embd = x.shape
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "fp32"):
        qkv = projections(x).view(batch, seq, 3, heads, n_embd // heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, seq, head_dim)
        if precision == "fp32 attention":
            attended = kernels.outside_cpu_autocast(attend, query, key, value)
        else:
            attended = attend(query, key, value)
        return output(attended.transpose(1, 2).reshape(batch, seq, n_embd))


def bench_outside_cpu_autocast(sizes: Sizes, args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(0)
    projections, output = nn.Linear(sizes.n_embd, 3 * sizes.n_embd), nn.Linear(*[sizes.n_embd] * 2)
    x = torch.randn(sizes.batch, sizes.seq, sizes.n_embd, requires_grad=True)
    allowed = torch.ones(sizes.seq, sizes.seq, dtype=torch.bool).tril()
    parameters = [*projections.parameters(), *output.parameters()]
    # The two ways MultiHeadAttention attends on a CPU: explicitly where there is attention
    # dropout (PyTorch has no fused CPU kernel with dropout), else the fused kernel.
    paths = {
        f"explicit, dropout {P}": lambda q, k, v: attention_explicit(q, k, v, allowed, P)[0],
        "fused SDPA, no dropout": lambda q, k, v: attention_fast(q, k, v, causal_only=True),
    }

    def make(attend: Callable[..., Tensor], precision: str) -> Callable[[], None]:
        step = forward_backward(
            lambda t: attention_layer(t, projections, output, sizes.heads, attend, precision), x
        )

        def with_parameters() -> None:
            for parameter in parameters:
                parameter.grad = None
            step()

        return with_parameters

    rows = []
    for path, attend in paths.items():
        precisions = ("fp32 attention", "bf16 attention", "fp32")
        sides = {precision: make(attend, precision) for precision in precisions}
        times = interleaved_ms(sides, args.warmup, args.repeats, "cpu")
        size = f"{sizes.batch}x{sizes.seq}x{sizes.n_embd}, {sizes.heads} heads, {path}, fwd+bwd"
        ours = times["fp32 attention"]
        rows += [
            row("outside_cpu_autocast", "bf16 autocast, attention in bf16", size, "cpu", ours,
                times["bf16 attention"], attention=path),
            row("outside_cpu_autocast", "no autocast, all fp32", size, "cpu", ours,
                times["fp32"], attention=path),
        ]  # fmt: skip
    return rows


def bench_projected_cross_entropy(
    sizes: Sizes, args: argparse.Namespace, device: str
) -> list[dict]:
    rows_count = sizes.batch * sizes.seq
    generator = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(rows_count, sizes.n_embd, device=device, requires_grad=True)
    weight = (0.02 * torch.randn(sizes.vocab, sizes.n_embd, device=device)).requires_grad_()
    targets = torch.randint(sizes.vocab, (rows_count,), device=device, generator=generator)

    def loss_step(chunk_rows: int | None) -> Callable[[], None]:
        def step() -> None:
            hidden.grad = weight.grad = None
            if chunk_rows is None:
                loss = F.cross_entropy(F.linear(hidden, weight).float(), targets)
            else:
                loss = kernels.projected_cross_entropy(hidden, weight, targets, chunk_rows)
            loss.backward()

        return step

    chunk_rows = {mib: max(1, int(mib * 2**20) // (4 * sizes.vocab)) for mib in sizes.chunk_mib}
    sides = {f"{mib:g} MiB": loss_step(count) for mib, count in chunk_rows.items()}
    sides["full logits"] = loss_step(None)
    times = interleaved_ms(sides, args.warmup, args.repeats, device)
    note = {"note": "CausalLM does not call it on this device"} if device != "cpu" else {}
    return [
        row(
            "projected_cross_entropy",
            "full logits + F.cross_entropy",
            f"{rows_count}x{sizes.n_embd} onto {sizes.vocab}, chunks of {mib:g} MiB "
            f"({count} rows), fwd+bwd",
            device,
            times[f"{mib:g} MiB"],
            times["full logits"],
            chunk_mib=mib,
            chunk_rows=count,
            default_chunk=mib * 2**20 == kernels.CHUNK_BYTES,
            **note,
        )
        for mib, count in chunk_rows.items()
    ]


# ---------------------------------------------------------------------------- keep_freed_memory


def train_lm_child(sizes: Sizes, keep: bool) -> dict[str, float]:
    """In a fresh process: train the LM a few steps; per step: wall ms (median), system ms and
    minor page faults (means over the timed steps, from resource.getrusage)."""
    kept = keep_freed_memory() if keep else False
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=sizes.vocab, block_size=sizes.seq, n_layer=sizes.n_layer, n_head=sizes.heads,
        n_embd=sizes.n_embd, dropout=P, attention_dropout=P,
    )  # fmt: skip
    model = CausalLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(sizes.vocab, (sizes.batch, sizes.seq + 1))
    wall = []
    for i in range(sizes.lm_warmup + sizes.lm_steps):
        if i == sizes.lm_warmup:
            before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        loss = model(tokens[:, :-1], targets=tokens[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        wall.append((time.perf_counter() - start) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "kept": kept,
        "wall_ms": statistics.median(wall[sizes.lm_warmup :]),
        "system_ms": (after.ru_stime - before.ru_stime) * 1e3 / sizes.lm_steps,
        "minor_faults": (after.ru_minflt - before.ru_minflt) / sizes.lm_steps,
    }


def bench_keep_freed_memory(sizes: Sizes, args: argparse.Namespace) -> list[dict]:
    runs: dict[str, list[dict]] = {"keep": [], "default": []}
    command = [sys.executable, str(Path(__file__).resolve())]
    command += (["--quick"] if args.quick else []) + ["--threads", str(torch.get_num_threads())]
    for run in range(sizes.lm_runs):
        for side in ("keep", "default") if run % 2 == 0 else ("default", "keep"):
            result = subprocess.run(
                [*command, "--lm-child", side], capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0:
                raise RuntimeError(f"the {side} LM run failed:\n{result.stderr}")
            runs[side].append(json.loads(result.stdout.splitlines()[-1]))
    if not runs["keep"][0]["kept"]:
        return []
    size = (
        f"LM {sizes.n_layer}x{sizes.n_embd}, {sizes.batch}x{sizes.seq}, {sizes.lm_steps} steps "
        f"x {sizes.lm_runs} runs"
    )
    faults = {side: statistics.median(r["minor_faults"] for r in results)
              for side, results in runs.items()}  # fmt: skip
    return [
        row("keep_freed_memory", f"glibc default, {measure} per step", size, "cpu",
            Samples([r[key] for r in runs["keep"]]), Samples([r[key] for r in runs["default"]]),
            minor_faults_per_step={"ours": faults["keep"], "plain": faults["default"]})
        for measure, key in (("wall time", "wall_ms"), ("system time", "system_ms"))
    ]  # fmt: skip


# ---------------------------------------------------------------------------- the run


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first CPU's model name, family, model and stepping from /proc/cpuinfo (Linux)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return {"model name": platform.processor() or platform.machine()}
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = (part.strip() for part in line.partition(":"))
        if not name:
            break  # the end of the first processor's block
        if name in ("model name", "cpu family", "model", "stepping"):
            fields[name] = value
    return fields


def machine() -> dict:
    flags = cpu_flags()
    info = {
        "cpu": cpu_model(),
        "bf16_flags": sorted(flags & set(NATIVE_BF16_CPU_FLAGS)),
        "avx512_bf16": "avx512_bf16" in flags,
        "native_bf16_cpu": native_bf16_cpu(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smallest sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (10; quick: 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (3; quick: 1)")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="auto: the CPU, and CUDA too when available",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--malloc", choices=["keep", "default"], default="keep",
        help="glibc malloc in this process: keep freed memory as the trainer does on a CPU "
        "(keep_freed_memory), or glibc's default; the keep_freed_memory rows run both anyway",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--lm-child", choices=["keep", "default"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    if args.repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats must be at least 1 and --warmup at least 0; got "
                     f"{args.repeats} and {args.warmup}")  # fmt: skip
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1; got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but torch.cuda.is_available() is False")
    return args


def print_row(entry: dict) -> None:
    ratio = "-" if entry["ratio"] is None else f"{entry['ratio']:.2f}x"
    cpu = " " * 27
    if "ours_cpu_ms" in entry:
        cpu_ratio = entry["plain_cpu_ms"] / max(entry["ours_cpu_ms"], 1e-9)
        cpu = f"{entry['ours_cpu_ms']:>8.2f} {entry['plain_cpu_ms']:>8.2f} {cpu_ratio:>8.2f}x"
    print(
        f"{entry['device']:<5} {entry['kernel']:<24} {entry['compared_with']:<34} "
        f"{entry['ours_ms']:>9.2f} {entry['plain_ms']:>9.2f} {ratio:>10} {cpu} "
        f"{entry['load_1min'][0]:>4.1f}-{entry['load_1min'][1]:<4.1f} {entry['size']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    if args.lm_child:
        print(json.dumps(train_lm_child(sizes, keep=args.lm_child == "keep")))
        return
    # Before the first large tensor: with glibc's default, whether a 16 MiB tensor is mapped
    # afresh (a page fault per 4 KiB) depends on what was freed before, so on the order of runs.
    kept = keep_freed_memory() if args.malloc == "keep" else False
    started = time.perf_counter()
    info = machine() | {"glibc_keeps_freed_memory": kept}
    print(f"CPU: {info['cpu'].get('model name', '?')}, bf16 flags: "
          f"{', '.join(info['bf16_flags']) or 'none'}, torch {info['torch']}, "
          f"{info['torch_threads']} threads, glibc keeps freed memory: {kept}")  # fmt: skip
    print(
        f"{'dev':<5} {'kernel':<24} {'compared with':<34} {'ours ms':>9} {'plain ms':>9} "
        f"{'plain/ours':>10} {'ours cpu':>8} {'plain cpu':>8} {'cpu p/o':>9} {'load':<9} size"
    )
    devices = [args.device]
    if args.device == "auto":
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    rows: list[dict] = []
    skipped: dict[str, str] = {}

    load_before = os.getloadavg()[0]

    def add(new_rows: list[dict]) -> None:
        """Print and keep rows, with the 1-minute load average before and after them."""
        nonlocal load_before
        load_after = os.getloadavg()[0]
        for entry in new_rows:
            entry["load_1min"] = [load_before, load_after]
            print_row(entry)
        rows.extend(new_rows)
        load_before = load_after

    for device in devices:
        torch.manual_seed(0)
        add(bench_dropout(sizes, args, device))
        add(bench_gelu(sizes, args, device))
        add(bench_masked_scores(sizes, args, device))
        if device == "cpu":
            if native_bf16_cpu():
                add(bench_outside_cpu_autocast(sizes, args))
            else:
                skipped["outside_cpu_autocast"] = (
                    "this CPU has no native bf16 (none of "
                    f"{', '.join(NATIVE_BF16_CPU_FLAGS)} in /proc/cpuinfo, or no oneDNN): "
                    "training here runs in fp32, where the function does nothing"
                )
        add(bench_projected_cross_entropy(sizes, args, device))
        if device == "cpu":
            freed_rows = bench_keep_freed_memory(sizes, args)
            add(freed_rows)
            if not freed_rows:
                skipped["keep_freed_memory"] = "not Linux with glibc, or mallopt refused"
    for kernel, reason in skipped.items():
        print(f"skipped {kernel}: {reason}")
    for entry in rows:
        if "ours_max_error" in entry and entry["pass"] == "fwd":
            print(
                f"gelu_tanh max |error| vs float64 over {entry['error_draws']} normal draws: "
                f"ours {entry['ours_max_error']:.2g}, plain {entry['plain_max_error']:.2g}"
            )
        if "minor_faults_per_step" in entry and "wall" in entry["compared_with"]:
            faults = entry["minor_faults_per_step"]
            print(f"keep_freed_memory minor page faults per step: ours {faults['ours']:.0f}, "
                  f"plain {faults['plain']:.0f}")  # fmt: skip
    wall_s = time.perf_counter() - started
    info["load_average_at_end"] = os.getloadavg()
    report = {
        "benchmark": "sslm_lab.kernels against the plain PyTorch each one replaces",
        "settings": {**vars(args), "out": str(args.out), "sizes": asdict(sizes)},
        "time_method": f"median of {args.repeats} steps after {args.warmup} warm-up steps, the "
        "sides of each comparison taking turns, order reversed every other step; "
        "keep_freed_memory: median over runs in fresh processes, sides alternating",
        "ratio": "plain_ms / ours_ms: above 1, ours is faster",
        "machine": info,
        "rows": rows,
        "skipped": skipped,
        "wall_s": wall_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"took {wall_s:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
