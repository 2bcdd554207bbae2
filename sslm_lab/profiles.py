"""Named run sizes. Every size a notebook uses comes from here.

    smoke   CI and nbval on 2 CPU cores: seconds per notebook, proves the code paths
    laptop  the default in JupyterLab on a CPU: a few minutes per notebook
    gpu     one GPU through papermill: minutes per notebook, the headline numbers

A notebook asks for its profile once (`get_profile(profile)`) and reads its own
section, e.g. `P.tour.bpe_vocab_size`. Each section is a frozen dataclass, so a
typo in a field name fails loudly instead of silently using a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILE_NAMES = ("smoke", "laptop", "gpu")
DEFAULT_PROFILE = "laptop"
ENV_VAR = "SSLM_PROFILE"


@dataclass(frozen=True)
class TourSizes:
    """00_tour: tokenizers and n-gram baselines."""

    bpe_vocab_size: int
    ngram_smoothing: float  # add-k constant for the n-gram baselines
    digits_grid: int  # digits shown per row and column of the example grid


@dataclass(frozen=True)
class AttentionSizes:
    """01_attention: softmax saturation, MiniLM parity, the attention timing."""

    head_dims: tuple[int, ...]  # d_k values in the "why divide by sqrt(d_k)" plot
    saturation_samples: int  # random query/key draws per d_k
    saturation_keys: int  # keys each query's softmax chooses among
    shakespeare_lines: int  # lines run through MiniLM for parity and the explorer
    bench_seq_lens: tuple[int, ...]  # sequence lengths of the explicit-vs-fast timing
    bench_repeats: int  # timed steps per sequence length
    bench_batch: int  # sequences per timed step


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tour: TourSizes
    attention: AttentionSizes


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI and nbval on 2 CPU cores: seconds per notebook",
        tour=TourSizes(bpe_vocab_size=512, ngram_smoothing=0.01, digits_grid=4),
        attention=AttentionSizes(
            head_dims=(4, 64, 1024),
            saturation_samples=64,
            saturation_keys=16,
            shakespeare_lines=4,
            bench_seq_lens=(32, 64),
            bench_repeats=2,
            bench_batch=2,
        ),
    ),
    "laptop": Profile(
        name="laptop",
        description="JupyterLab on a laptop CPU: a few minutes per notebook",
        tour=TourSizes(bpe_vocab_size=2048, ngram_smoothing=0.01, digits_grid=8),
        attention=AttentionSizes(
            head_dims=(4, 16, 64, 256, 1024),
            saturation_samples=1000,
            saturation_keys=16,
            shakespeare_lines=16,
            bench_seq_lens=(64, 128, 256, 512),
            bench_repeats=5,
            bench_batch=8,
        ),
    ),
    "gpu": Profile(
        name="gpu",
        description="one GPU through papermill: the headline numbers",
        tour=TourSizes(bpe_vocab_size=8192, ngram_smoothing=0.01, digits_grid=10),
        attention=AttentionSizes(
            head_dims=(4, 16, 64, 256, 1024),
            saturation_samples=4000,
            saturation_keys=16,
            shakespeare_lines=64,
            bench_seq_lens=(128, 512, 1024, 2048),
            bench_repeats=20,
            bench_batch=32,
        ),
    ),
}


def resolve_profile_name(name: str | None = None) -> str:
    """The profile to use: `name` if given, else $SSLM_PROFILE, else 'laptop'."""
    if name is None or name == "":
        name = os.environ.get(ENV_VAR) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(
            f"profile={name!r} is not a known profile; choose one of {', '.join(PROFILE_NAMES)}"
            + (f" (it came from ${ENV_VAR})" if os.environ.get(ENV_VAR) == name else "")
        )
    return name


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile (see `resolve_profile_name` for the default)."""
    return PROFILES[resolve_profile_name(name)]
