"""A pretrained model on disk: everything a later notebook needs to use it, nothing more.

    folder/
        model.safetensors   the weights (a tied output layer is stored once)
        config.json         the model class, its TransformerConfig, the tokenizer kind,
                            and any metadata the saving notebook adds (e.g. val bits/char)
        tokenizer.json      the tokenizer, in CharTokenizer's or BPETokenizer's own format

A training checkpoint (`sslm_lab.training.checkpoint`) also holds optimizer state for resuming;
this is the smaller thing a fine-tuning notebook loads. Weights are safetensors, so
loading never runs pickled code, and the folder is written beside its final place and
renamed into it, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model

from sslm_lab.data.hmm_language import WordTokenizer
from sslm_lab.data.tokenizers import BPETokenizer, CharTokenizer, TextTokenizer
from sslm_lab.files import CheckpointError, staged_folder, weight_mismatches
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.transformer import TransformerConfig, TransformerModel

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_CLASSES: dict[str, type[TransformerModel]] = {"CausalLM": CausalLM, "MaskedLM": MaskedLM}
TOKENIZER_CLASSES: dict[str, type[TextTokenizer]] = {
    "char": CharTokenizer,
    "bpe": BPETokenizer,
    "word": WordTokenizer,  # the known language's (sslm_lab.data.hmm_language)
}


def save_pretrained(
    model: TransformerModel,
    tokenizer: TextTokenizer,
    folder: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (a CausalLM or MaskedLM), its tokenizer and JSON `metadata` to `folder`.

    An existing folder is replaced as a whole. Returns the folder.
    """
    model_kind = next((k for k, c in MODEL_CLASSES.items() if type(model) is c), None)
    tokenizer_kind = next((k for k, c in TOKENIZER_CLASSES.items() if type(tokenizer) is c), None)
    if model_kind is None:
        raise ValueError(f"can save {', '.join(MODEL_CLASSES)}; got {type(model).__name__}")
    if tokenizer_kind is None:
        kinds = ", ".join(c.__name__ for c in TOKENIZER_CLASSES.values())
        raise ValueError(f"can save a {kinds}; got {type(tokenizer).__name__}")
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the model only "
            f"vocab_size={model.config.vocab_size}: they do not belong together"
        )
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    description = {
        "model": model_kind,
        "config": asdict(model.config),
        "tokenizer": tokenizer_kind,
        "metadata": metadata or {},
    }
    with staged_folder(folder) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        tokenizer.save(staging / TOKENIZER_FILE)
        (staging / CONFIG_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return folder


def load_pretrained(
    folder: str | os.PathLike, device: str = "cpu"
) -> tuple[TransformerModel, TextTokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, metadata) from a folder `save_pretrained` wrote."""
    folder = Path(folder)
    paths = [folder / name for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE)]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} is not a saved model: {', '.join(missing)} missing. Run the notebook "
            "that saves it (e.g. 03_autoregressive_lm) with the same profile first."
        )
    rerun = "delete the folder and rerun the notebook that saved it"
    try:
        description = json.loads((folder / CONFIG_FILE).read_text())
        model_class = MODEL_CLASSES[description["model"]]
        tokenizer_class = TOKENIZER_CLASSES[description["tokenizer"]]
        config = TransformerConfig(**description["config"])
        metadata = description["metadata"]
    except (ValueError, KeyError, TypeError) as error:  # JSON, a missing key, a bad field
        raise CheckpointError(
            f"{folder / CONFIG_FILE} cannot be read as a saved model's description "
            f"({type(error).__name__}: {error}); {rerun}"
        ) from error
    model = model_class(config)
    try:
        problems = weight_mismatches(folder / WEIGHTS_FILE, model)
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE} is corrupt or truncated ({type(error).__name__}); {rerun}"
        ) from error
    if problems:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE} does not fit its config: {problems[:3]}; {rerun}"
        )
    load_model(model, str(folder / WEIGHTS_FILE), strict=True)
    try:
        tokenizer = tokenizer_class.load(folder / TOKENIZER_FILE)
    except Exception as error:  # a tokenizers parse error, or JSON of the wrong kind
        raise CheckpointError(
            f"{folder / TOKENIZER_FILE} cannot be read ({type(error).__name__}: {error}); {rerun}"
        ) from error
    return model.to(device).eval(), tokenizer, metadata
