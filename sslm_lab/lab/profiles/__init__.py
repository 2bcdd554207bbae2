"""Named run sizes: every size and threshold a notebook uses comes from here.

    smoke   CI and nbval on 2 CPU cores: seconds per notebook, proves the code paths
    laptop  the default in JupyterLab on a CPU: a few minutes per notebook
    gpu     one GPU through papermill: minutes per notebook, the headline numbers

Each notebook has its own small table, one row per knob and one column per profile
(`tour.py`, `attention.py`, `masked_lm.py`, `causal_lm.py`, `training_craft.py`, `vae.py`,
`gan.py`, `contrastive.py`, `finetune.py`, `real_model.py`, `known_language.py`, named as
the notebook's figures in `lab/viz` and widgets in `lab/widgets` are; see `table.py` for
the form). Each also
declares the notebook's parameters (`parameters.py`: the specs and their validation). A notebook asks for its profile once (`get_profile(profile)`)
and reads its own section, e.g. `P.tour.bpe_vocab_size`. Sections are frozen dataclasses,
so a typo in a field name fails loudly instead of silently using a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sslm_lab.checks import check_choice
from sslm_lab.lab.profiles import (
    attention,
    causal_lm,
    contrastive,
    finetune,
    gan,
    known_language,
    masked_lm,
    real_model,
    tour,
    training_craft,
    vae,
)
from sslm_lab.lab.profiles.attention import AttentionSizes
from sslm_lab.lab.profiles.causal_lm import CausalLMSizes
from sslm_lab.lab.profiles.contrastive import ContrastiveSizes
from sslm_lab.lab.profiles.finetune import FineTuneSizes
from sslm_lab.lab.profiles.gan import GANSizes
from sslm_lab.lab.profiles.known_language import KnownLanguageSizes
from sslm_lab.lab.profiles.masked_lm import MaskedLMSizes
from sslm_lab.lab.profiles.parameters import Parameters
from sslm_lab.lab.profiles.real_model import RealModelSizes
from sslm_lab.lab.profiles.table import PROFILE_NAMES, sizes_for
from sslm_lab.lab.profiles.tour import TourSizes
from sslm_lab.lab.profiles.training_craft import TrainingCraftSizes
from sslm_lab.lab.profiles.vae import VAESizes

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
    training_craft: TrainingCraftSizes
    masked_lm: MaskedLMSizes
    vae: VAESizes
    gan: GANSizes
    contrastive: ContrastiveSizes
    finetune: FineTuneSizes
    real_model: RealModelSizes
    known_language: KnownLanguageSizes


def build_profile(name: str) -> Profile:
    """One column of every notebook's table."""
    return Profile(
        name=name,
        description=DESCRIPTIONS[name],
        tour=sizes_for(TourSizes, name),
        attention=sizes_for(AttentionSizes, name),
        causal_lm=sizes_for(CausalLMSizes, name),
        training_craft=sizes_for(TrainingCraftSizes, name),
        masked_lm=sizes_for(MaskedLMSizes, name),
        vae=sizes_for(VAESizes, name),
        gan=sizes_for(GANSizes, name),
        contrastive=sizes_for(ContrastiveSizes, name),
        finetune=sizes_for(FineTuneSizes, name),
        real_model=sizes_for(RealModelSizes, name),
        known_language=sizes_for(KnownLanguageSizes, name),
    )


PROFILES: dict[str, Profile] = {name: build_profile(name) for name in PROFILE_NAMES}

# Each notebook's parameters besides `profile`, checked by its first cell after the
# parameters cell (and tried with bad values by tests/test_parameter_sweep.py).
NOTEBOOK_PARAMETERS: dict[str, Parameters] = {
    "00_tour": tour.PARAMETERS,
    "01_attention": attention.PARAMETERS,
    "02_masked_lm": masked_lm.PARAMETERS,
    "03_autoregressive_lm": causal_lm.PARAMETERS,
    "03b_training_craft": training_craft.PARAMETERS,
    "04_vae": vae.PARAMETERS,
    "05_gan": gan.PARAMETERS,
    "06_contrastive": contrastive.PARAMETERS,
    "07_fine_tuning": finetune.PARAMETERS,
    "08_real_pretrained_model": real_model.PARAMETERS,
    "09_known_language": known_language.PARAMETERS,
}


def resolve_profile_name(name: str | None = None) -> str:
    """The profile to use: `name` if given, else $SSLM_PROFILE, else 'laptop'."""
    from_environment = name is None
    if from_environment:
        name = os.environ.get(ENV_VAR) or DEFAULT_PROFILE
    hint = f"it came from ${ENV_VAR}" if from_environment and os.environ.get(ENV_VAR) else ""
    return check_choice("profile", name, PROFILE_NAMES, hint=hint)


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile (see `resolve_profile_name` for the default)."""
    return PROFILES[resolve_profile_name(name)]
