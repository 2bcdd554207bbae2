"""Where training runs and how fast it could go: device, precision, torchrun, peak FLOPs.

The trainer asks this module five questions before it takes a single step:

1. Which device?  `resolve_device("auto")` picks CUDA, then Apple's MPS, then the CPU.
2. Can that device compute in the precision asked for?  `check_precision` answers
   before any work is done, so a bf16 run on a GPU without bf16 fails at once; and
   `resolve_precision` turns "auto" into bf16 where the hardware multiplies bf16
   matrices natively, fp32 everywhere else.
3. Are we one of several processes started by `torchrun`?  `setup_distributed` reads
   the environment torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE) and joins the group.
4. On a CPU, may freed memory be kept for the next step?  `keep_freed_memory` tells
   glibc's malloc so, which saves the page faults of re-mapping large tensors each step.
5. How many FLOP/s could this GPU do at best?  `peak_flops` looks the GPU up in a
   table, so that model FLOPs utilisation (MFU) = achieved FLOP/s / peak FLOP/s.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from sslm_lab.checks import invalid

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
# x86 CPU flags (Linux /proc/cpuinfo) of instructions that multiply bf16 matrices: AVX-512
# BF16 (Intel Cooper Lake and later, AMD Zen 4 and later) and AMX (Intel Sapphire Rapids).
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Dense (no 2:4 sparsity) peak tensor throughput per GPU, in TFLOP/s, from NVIDIA's
# data sheets. "tf32" is what fp32 matmuls reach when TF32 is allowed.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100 SXM": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H200 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
}


def best_device() -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a `torch.device`, checking that it exists here.

    "auto" means the fastest device present: CUDA, then MPS, then CPU. Under torchrun
    with CUDA, each process takes the GPU numbered by its LOCAL_RANK.
    """
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"
    if not isinstance(name, str):
        raise invalid("TrainerConfig.device", name, allowed)
    if name == "auto":
        name = best_device().type
    try:
        device = torch.device(name)
    except RuntimeError:
        raise invalid("TrainerConfig.device", name, allowed) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise invalid("TrainerConfig.device", name, allowed)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"TrainerConfig.device: got {name!r}, but torch.cuda.is_available() is False "
                "(no GPU visible, or a CPU-only torch build); use 'auto' or 'cpu'"
            )
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if device.index >= torch.cuda.device_count():
            raise invalid(
                "TrainerConfig.device", name, f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"TrainerConfig.device: got {name!r}, but MPS is not available on this machine; "
            "use 'auto' or 'cpu'"
        )
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` can run bf16 autocast (pre-Ampere GPUs and old macOS cannot)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "mps":
        try:
            torch.zeros(1, dtype=torch.bfloat16, device=device)
        except (RuntimeError, TypeError):
            return False
        return True
    return True  # the CPU emulates bf16 where it has no native instructions


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags the Linux kernel reports for this CPU (empty elsewhere)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return set()
    for line in lines:
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware, through PyTorch's oneDNN kernels.

    Decided from the CPU's flags, not a timing probe, so the answer is the same on every
    run (a probe on a busy machine could flip it). Without these instructions PyTorch
    emulates bf16: a 1024² bf16 matmul ran at 0.6 GFLOP/s on an AVX2-only EPYC, against
    37 GFLOP/s in fp32, so "auto" must not pick bf16 there.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # Arm's bf16 goes through other kernels, not measured here
    if not torch.backends.mkldnn.is_available():
        return False
    return bool(cpu_flags() & set(NATIVE_BF16_CPU_FLAGS))


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run on `device` uses: `precision` itself, or for "auto" "bf16" where
    the device multiplies bf16 matrices natively and "fp32" everywhere else.

    - CUDA: bf16 on GPUs with bf16 tensor cores (Ampere and newer), else fp32;
    - CPU: bf16 with AVX-512 BF16 or AMX (`native_bf16_cpu`), else fp32: there bf16
      matmuls run at about twice the fp32 rate (benchmarks/README.md); attention stays in
      fp32 inside CPU autocast (`sslm_lab.kernels.outside_cpu_autocast`);
    - MPS: fp32.
    fp16 is never picked: it needs loss scaling, and bf16 is as fast wherever both exist.
    """
    check_precision(precision, device)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu" and native_bf16_cpu():
        return "bf16"
    return "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    """Fail before training if `precision` is unknown or `device` cannot run it."""
    if precision not in PRECISIONS:
        raise invalid("TrainerConfig.precision", precision, ", ".join(PRECISIONS))
    if precision in ("fp32", "auto"):
        return
    if not torch.amp.autocast_mode.is_autocast_available(device.type):
        raise ValueError(
            f"TrainerConfig.precision: got {precision!r}, but this torch has no autocast for "
            f"{device.type}; allowed here: 'fp32'"
        )
    if precision == "bf16" and not bf16_supported(device):
        raise ValueError(
            f"TrainerConfig.precision: got 'bf16', but {device_name(device)} cannot compute in "
            "bf16; allowed here: 'fp32' or 'fp16'"
        )


def configure_tf32(device: torch.device, enabled: bool) -> None:
    """Let fp32 matmuls on CUDA use TF32 tensor cores (10-bit mantissa, ~8x faster on A100+)."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high" if enabled else "highest")


# glibc's malloc options (malloc.h): memory above M_MMAP_THRESHOLD bytes is mapped fresh
# from the kernel for each allocation and unmapped when freed; free memory at the top of
# the heap beyond M_TRIM_THRESHOLD bytes is handed back to the kernel.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20  # where glibc's dynamic threshold stops growing on 64-bit
TRIM_THRESHOLD_BYTES = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """On Linux with glibc, keep the memory of freed CPU tensors for the next step.

    A training step on a CPU allocates the same large activations every step and frees
    them at its end. glibc maps an allocation over its mmap threshold (dynamic, at most
    32 MiB) fresh from the kernel and unmaps it when freed, and trims the heap once the
    free space at its top passes a threshold; either way the next step's allocation takes
    a page fault per 4 KiB page, with the kernel zeroing each page: on a small causal LM
    that system time was a tenth of the step (benchmarks/README.md). With the thresholds
    fixed at 32 MiB (mmap) and 256 MiB (trim) the memory is reused instead, and the
    process keeps up to 256 MiB of free heap rather than returning it. It is what jemalloc
    or tcmalloc, which PyTorch's CPU performance guides suggest preloading, do without
    being asked.

    Process-wide and done once (the trainer calls it for CPU runs); returns whether the
    options were set (False elsewhere, or if glibc refused them).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; fixing either threshold turns glibc's dynamic one off.
    mmap_set = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    trim_set = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    return mmap_set and trim_set


def device_name(device: torch.device) -> str:
    """A human name for the device, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def gpu_model(name: str) -> str | None:
    """Map a CUDA device name to a row of `PEAK_TFLOPS`, or None when we don't know it.

    >>> gpu_model("NVIDIA H100 80GB HBM3")
    'H100 SXM'
    """
    upper = name.upper()
    for chip in ("H200", "H100"):
        if chip in upper:
            if "NVL" in upper:
                return f"{chip} NVL"
            if chip == "H100":
                return "H100 PCIe" if "PCIE" in upper else "H100 SXM"
            return chip
    if "A100" in upper:
        return "A100"
    return None


def peak_flops(device: torch.device, precision: str, tf32: bool = True) -> float | None:
    """Peak dense FLOP/s of one `device` at `precision`, or None ("unknown")."""
    if device.type != "cuda":
        return None
    model = gpu_model(device_name(device))
    if model is None:
        return None
    key = "tf32" if precision == "fp32" and tf32 else precision
    return PEAK_TFLOPS[model][key] * 1e12


def model_flops_utilization(
    tokens_per_second: float, flops_per_token: float | None, peak: float | None
) -> float | None:
    """MFU = (tokens/s x training FLOPs per token) / peak FLOP/s, or None when unknown.

    See PaLM (Chowdhery et al., 2022), appendix B; `peak` is the sum over all GPUs.
    """
    if flops_per_token is None or peak is None or peak <= 0:
        return None
    return tokens_per_second * flops_per_token / peak


@dataclass(frozen=True)
class DistributedInfo:
    """This process's place among the processes torchrun started (1 process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: torch.device) -> DistributedInfo:
    """Join the process group torchrun prepared, if WORLD_SIZE > 1.

    NCCL moves gradients between GPUs; gloo does the same job between CPU processes.
    """
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return DistributedInfo()
    info = DistributedInfo(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=world_size,
    )
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
    return info


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script).

    Every rank waits for the others first: a rank that tears the group down while
    another still talks to it can abort the whole job at exit (gloo, under load)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
