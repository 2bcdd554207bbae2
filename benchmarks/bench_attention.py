"""Explicit vs fast attention: time and peak memory of a forward + backward step.

Runs `sslm_lab.transformer.MultiHeadAttention` both ways (the explicit path that
materialises the (batch, heads, seq, seq) weights, and the fused
`F.scaled_dot_product_attention` path) for a few sequence lengths, on the CPU and, when
one is available, on CUDA. Prints a table and writes JSON.

    python benchmarks/bench_attention.py                  # about 15 s on 2 idle CPU cores
    python benchmarks/bench_attention.py --seq-lens 128 1024 --device cuda

Time: median over `--repeats` steps after `--warmup` steps (CUDA synchronised).
Peak memory: the extra memory one step allocates beyond its inputs and weights.
  CUDA: torch.cuda.max_memory_allocated() minus the allocation before the step.
  CPU:  the running total of the allocation events that `torch.profiler`
        (profile_memory=True) records during one step, at its highest. tracemalloc cannot
        see torch's allocations and ru_maxrss is swamped by the import of torch itself.
Explicit and fast steps are timed alternately, so a burst of load from other processes
hits both paths alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from sslm_lab.transformer import MultiHeadAttention, TransformerConfig

PATHS = ("explicit", "fast")
DEFAULT_OUT = Path(__file__).parent / "results" / "attention.json"


def build(args: argparse.Namespace, path: str, seq_len: int, device: str):
    """An attention layer on `path`, an input (batch, seq, n_embd) and an optional mask."""
    torch.manual_seed(0)
    config = TransformerConfig(
        n_embd=args.n_embd,
        n_head=args.n_head,
        block_size=seq_len,
        causal=not args.bidirectional,
        attention_path=path,
    )
    attention = MultiHeadAttention(config).to(device)
    x = torch.randn(args.batch, seq_len, args.n_embd, device=device, requires_grad=True)
    mask = None
    if args.padding:  # the last quarter of every other row is padding
        mask = torch.ones(args.batch, seq_len, dtype=torch.bool, device=device)
        mask[::2, seq_len - seq_len // 4 :] = False
    return attention, x, mask


def step(attention: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor | None) -> None:
    """One forward + backward pass; gradients are dropped so steps do not accumulate."""
    x.grad = None
    attention.zero_grad(set_to_none=True)
    output, _ = attention(x, mask)
    output.sum().backward()


def time_both_ms(args: argparse.Namespace, seq_len: int, device: str) -> dict[str, float]:
    """Median ms per step for each path, the two paths' steps interleaved."""
    setups = {path: build(args, path, seq_len, device) for path in PATHS}
    timings: dict[str, list[float]] = {path: [] for path in PATHS}
    for i in range(args.warmup + args.repeats):
        for path, (attention, x, mask) in setups.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step(attention, x, mask)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                timings[path].append((time.perf_counter() - start) * 1e3)
    return {path: statistics.median(times) for path, times in timings.items()}


def cuda_peak_mb(args: argparse.Namespace, path: str, seq_len: int) -> float:
    attention, x, mask = build(args, path, seq_len, "cuda")
    step(attention, x, mask)  # the first step also creates lazily initialised CUDA state
    x.grad = None
    attention.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(attention, x, mask)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def cpu_peak_mb(args: argparse.Namespace, path: str, seq_len: int) -> float:
    attention, x, mask = build(args, path, seq_len, "cpu")
    step(attention, x, mask)
    x.grad = None  # freed before profiling, so the step starts from inputs and weights only
    attention.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step(attention, x, mask)
    allocations = []  # (time, bytes): positive for an allocation, negative for a free
    pending = list(profiler.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        pending.extend(event.children)
        if hasattr(event.extra_fields, "alloc_size"):
            allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
    running = peak = 0
    for _, size in sorted(allocations):
        running += size
        peak = max(peak, running)
    return peak / 2**20


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--bidirectional", action="store_true", help="no causal mask")
    parser.add_argument("--padding", action="store_true", help="add a padding mask")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="auto: the CPU, and CUDA too when available",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but torch.cuda.is_available() is False")
    for name in ("batch", "n_embd", "n_head", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.seq_lens) < 1:
        parser.error(f"--seq-lens must be positive; got {args.seq_lens}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = {"auto": ["cpu"] + ["cuda"] * torch.cuda.is_available()}.get(args.device)
    devices = devices or [args.device]
    rows = []
    header = f"{'device':<6} {'seq':>5} {'explicit ms':>12} {'fast ms':>9} {'speed-up':>9} "
    header += f"{'explicit MB':>12} {'fast MB':>9}"
    print(header)
    for device in devices:
        for seq_len in args.seq_lens:
            row: dict = {"device": device, "seq_len": seq_len}
            for path, ms in time_both_ms(args, seq_len, device).items():
                row[f"{path}_ms"] = ms
            for path in PATHS:
                peak = cuda_peak_mb if device == "cuda" else cpu_peak_mb
                row[f"{path}_peak_mb"] = peak(args, path, seq_len)
            row["speedup"] = row["explicit_ms"] / row["fast_ms"]
            rows.append(row)
            print(
                f"{device:<6} {seq_len:>5} {row['explicit_ms']:>12.2f} {row['fast_ms']:>9.2f} "
                f"{row['speedup']:>8.2f}x {row['explicit_peak_mb']:>12.1f} "
                f"{row['fast_peak_mb']:>9.1f}"
            )
    report = {
        "benchmark": "MultiHeadAttention forward + backward, explicit vs fast path",
        "settings": {**vars(args), "out": str(args.out)},
        "memory_method": {
            "cuda": "torch.cuda.max_memory_allocated() minus allocation before the step",
            "cpu": "highest running total of torch.profiler allocation events in one step",
        },
        "time_method": f"median of {args.repeats} steps after {args.warmup} warm-up steps, "
        "explicit and fast interleaved",
        "machine": machine(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
