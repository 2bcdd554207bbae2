"""Fine-tuning a pretrained encoder on a labelled task.

A pretrained body (`sslm_lab.transformer.Transformer`) gets a task head and is trained
on few labels. What this file offers, in the order a fine-tuning run uses it:

    with_head              a pretrained body + a new head: one label per sequence
                           (`SequenceClassifier`, [CLS] or mean pooling)
                           or one label per token (`TokenClassifier`, tagging in the NER
                           mould), both from `sslm_lab.heads`
    few_shot_indices       k labelled examples per class, seeded; the same seed gives nested
                           budgets (the 8 are among the 32), so a learning curve adds labels
    freeze, unfreeze       requires_grad by parameter-name pattern ("transformer.*")
    frozen_features,       a linear probe: the body's pooled features, computed once with
    fit_linear_probe       the body frozen, and a logistic regression on them
    layerwise_lr_groups    layer-wise learning-rate decay (Howard & Ruder 2018; ELECTRA):
                           optimizer parameter groups, lower layers at smaller rates
    fgm_perturbation,      adversarial training on the embeddings (FGM, Miyato et al. 2017):
    fgm_step               one more forward and backward at the embeddings moved by
                           epsilon · g / ||g|| along their own gradient

The parameter-efficient methods (LoRA, adapters, prefix tuning) are in `sslm_lab.peft`.
"""

from __future__ import annotations

import fnmatch
import numbers
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_real,
    check_tensor,
    check_type,
    invalid,
)
from sslm_lab.eval_mode import evaluating
from sslm_lab.heads import Pooling, SequenceClassifier, TokenClassifier, pool
from sslm_lab.transformer import Transformer, TransformerModel

Task = Literal["sequence", "token"]
TASKS = ("sequence", "token")


def with_head(
    body: Transformer, task: Task, num_labels: int, pooling: Pooling = "cls"
) -> SequenceClassifier | TokenClassifier:
    """A classifier whose body *is* `body` (shared, not copied) and whose head is new.

    task "sequence": `SequenceClassifier`, logits (batch, num_labels), pooled by `pooling`;
    task "token": `TokenClassifier`, logits (batch, seq, num_labels). Fine-tuning changes
    `body`: pass `copy.deepcopy(body)` to keep the pretrained one.
    """
    check_choice("task", task, TASKS)
    check_type("body", body, Transformer, "a sslm_lab.transformer.Transformer")
    if task == "sequence":
        model: SequenceClassifier | TokenClassifier = SequenceClassifier(
            body.config, num_labels, pooling
        )
    else:
        model = TokenClassifier(body.config, num_labels)
    model.transformer = body
    return model


# ---------------------------------------------------------------------------- few-shot budgets


def _class_ids(labels: Any, num_classes: int | None) -> list[int]:
    """`labels` as a list of class ids: a list, or a 1-D tensor or array, of integers >= 0
    (each below num_classes, when given); at least one."""
    below = "" if num_classes is None else f", each < num_classes={num_classes}"
    if isinstance(labels, Tensor | np.ndarray):
        if labels.ndim != 1:
            raise invalid("labels.shape", tuple(labels.shape), "(n,): one class id per example")
        labels = labels.tolist()
    if not isinstance(labels, list | tuple) or not labels:
        allowed = f"class ids >= 0{below}: a non-empty list, or a 1-D tensor or array"
        raise invalid("labels", labels, allowed)
    for i, label in enumerate(labels):
        integral = isinstance(label, numbers.Integral) and not isinstance(label, bool)
        if not integral or label < 0 or (num_classes is not None and label >= num_classes):
            raise invalid(f"labels[{i}]", label, "an integer class id >= 0" + below)
    return [int(label) for label in labels]


def few_shot_indices(
    labels: Sequence[int] | Tensor, k: int | None, seed: int, num_classes: int | None = None
) -> list[int]:
    """Indices of k examples of each class, drawn without replacement; sorted.

    labels: one class id >= 0 per example, (n,). k=None takes every example. Each class is
    shuffled once by `seed` and its first k taken, so with one seed the budgets are nested:
    the 8 per class are among the 32. Every class gives exactly k: a class with fewer is an
    error, not a short draw. num_classes, if given, makes a label >= num_classes an error,
    and a class with no example at all.
    """
    k = check_int("k", k, low=1, allow_none=True)
    seed = check_int("seed", seed, low=0)
    num_classes = check_int("num_classes", num_classes, low=1, allow_none=True)
    labels = _class_ids(labels, num_classes)
    classes = sorted(set(labels)) if num_classes is None else list(range(num_classes))
    by_class = {c: [i for i, label in enumerate(labels) if label == c] for c in classes}
    smallest = min(by_class, key=lambda c: len(by_class[c]))  # the first of the smallest
    has = len(by_class[smallest])
    if has < (k or 1):  # k=None needs one example of each class
        allowed = (
            f"k <= {has} (the smallest class)"
            if has
            else f"labels with an example of every class in range(num_classes={num_classes})"
        )
        raise ArgumentError(
            f"k={k} is more than class {smallest} has: it has {has} examples; allowed: {allowed}"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for members in by_class.values():
        order = torch.randperm(len(members), generator=generator).tolist()
        chosen += [members[i] for i in order[:k]]
    return sorted(chosen)


# ---------------------------------------------------------------------------- freezing


def _pattern_of(name: str) -> str:
    """A parameter name with its layer numbers as '*': the shape of the names that exist."""
    return re.sub(r"\.\d+\.", ".*.", name)


def _check_patterns(patterns: Any, argument: str) -> list[str]:
    """A glob pattern or a non-empty list of them, as a list."""
    if isinstance(patterns, str):
        return [patterns]
    allowed = "a glob pattern over the parameter names, or a non-empty list of them"
    if not isinstance(patterns, list | tuple) or not patterns:
        raise invalid(argument, patterns, allowed, "e.g. ['head.*']")
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise invalid(f"{argument}[{i}]", pattern, "a glob pattern (a string)")
    return list(patterns)


def matching_parameters(
    model: nn.Module, patterns: Sequence[str], *, argument: str = "patterns"
) -> list[str]:
    """Names of the parameters that match any of the glob `patterns` ("transformer.blocks.0.*").

    A pattern that matches nothing is an error that lists the names that exist (layer
    numbers written as '*'), so a typo does not silently train or freeze the wrong thing;
    so is an empty list. argument: the caller's name for the patterns, for the message.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    patterns = _check_patterns(patterns, argument)
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            existing = sorted({_pattern_of(name) for name in names})
            raise invalid(
                "pattern" if argument == "patterns" else f"{argument} pattern",
                pattern,
                "a glob over the parameter names: " + ", ".join(existing),
            )
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def _set_trainable(model: nn.Module, patterns: Sequence[str], trainable: bool) -> list[str]:
    names = matching_parameters(model, patterns)  # every pattern checked before any change
    parameters = dict(model.named_parameters())
    for name in names:
        parameters[name].requires_grad_(trainable)
    return names


def freeze(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """requires_grad=False for every parameter matching a pattern; returns their names.

    Each pattern must match something (`matching_parameters`): "*" freezes everything."""
    return _set_trainable(model, patterns, False)


def unfreeze(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """requires_grad=True for every parameter matching a pattern; returns their names."""
    return _set_trainable(model, patterns, True)


# ---------------------------------------------------------------------------- linear probe


def _refuse_first(name: str, tensor: Tensor, bad: Tensor, allowed: str) -> None:
    """Refuse the first element where `bad` holds, by its index and value."""
    if bad.any():
        where = tuple(bad.nonzero()[0].tolist())
        raise invalid(f"{name}[{', '.join(map(str, where))}]", tensor[where].item(), allowed)


def _check_ids(model: TransformerModel, input_ids: Any, attention_mask: Any) -> None:
    """Token ids the body can read, (n, seq) or (n, chunks, seq), and a mask of that shape."""
    config, device = model.config, next(model.parameters()).device
    check_tensor("input_ids", input_ids, dtype="integer", shape="(n, seq) or (n, chunks, seq)")
    shape = tuple(input_ids.shape)
    if input_ids.dim() not in (2, 3) or input_ids.numel() == 0:
        raise invalid("input_ids.shape", shape, "(n, seq) or (n, chunks, seq), none of them 0")
    if shape[-1] > config.block_size:
        raise invalid("input_ids.shape", shape, f"seq <= block_size={config.block_size}")
    if input_ids.device != device:
        raise invalid("input_ids.device", input_ids.device, f"the model's device, {device}")
    outside = (input_ids < 0) | (input_ids >= config.vocab_size)
    _refuse_first("input_ids", input_ids, outside, f"an id in [0, {config.vocab_size}), the vocab")
    if attention_mask is not None:
        check_type("attention_mask", attention_mask, Tensor, "None or a torch.Tensor")
        if attention_mask.shape != input_ids.shape:
            allowed = f"input_ids' shape {shape}"
            raise invalid("attention_mask.shape", tuple(attention_mask.shape), allowed)


def frozen_features(
    model: TransformerModel,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    pooling: Pooling = "mean",
    batch_size: int = 64,
) -> Tensor:
    """The body's pooled hidden states (n, n_embd), in eval mode, without gradients.

    input_ids: (n, seq), or (n, chunks, seq) for texts longer than the block: then each
    chunk is pooled on its own and the chunks' features averaged, as `SequenceClassifier`
    reads chunks. Run once; a probe then trains on these numbers alone. The ids are
    checked against the vocabulary here, in one pass, as the data enter.
    """
    check_type("model", model, TransformerModel, "an sslm_lab Transformer model")
    check_choice("pooling", pooling, ("cls", "mean"))
    check_int("batch_size", batch_size, low=1)
    _check_ids(model, input_ids, attention_mask)
    n, seq = len(input_ids), input_ids.size(-1)
    ids = input_ids.reshape(-1, seq)  # (n * chunks, seq); chunks = 1 for (n, seq)
    masks = None if attention_mask is None else attention_mask.reshape(-1, seq)
    features = []
    with evaluating(model):
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            mask = None if masks is None else masks[start : start + batch_size]
            features.append(pool(model.hidden_states(batch, mask), mask, pooling))
    return torch.cat(features).view(n, -1, model.config.n_embd).mean(dim=1)


def fit_linear_probe(
    features: Tensor,
    labels: Tensor,
    num_labels: int,
    weight_decay: float = 1e-3,
    max_iter: int = 200,
) -> nn.Linear:
    """Multinomial logistic regression on frozen features, by L-BFGS: a linear layer.

    features: (n, dim), finite; labels: (n,), class ids in [0, num_labels), on the
    features' device. Minimises mean cross-entropy + weight_decay/2 · ||W||² (a convex
    problem, so the result does not depend on a seed: the layer starts at 0).
    """
    check_int("num_labels", num_labels, low=1)
    check_real("weight_decay", weight_decay, low=0)
    check_int("max_iter", max_iter, low=1)
    check_tensor("features", features, dtype="float", shape="(n, dim)")
    check_tensor("labels", labels, dtype="integer", shape="(n,)")
    if features.dim() != 2 or labels.shape != features.shape[:1] or len(labels) == 0:
        raise invalid(
            "features.shape, labels.shape",
            (tuple(features.shape), tuple(labels.shape)),
            "(n, dim) and (n,), n >= 1",
        )
    if labels.device != features.device:
        raise invalid("labels.device", labels.device, f"the features' device, {features.device}")
    outside = (labels < 0) | (labels >= num_labels)
    _refuse_first("labels", labels, outside, f"a class id in [0, num_labels={num_labels})")
    _refuse_first("features", features, ~torch.isfinite(features), "a finite number")
    features, labels = features.detach().float(), labels.long()
    probe = nn.Linear(features.size(1), num_labels).to(features.device)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    optimizer = torch.optim.LBFGS(
        probe.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(features), labels)
        loss = loss + weight_decay / 2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe.requires_grad_(False)


# ---------------------------------------------------------------------------- layer-wise LR decay


def layer_depth(name: str, n_layer: int) -> int:
    """Where a parameter sits: 0 embeddings, i + 1 block i, n_layer + 1 the top (head, final norm)."""
    check_type("name", name, str, "a parameter name (a string)")
    n_layer = check_int("n_layer", n_layer, low=1)
    found = re.search(r"(?:^|\.)blocks\.(\d+)\.", name)
    if found:
        return int(found.group(1)) + 1
    if re.search(
        r"(?:^|\.)(token_embedding|position_embedding|token_type_embedding|embedding_norm)\.", name
    ):
        return 0
    return n_layer + 1


def layerwise_lr_scale(n_layer: int, decay: float) -> Callable[[str], float]:
    """Layer-wise learning-rate decay as a factor of the peak rate, by parameter name.

    The top (head, final norm) trains at factor 1, block i at decay^(n_layer - i), the
    embeddings at decay^(n_layer + 1): lower layers hold the most general features and
    move least (Howard & Ruder 2018; Clark et al. 2020 use decay 0.8). decay=1 is plain
    fine-tuning. The form `Phase(lr_scale=...)` takes, so the trainer's schedule applies:

        Phase("finetune", model, loss_fn, lr=1e-4, lr_scale=layerwise_lr_scale(4, 0.8))
    """
    n_layer = check_int("n_layer", n_layer, low=1)
    decay = check_real("decay", decay, low=0, high=1, low_open=True)

    def scale(name: str) -> float:
        return decay ** (n_layer + 1 - layer_depth(name, n_layer))

    return scale


def layerwise_lr_groups(
    model: TransformerModel, lr: float, decay: float, weight_decay: float = 0.01
) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise learning-rate decay (`layerwise_lr_scale`).

    For an optimizer of your own; as in `sslm_lab.training`, only >= 2-D parameters are
    weight-decayed and frozen parameters are left out. Each group carries "depth" besides
    the optimizer's keys:

        torch.optim.AdamW(layerwise_lr_groups(model, lr=1e-4, decay=0.8))
    """
    check_type("model", model, TransformerModel, "an sslm_lab Transformer model")
    lr = check_real("lr", lr, low=0, low_open=True)
    weight_decay = check_real("weight_decay", weight_decay, low=0)
    n_layer = model.config.n_layer
    scale = layerwise_lr_scale(n_layer, decay)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        depth = layer_depth(name, n_layer)
        decayed = parameter.dim() >= 2
        group = groups.setdefault(
            (depth, decayed),
            {
                "params": [],
                "lr": lr * scale(name),
                "weight_decay": weight_decay if decayed else 0.0,
                "depth": depth,
            },
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


# ---------------------------------------------------------------------------- FGM


@contextmanager
def fgm_perturbation(embedding: nn.Embedding, epsilon: float) -> Iterator[Tensor]:
    """Move the embedding weights by r = epsilon · g / ||g|| for the block, then restore them.

    g is `embedding.weight.grad`, so call this after the clean loss's backward. r is the
    fast gradient method's adversarial step (Miyato et al. 2017): the direction in which the
    loss rises fastest, at L2 length epsilon. The weights are restored exactly (from a copy)
    even if the block raises. Yields r (vocab, n_embd).
    """
    check_type("embedding", embedding, nn.Embedding, "a torch.nn.Embedding")
    epsilon = check_real("epsilon", epsilon, low=0, low_open=True)
    gradient = embedding.weight.grad
    if gradient is None:
        raise ValueError(
            "fgm_perturbation needs embedding.weight.grad: run the clean loss's backward() "
            "first (and keep the embedding trainable)"
        )
    norm = gradient.norm()
    perturbation = torch.zeros_like(gradient) if norm == 0 else epsilon * gradient / norm
    saved = embedding.weight.detach().clone()
    with torch.no_grad():
        embedding.weight.add_(perturbation)
    try:
        yield perturbation
    finally:
        with torch.no_grad():
            embedding.weight.copy_(saved)


def fgm_step(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batch: Any,
    optimizer: torch.optim.Optimizer,
    embedding: nn.Embedding,
    epsilon: float = 1.0,
) -> tuple[float, float]:
    """One optimizer step on the clean loss plus the loss at FGM-perturbed embeddings.

    loss_fn(model, batch) -> scalar loss. The gradients of both losses are summed, then
    the weights (restored) are updated. Returns (clean loss, adversarial loss).
    `embedding` must be one of the model's modules, and trainable.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    if not callable(loss_fn):
        raise invalid("loss_fn", loss_fn, "a function loss_fn(model, batch) -> scalar loss")
    check_type("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    check_type("embedding", embedding, nn.Embedding, "a torch.nn.Embedding")
    check_real("epsilon", epsilon, low=0, low_open=True)
    if not any(module is embedding for module in model.modules()):
        raise invalid(
            "embedding", embedding, "one of the model's modules, e.g. its token_embedding"
        )
    if not embedding.weight.requires_grad:
        raise invalid(
            "embedding.weight.requires_grad", False, "True: FGM moves it along its gradient"
        )
    optimizer.zero_grad(set_to_none=True)
    clean = loss_fn(model, batch)
    clean.backward()
    with fgm_perturbation(embedding, epsilon):
        adversarial = loss_fn(model, batch)
        adversarial.backward()
    optimizer.step()
    return float(clean.detach()), float(adversarial.detach())
