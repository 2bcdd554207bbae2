"""Named run sizes: every size and threshold a notebook uses comes from here.

    smoke   CI and nbval on 2 CPU cores: seconds per notebook, proves the code paths
    laptop  the default in JupyterLab on a CPU: a few minutes per notebook
    gpu     one GPU through papermill: minutes per notebook, the headline numbers

Each notebook has its own small table, one row per knob and one column per profile
(`tour.py`, `attention.py`, `masked_lm.py`, `causal_lm.py`; see `table.py` for the
form). A notebook asks for its profile once (`get_profile(profile)`) and reads its own
section, e.g. `P.tour.bpe_vocab_size`. Sections are frozen dataclasses, so a typo in a
field name fails loudly instead of silently using a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sslm_lab.lab.profiles.attention import AttentionSizes
from sslm_lab.lab.profiles.causal_lm import CausalLMSizes
from sslm_lab.lab.profiles.masked_lm import MaskedLMSizes
from sslm_lab.lab.profiles.table import PROFILE_NAMES, sizes_for
from sslm_lab.lab.profiles.tour import TourSizes

DEFAULT_PROFILE = "laptop"
ENV_VAR = "SSLM_PROFILE"
DESCRIPTIONS = {
    "smoke": "CI and nbval on 2 CPU cores: seconds per notebook",
    "laptop": "JupyterLab on a laptop CPU: a few minutes per notebook",
    "gpu": "one GPU through papermill: the headline numbers",
}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tour: TourSizes
    attention: AttentionSizes
    causal_lm: CausalLMSizes
    masked_lm: MaskedLMSizes


def build_profile(name: str) -> Profile:
    """One column of every notebook's table."""
    return Profile(
        name=name,
        description=DESCRIPTIONS[name],
        tour=sizes_for(TourSizes, name),
        attention=sizes_for(AttentionSizes, name),
        causal_lm=sizes_for(CausalLMSizes, name),
        masked_lm=sizes_for(MaskedLMSizes, name),
    )


PROFILES: dict[str, Profile] = {name: build_profile(name) for name in PROFILE_NAMES}


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
