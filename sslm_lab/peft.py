"""Parameter-efficient fine-tuning: freeze the pretrained body, train a few new weights.

    LoRALinear, apply_lora   W x + (alpha / r) · B A x, with A (r, in) and B (out, r) trained
                             and W frozen (Hu et al. 2021); B starts at 0, so training starts
                             from the pretrained model. merge_lora folds B A into W (no extra
                             cost at inference); unmerge_lora takes it out again.
    Adapter, apply_adapters  a bottleneck x + up(GELU(down(x))) after a sublayer's output
                             projection (Houlsby et al. 2019); up starts at 0: the identity.
    PrefixAttention,         learned keys and values, `length` per layer, that every query
    apply_prefix_tuning      may attend to (Li & Liang 2021), fed through the attention's
                             own cache (`sslm_lab.transformer.LayerCache`)
    parameter_counts         trainable vs total parameters
    prepare                  one call per method name: "full", "probe", "lora", "adapters",
                             "prefix"

Each `apply_*` replaces modules in place, found by name: a target "query" matches every
linear layer whose name is "query" or ends in ".query" (as the `peft` library matches
`target_modules`). Everything else is frozen except what `also_train` names (glob
patterns, e.g. "head.*" for a new task head). The wrapped layer keeps its weights as
`.base`, so `transformer.blocks.0.attention.query.weight` becomes `...query.base.weight`.
Every argument is checked before the model is touched: a refused call changes nothing.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab.checks import check_choice, check_int, check_real, check_type, invalid
from sslm_lab.finetune import matching_parameters, unfreeze
from sslm_lab.kernels import Dropout
from sslm_lab.transformer import LayerCache, MultiHeadAttention

METHODS = ("full", "probe", "lora", "adapters", "prefix")


def find_modules(model: nn.Module, targets: Sequence[str], kind: type) -> list[str]:
    """Names of the `kind` submodules named by a target (the name or its last parts).

    A target that matches nothing is an error that lists the `kind` modules that exist
    (layer numbers as '*').
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    check_type("kind", kind, type, "a module class, e.g. torch.nn.Linear")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list | tuple) or not targets:
        raise invalid("target_modules", targets, "a module name or a non-empty list of them")
    names = [name for name, module in model.named_modules() if isinstance(module, kind)]
    found: set[str] = set()
    for i, target in enumerate(targets):
        if not isinstance(target, str):
            raise invalid(f"target_modules[{i}]", target, "a module name (a string), e.g. 'query'")
        hits = {name for name in names if name == target or name.endswith("." + target)}
        if not hits:
            existing = sorted({re.sub(r"\.\d+\.", ".*.", name) for name in names})
            raise invalid(
                "target_modules",
                target,
                f"a name among the {kind.__name__} modules: " + ", ".join(existing),
            )
        found |= hits
    return [name for name in names if name in found]  # in the model's order


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def _also_train(model: nn.Module, also_train: Sequence[str]) -> list[str]:
    """The parameters `also_train` names (an empty list: none); checks, changes nothing."""
    if not isinstance(also_train, str | list | tuple):
        allowed = "a glob pattern over the parameter names, or a list of them (empty: none)"
        raise invalid("also_train", also_train, allowed, "e.g. ['head.*']")
    if not also_train:
        return []
    return matching_parameters(model, also_train, argument="also_train")


def _freeze_except(model: nn.Module, trained: list[str]) -> None:
    """Freeze every parameter of `model` but those named in `trained` (`_also_train`)."""
    keep = set(trained)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in keep)


def _check_dropout(dropout: float) -> float:
    return check_real("dropout", dropout, low=0, high=1, high_open=True)


# ---------------------------------------------------------------------------- LoRA


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trained low-rank update: W x + b + (alpha / r) · B A x.

    x: (..., in_features) -> (..., out_features). Dropout acts on the input of A only, as
    in the `peft` library. A is initialised like a linear layer (Kaiming uniform), B to 0.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        check_type("base", base, nn.Linear, "a torch.nn.Linear: LoRA updates a weight matrix")
        self.rank = check_int("rank", rank, low=1)
        self.alpha = check_real("alpha", alpha, low=0, low_open=True)
        dropout = _check_dropout(dropout)
        self.base = base
        self.scaling = self.alpha / self.rank
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)  # (rank, in)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)  # (out, rank)
        self.lora_dropout = Dropout(dropout)
        self.merged = False
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def delta_weight(self) -> Tensor:
        """(alpha / r) · B A, the (out, in) update to W."""
        return self.scaling * self.lora_B.weight @ self.lora_A.weight

    def forward(self, x: Tensor) -> Tensor:
        output = self.base(x)
        if self.merged:
            return output
        return output + self.scaling * self.lora_B(self.lora_A(self.lora_dropout(x)))

    @torch.no_grad()
    def merge(self) -> None:
        """W <- W + (alpha / r) B A: one matmul again, the same outputs (in eval mode)."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged; unmerge it first")
        self.base.weight.add_(self.delta_weight())
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W <- W - (alpha / r) B A: back to the frozen W and a separate update."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged")
        self.base.weight.sub_(self.delta_weight())
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def apply_lora(
    model: nn.Module,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    target_modules: Sequence[str] = ("query", "value"),
    also_train: Sequence[str] = (),
) -> list[str]:
    """Wrap every targeted nn.Linear in a LoRALinear; freeze all but LoRA and `also_train`.

    The defaults follow Hu et al. 2021 (query and value projections). Returns the names of
    the wrapped modules.
    """
    rank = check_int("rank", rank, low=1)
    alpha = check_real("alpha", alpha, low=0, low_open=True)
    dropout = _check_dropout(dropout)
    names = find_modules(model, target_modules, nn.Linear)
    trained = _also_train(model, also_train)
    _freeze_except(model, trained)  # everything is checked: from here on the model changes
    for name in names:
        replace_module(model, name, LoRALinear(model.get_submodule(name), rank, alpha, dropout))
    return names


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    check_type("model", model, nn.Module, "a torch.nn.Module")
    layers = [module for module in model.modules() if isinstance(module, LoRALinear)]
    if not layers:
        raise ValueError("the model has no LoRA layers: call apply_lora(model, ...) first")
    return layers


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRA update into its frozen weight (`LoRALinear.merge`). A layer merged
    already is an error before any layer changes."""
    layers = lora_layers(model)
    if any(layer.merged for layer in layers):
        raise RuntimeError("a LoRA layer of this model is already merged; unmerge it first")
    for layer in layers:
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every LoRA update out of its weight again (`LoRALinear.unmerge`). A layer not
    merged is an error before any layer changes."""
    layers = lora_layers(model)
    if not all(layer.merged for layer in layers):
        raise RuntimeError("a LoRA layer of this model is not merged")
    for layer in layers:
        layer.unmerge()


# ---------------------------------------------------------------------------- adapters


class Adapter(nn.Module):
    """Bottleneck adapter: x + up(GELU(down(x))), (..., dim) -> (..., dim).

    `up` starts at zero, so a new adapter is the identity and training starts from the
    pretrained model (Houlsby et al. 2019 start near the identity).
    """

    def __init__(self, dim: int, bottleneck: int, dropout: float = 0.0) -> None:
        super().__init__()
        dim = check_int("dim", dim, low=1)
        bottleneck = check_int("bottleneck", bottleneck, low=1)
        dropout = _check_dropout(dropout)
        self.down = nn.Linear(dim, bottleneck)
        self.activation = nn.GELU()
        self.up = nn.Linear(bottleneck, dim)
        self.dropout = Dropout(dropout)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.up(self.activation(self.down(x))))


class AdaptedLinear(nn.Module):
    """A frozen linear layer followed by an adapter: adapter(base(x))."""

    def __init__(self, base: nn.Linear, bottleneck: int, dropout: float = 0.0) -> None:
        super().__init__()
        check_type("base", base, nn.Linear, "a torch.nn.Linear")
        self.base = base
        self.adapter = Adapter(base.out_features, bottleneck, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.adapter(self.base(x))


def apply_adapters(
    model: nn.Module,
    bottleneck: int = 16,
    dropout: float = 0.0,
    target_modules: Sequence[str] = ("attention.output", "feed_forward.down"),
    also_train: Sequence[str] = (),
) -> list[str]:
    """An adapter after each targeted projection: by default after attention and after the
    feed-forward of every block, before the residual sum, as Houlsby et al. place them.
    Freezes all but the adapters and `also_train`; returns the adapted modules' names."""
    bottleneck = check_int("bottleneck", bottleneck, low=1)
    dropout = _check_dropout(dropout)
    names = find_modules(model, target_modules, nn.Linear)
    trained = _also_train(model, also_train)
    _freeze_except(model, trained)  # everything is checked: from here on the model changes
    for name in names:
        replace_module(model, name, AdaptedLinear(model.get_submodule(name), bottleneck, dropout))
    return names


# ---------------------------------------------------------------------------- prefix tuning


class PrefixAttention(nn.Module):
    """A MultiHeadAttention whose queries also see `length` learned keys and values.

    The prefixes, (heads, length, head_dim) each, are put in a fresh `LayerCache` for every
    call, so the attention treats them as positions read before the input: every query
    (in a decoder too: they come first) may attend to them, and the attention mask is
    extended with ones for them. Nothing else in the block changes: the prefix acts only
    through the attention weights and the values it adds.
    """

    def __init__(self, attention: MultiHeadAttention, length: int) -> None:
        super().__init__()
        check_type("attention", attention, MultiHeadAttention, "a MultiHeadAttention")
        self.length = check_int("length", length, low=1)
        self.attention = attention
        shape = (attention.n_head, self.length, attention.head_dim)
        self.prefix_key = nn.Parameter(torch.randn(shape) * 0.02)
        self.prefix_value = nn.Parameter(torch.randn(shape) * 0.02)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        need_weights: bool = False,
        cache: LayerCache | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        if cache is not None:
            raise ValueError(
                "prefix tuning does not take a KVCache: run the whole sequence (generation "
                "with cached keys would need the prefix placed in the cache first)"
            )
        batch = x.size(0)
        prefix = LayerCache()
        prefix.key = self.prefix_key.expand(batch, -1, -1, -1)  # (batch, heads, length, head_dim)
        prefix.value = self.prefix_value.expand(batch, -1, -1, -1)
        if attention_mask is not None:
            ones = attention_mask.new_ones(batch, self.length)
            attention_mask = torch.cat([ones, attention_mask], dim=1)  # (batch, length + seq)
        return self.attention(x, attention_mask, need_weights, prefix, keep)


def apply_prefix_tuning(
    model: nn.Module, length: int = 8, also_train: Sequence[str] = ()
) -> list[str]:
    """Give every attention layer `length` learned key/value prefixes; freeze all but those
    and `also_train`. Returns the names of the attention modules. Applied once: a model
    with prefixes already is refused."""
    length = check_int("length", length, low=1)
    names = find_modules(model, ["attention"], MultiHeadAttention)
    prefixed = [
        name for name, module in model.named_modules() if isinstance(module, PrefixAttention)
    ]
    if prefixed:
        raise invalid(
            f"type(model.{prefixed[0]})",
            PrefixAttention,
            "a MultiHeadAttention: prefix tuning is applied once",
        )
    trained = _also_train(model, also_train)
    _freeze_except(model, trained)  # everything is checked: from here on the model changes
    for name in names:
        replace_module(model, name, PrefixAttention(model.get_submodule(name), length))
    return names


# ---------------------------------------------------------------------------- counts and methods


@dataclass(frozen=True)
class ParameterCounts:
    trainable: int
    total: int

    def __post_init__(self) -> None:
        check_int("ParameterCounts.total", self.total, low=1)
        check_int("ParameterCounts.trainable", self.trainable, low=0, high=self.total)

    @property
    def fraction(self) -> float:
        """trainable / total."""
        return self.trainable / self.total


def parameter_counts(model: nn.Module) -> ParameterCounts:
    """Trainable (requires_grad) and total parameters, a tied parameter counted once."""
    check_type("model", model, nn.Module, "a torch.nn.Module")
    parameters = list(model.parameters())
    if not parameters:
        raise invalid("model", model, "a model with parameters")
    return ParameterCounts(
        trainable=sum(p.numel() for p in parameters if p.requires_grad),
        total=sum(p.numel() for p in parameters),
    )


APPLIERS = {"lora": apply_lora, "adapters": apply_adapters, "prefix": apply_prefix_tuning}


def prepare(
    model: nn.Module, method: str, also_train: Sequence[str] = ("head.*",), **options: Any
) -> ParameterCounts:
    """Make `model` ready to fine-tune with `method`; return what it will train.

    "full" trains everything; "probe" only `also_train` (the head on a frozen body; at
    least one pattern); "lora", "adapters", "prefix" call `apply_lora`, `apply_adapters`,
    `apply_prefix_tuning` with `options` (rank=..., bottleneck=..., length=...), training
    `also_train` too. Everything is checked before the model changes.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    check_choice("method", method, METHODS)
    applier = APPLIERS.get(method)
    keywords = [] if applier is None else inspect.signature(applier).parameters
    known = [name for name in keywords if name not in ("model", "also_train")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        allowed = f"the keywords of {applier.__name__}: {', '.join(known)}" if applier else ""
        allowed = allowed or f"none for method={method!r}"
        raise invalid("options", unknown, allowed)
    if method == "full":
        unfreeze(model, ["*"])
    elif method == "probe":
        trained = _also_train(model, also_train)
        if not trained:
            raise invalid("also_train", also_train, "at least one pattern: a probe trains those")
        _freeze_except(model, trained)
    else:
        applier(model, also_train=also_train, **options)
    return parameter_counts(model)
