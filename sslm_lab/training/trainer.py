"""The training loop: every network a notebook pretrains or fine-tunes trains through it.

(Small loops by hand remain where they are the lesson or a convex fit: one GAN round,
`gan.gan_training_step`, asserted equal to the trainer's two phases in 05; FGM's step,
`finetune.fgm_step`; the full-batch judge classifier of 05 and the LBFGS linear probe.)

The trainer knows nothing about masked LM, GANs or contrastive learning. It knows
*phases*. A phase is one optimizer and the loss it minimizes:

    Phase(name, module, loss_fn, lr=..., schedule=..., ...)

    loss_fn(module, batch, step) -> (loss, metrics)

`module` holds the parameters the phase updates; the trainer hands it back to
`loss_fn` wrapped for DistributedDataParallel (and compiled) when that is on, which is
why the loss receives the module instead of closing over it: gradients are only
averaged across processes when the forward pass goes through the wrapper. `step` is
the number of steps already taken (0 for the first). `metrics` is a dict of scalars
to log beside the loss (may be empty).

Each training step draws `grad_accumulation` micro-batches and runs every phase on
them in order; each phase zeroes its gradients, accumulates them, clips, and steps
its own optimizer and learning-rate schedule. So

- a single objective (causal LM, masked LM, VAE, contrastive, fine-tuning) is one
  phase whose module is the model;
- a GAN is two phases, discriminator then generator, each with its own optimizer and
  schedule: they alternate every step (or the discriminator runs every step and the
  generator every k-th, with `every=k`).

One phase:

    def causal_lm_loss(model, batch, step):
        inputs, targets = batch                                  # (batch, seq) each
        logits = model(inputs)                                   # (batch, seq, vocab)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten()), {}

    trainer = Trainer(model, Phase("lm", model, causal_lm_loss, lr=1e-3), batch_fn,
                      TrainerConfig(max_steps=2000, precision="bf16"))
    history = trainer.fit()

A GAN (the model passed first must contain both networks, so one checkpoint holds both):

    def discriminator_loss(discriminator, real, step):
        with torch.no_grad():
            fake = generator(torch.randn(len(real), latent, device=real.device))
        scores = discriminator(torch.cat([real, fake]))
        labels = torch.cat([torch.ones(len(real), 1), torch.zeros(len(fake), 1)]).to(real)
        return F.binary_cross_entropy_with_logits(scores, labels), {}

    def generator_loss(generator, real, step):
        scores = discriminator(generator(torch.randn(len(real), latent, device=real.device)))
        return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores)), {}

    gan = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    Trainer(gan, [Phase("discriminator", discriminator, discriminator_loss, lr=2e-4),
                  Phase("generator", generator, generator_loss, lr=2e-4)], batch_fn, config)

Data is either an iterable of batches (a DataLoader, a list) or a sampler
`batch_fn(step, generator) -> batch` over tensors already on the device (see
`sslm_lab.training.batches.sample_rows`), so the GPU never waits for the host.
Either way a batch is the *global* batch: under torchrun each process keeps its
1/WORLD_SIZE slice of it.

This file is the loop and what it is configured with, in reading order: `Phase` and
`TrainerConfig`, the optimizer helpers, then `Trainer`, whose `fit` comes right after
its constructor. Around the loop, `callbacks.py` measures speed, stops early, draws
the progress bar and logs to TensorBoard; `checkpoint.py` writes and reads the files
(the trainer's `state_dict`, the weights, the random generators); `hardware.py` picks
the device and precision.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from sslm_lab.checks import check_bool, check_choice, check_int, check_real, invalid
from sslm_lab.eval_mode import evaluating
from sslm_lab.training import dry_run
from sslm_lab.training.batches import BatchFn, BatchStream, count_items, map_tensors, shard_batch
from sslm_lab.training.callbacks import (
    Callback,
    EarlyStopping,
    ProgressBar,
    StepFunction,
    TensorBoard,
    Throughput,
    as_callback,
)
from sslm_lab.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    newest_good_checkpoint,
    remove_leftovers,
    restore_rng_states,
    resume_folder,
    resume_hint,
    rng_states,
    save_checkpoint,
    seed_everything,
    step_folder_name,
)
from sslm_lab.training.hardware import (
    AUTOCAST_DTYPES,
    configure_tf32,
    keep_freed_memory,
    resolve_device,
    resolve_precision,
    setup_distributed,
)

LossFn = Callable[[nn.Module, Any, int], tuple[Tensor, dict[str, Any]]]
SCHEDULES = ("cosine", "linear", "constant")
# The metrics key through which a loss reports how many targets its mean averages over
# (e.g. an MLM batch's masked positions): it weights micro-batches and processes, and is
# not logged.
TARGETS = "targets"
# The layout of `Trainer.state_dict`. 2: callback states under "callbacks" (format 1 had
# early stopping's at the top level).
STATE_FORMAT = 2
FUSED_ADAMW_DEVICES = ("cuda", "cpu", "mps")  # where torch.optim.AdamW(fused=True) runs


@dataclass
class Phase:
    """One optimizer (AdamW), its learning-rate schedule, and the loss it minimizes."""

    name: str
    module: nn.Module  # the parameters this phase updates (those with requires_grad)
    loss_fn: LossFn
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01  # applied to >= 2-D parameters only (matrices, embeddings)
    schedule: str = (
        "cosine"  # linear warmup, then "cosine" or "linear" decay to min_lr, or "constant"
    )
    warmup_steps: int = 0
    min_lr: float = 0.0
    decay_steps: int | None = None  # updates until min_lr; default: all of this phase's updates
    every: int = 1  # run this phase on steps 0, every, 2*every, ...
    # Per-parameter learning rates: a function of the parameter's name in `module` giving a
    # factor (> 0) of lr, e.g. sslm_lab.finetune.layerwise_lr_scale for layer-wise decay.
    # The schedule scales every parameter's rate alike. None: every parameter at lr.
    lr_scale: Callable[[str], float] | None = None

    def __post_init__(self) -> None:
        where = f"Phase({self.name!r})"
        check_real(f"{where}.lr", self.lr, low=0, low_open=True)
        betas = self.betas
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise invalid(f"{where}.betas", betas, "two numbers in [0, 1)")
        for index, beta in enumerate(betas):
            check_real(f"{where}.betas[{index}]", beta, low=0, high=1, high_open=True)
        check_real(f"{where}.eps", self.eps, low=0, low_open=True)
        check_real(f"{where}.weight_decay", self.weight_decay, low=0)
        check_choice(f"{where}.schedule", self.schedule, SCHEDULES)
        check_int(f"{where}.warmup_steps", self.warmup_steps, low=0)
        check_real(f"{where}.min_lr", self.min_lr, low=0, high=self.lr, hint="at most lr")
        check_int(f"{where}.decay_steps", self.decay_steps, low=1, allow_none=True)
        check_int(f"{where}.every", self.every, low=1)
        if not callable(self.loss_fn):
            signature = "a function (module, batch, step) -> (loss, metrics)"
            raise invalid(f"{where}.loss_fn", self.loss_fn, signature)
        if self.lr_scale is not None and not callable(self.lr_scale):
            raise invalid(f"{where}.lr_scale", self.lr_scale, "None or a function name -> factor")


@dataclass
class TrainerConfig:
    """Everything about *how* to train; *what* to train lives in the phases."""

    max_steps: int = 1000
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N", "mps"
    # "fp32", "bf16", "fp16" (fp16 adds loss scaling), or "auto": bf16 where the device
    # multiplies bf16 matrices natively, else fp32 (hardware.resolve_precision; see .precision)
    precision: str = "fp32"
    tf32: bool = True  # fp32 matmuls on TF32 tensor cores (CUDA only)
    grad_accumulation: int = 1  # micro-batches per optimizer step
    # max global gradient norm per phase; None: no clipping (the norm is logged either way)
    grad_clip: float | None = 1.0
    compile: bool = False  # torch.compile each phase's module (slow to start on CPU)
    eval_every: int | None = None  # steps between calls of eval_fn (and at the last step)
    early_stopping_metric: str | None = None  # an eval_fn key, e.g. "val/loss"
    early_stopping_patience: int = 3  # evaluations without improvement before stopping
    early_stopping_mode: str = "min"  # "min" or "max": which direction is better
    checkpoint_dir: str | Path | None = None  # None: no checkpoints
    checkpoint_every: int | None = None  # steps between checkpoints (always one at the end)
    keep_last_n: int | None = 3  # older checkpoints are deleted; None keeps all
    resume: str | Path | None = None  # "latest" (in checkpoint_dir) or a checkpoint folder
    seed: int = 0
    skip_nonfinite: bool = False  # skip (and count) steps with a NaN/inf loss instead of stopping
    progress: bool = True  # tqdm bar and messages (rank 0 only); False: quiet
    tensorboard: bool = False  # also log to TensorBoard, if it is installed
    log_dir: str | Path | None = None  # TensorBoard folder; default checkpoint_dir/tensorboard
    # Callback objects or functions callback(trainer, row), called after every step.
    callbacks: list[Callback | StepFunction] = field(default_factory=list)
    find_unused_parameters: bool = False  # DDP: set if a loss leaves some parameters unused

    def __post_init__(self) -> None:
        for name in ("max_steps", "grad_accumulation", "early_stopping_patience"):
            check_int(f"TrainerConfig.{name}", getattr(self, name), low=1)
        for name in ("eval_every", "checkpoint_every", "keep_last_n"):
            check_int(f"TrainerConfig.{name}", getattr(self, name), low=1, allow_none=True)
        check_int("TrainerConfig.seed", self.seed, low=0)
        clip = self.grad_clip
        check_real("TrainerConfig.grad_clip", clip, low=0, low_open=True, allow_none=True)
        check_choice("TrainerConfig.early_stopping_mode", self.early_stopping_mode, ("min", "max"))
        for name in ("tf32", "compile", "skip_nonfinite", "progress", "tensorboard"):
            check_bool(f"TrainerConfig.{name}", getattr(self, name))
        if self.checkpoint_dir is None:
            if self.checkpoint_every is not None:
                raise ValueError(
                    "TrainerConfig.checkpoint_every needs TrainerConfig.checkpoint_dir"
                )
            if str(self.resume) == "latest":
                raise ValueError("TrainerConfig.resume='latest' needs TrainerConfig.checkpoint_dir")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite and the config did not ask to skip such steps."""


def adamw_param_groups(
    module: nn.Module,
    weight_decay: float,
    lr: float | None = None,
    lr_scale: Callable[[str], float] | None = None,
) -> list[dict[str, Any]]:
    """Split trainable parameters: decay matrices and embeddings, not biases and norm gains.

    Decaying a LayerNorm gain or a bias toward 0 only fights the model (nanoGPT,
    following GPT-2); `named_parameters()` lists a tied weight once, so it is updated once.
    With `lr_scale` (parameter name -> factor) each distinct factor gets its own pair of
    groups at lr * factor, in order of the factor (a group then also has "lr_scale").
    """
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    if lr_scale is None:
        return [
            {"params": [p for _, p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for _, p in trainable if p.dim() < 2], "weight_decay": 0.0},
        ]
    if lr is None:
        raise ValueError("adamw_param_groups: lr_scale needs the peak lr")
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, parameter in trainable:
        factor = lr_scale(name)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 0:
            raise invalid(f"lr_scale({name!r})", factor, "a number > 0")
        decayed = parameter.dim() >= 2
        group = groups.setdefault(
            (float(factor), decayed),
            {
                "params": [],
                "lr": lr * factor,
                "weight_decay": weight_decay if decayed else 0.0,
                "lr_scale": float(factor),
            },
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups, key=lambda key: (key[0], not key[1]))]


def lr_multiplier(
    update: int, *, warmup_steps: int, decay_steps: int, schedule: str, min_ratio: float
) -> float:
    """Learning rate of update number `update` (0-based), as a fraction of the peak.

    Linear warmup over `warmup_steps`, then constant, or from 1 down to `min_ratio` at
    `decay_steps`: along a half cosine (Loshchilov & Hutter, SGDR, 2017) or a straight line
    (BERT's schedule, and `transformers`' default).
    """
    if update < warmup_steps:
        return (update + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (update - warmup_steps) / max(1, decay_steps - warmup_steps))
    shape = 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * shape


def _check_setup(
    config: TrainerConfig, phases: list[Phase], model: nn.Module, has_eval: bool
) -> None:
    """The checks a setting alone cannot make: distinct phase names, every phase training
    parameters that the model (so the checkpoint) holds, and an eval_fn where one is needed.

    requires_grad may still change after a Phase is made, so it is looked at here.
    """
    names = [phase.name for phase in phases]
    if not phases or len(set(names)) != len(names):
        raise invalid("phases", names, "at least one phase, with distinct names")
    in_model = {id(p) for p in model.parameters()}
    for phase in phases:
        trainable = [p for p in phase.module.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(
                f"Phase({phase.name!r}).module has no parameters with requires_grad=True"
            )
        if any(id(p) not in in_model for p in trainable):
            raise ValueError(
                f"Phase({phase.name!r}).module has parameters outside the model given to Trainer, "
                "so they would not be checkpointed; pass a model that contains every phase's "
                "module, e.g. nn.ModuleDict({'generator': G, 'discriminator': D})"
            )
    for name in ("eval_every", "early_stopping_metric"):
        if getattr(config, name) is not None and not has_eval:
            raise ValueError(f"TrainerConfig.{name}: got {getattr(config, name)!r}, but no eval_fn")


def _optimizer_and_schedule(
    phase: Phase, max_steps: int, fused: bool
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """The phase's AdamW and its learning-rate schedule over a run of `max_steps` steps."""
    optimizer = torch.optim.AdamW(
        adamw_param_groups(phase.module, phase.weight_decay, phase.lr, phase.lr_scale),
        lr=phase.lr,
        betas=phase.betas,
        eps=phase.eps,
        # One fused kernel instead of ~10 small ops per parameter, on a CPU too.
        fused=fused,
    )
    schedule = functools.partial(
        lr_multiplier,
        warmup_steps=phase.warmup_steps,
        decay_steps=math.ceil(max_steps / phase.every)
        if phase.decay_steps is None
        else phase.decay_steps,
        schedule=phase.schedule,
        min_ratio=phase.min_lr / phase.lr,
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def target_count(value: Any, phase: str, device: torch.device) -> Tensor:
    """The loss's `TARGETS` as a float64 tensor on `device` (1 when it reports none)."""
    if value is None:
        return torch.ones((), dtype=torch.float64, device=device)
    count = torch.as_tensor(value, dtype=torch.float64, device=device).detach()
    if count.dim() != 0:
        raise invalid(f"Phase({phase!r}) loss's metrics[{TARGETS!r}]", value, "a number of targets")
    return count


def _nonfinite_message(phase: str, value: float, step: int, last_checkpoint: Path | None) -> str:
    """Say where to go back to: the newest checkpoint before `step` that verifies, which is
    not always the last one written (its files may have been damaged since)."""
    if last_checkpoint is None:
        where = "no checkpoint was saved (set checkpoint_dir and checkpoint_every to keep one)"
    else:
        directory = last_checkpoint.parent
        good = newest_good_checkpoint(directory, before_step=step)
        if good is None:
            where = f"no checkpoint in {directory} verifies, so none is safe to resume from"
        else:
            where = (
                f"the last good checkpoint is {good}, the newest that verifies "
                f"(resume with {resume_hint(good)})"
            )
    return (
        f"phase {phase!r}: the loss is {value} at step {step}; training stopped before "
        f"updating the weights. {where}. Try a lower learning rate, check the data, or set "
        "TrainerConfig.skip_nonfinite=True to skip such steps and count them."
    )


@dataclass
class _PhaseState:
    """What the trainer builds for each phase."""

    phase: Phase
    module: nn.Module  # phase.module, possibly compiled and wrapped in DDP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    updates: int = 0


class Trainer:
    """Train `model` by running `phases` on batches from `data` (see the module docstring).

    `eval_fn(step) -> dict of metrics` is called every `eval_every` steps with the
    model in eval mode and gradients off; its results land in that step's history row.
    Under torchrun every process runs it and rank 0's numbers are shared.

    `callbacks` lists the callbacks in the order they run after every step: early
    stopping, then TrainerConfig.callbacks, then the progress bar and TensorBoard.
    They run on every rank (the bar and TensorBoard draw on rank 0 only).
    """

    def __init__(
        self,
        model: nn.Module,
        phases: Phase | Sequence[Phase],
        data: Iterable | BatchFn,
        config: TrainerConfig | None = None,
        eval_fn: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        config = config if config is not None else TrainerConfig()
        self.config = config = dry_run.capped(config)  # as given, unless in a dry run
        self.phases = [phases] if isinstance(phases, Phase) else list(phases)
        _check_setup(config, self.phases, model, eval_fn is not None)
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)  # "auto" decided
        self.dist = setup_distributed(self.device)
        configure_tf32(self.device, config.tf32)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for re-allocating each step's activations
        self.model = model.to(self.device)
        self.eval_fn = eval_fn
        self.stream = BatchStream(data, self.device, config.seed)
        self.history: list[dict[str, float]] = []
        self.step = 0  # optimizer steps completed
        self.skipped_steps = 0
        self.last_checkpoint: Path | None = None
        self.stop_reason: str | None = None
        self.batch_items: list[tuple[str, int, int | None]] = []  # count_items per micro-batch
        self._started = False
        self.throughput = Throughput(self.device, self.precision, config.tf32, self.dist.world_size)
        self._progress = ProgressBar(config.progress and self.dist.is_main)
        self.callbacks = self._build_callbacks()
        wrapped: dict[int, nn.Module] = {}  # phases sharing a module share one wrapper
        self._states = [self._build_phase(phase, wrapped) for phase in self.phases]

    # ----------------------------------------------------------------------- the loop

    def fit(self) -> list[dict[str, float]]:
        """Train until `max_steps` (or early stopping); return the metrics history.

        Calling fit again after raising `config.max_steps` continues the same run.
        """
        config = self.config
        if not self._started:
            self._started = True
            if not self._resume():
                seed_everything(config.seed + self.dist.rank)
        self.model.train()
        try:
            for callback in self.callbacks:
                callback.on_fit_start(self)
            while self.step < config.max_steps and self.stop_reason is None:
                row = self._train_step()
                # the step's speed, measured before any evaluation adds to the time
                self.throughput.measure(row, self.batch_items, self.model)
                if config.eval_every and (
                    self.step % config.eval_every == 0 or self.step == config.max_steps
                ):
                    metrics = self.evaluate()
                    row.update(metrics)
                    for callback in self.callbacks:
                        callback.on_evaluate(self, metrics)
                for callback in self.callbacks:
                    callback.on_step_end(self, row)
                self.history.append(row)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
            if config.checkpoint_dir is not None and self.last_checkpoint != self._folder():
                self.save_checkpoint()
        finally:
            for callback in self.callbacks:
                callback.on_fit_end(self)
        if self.stop_reason is not None:
            self._progress.write(self.stop_reason)
        return self.history

    def _train_step(self) -> dict[str, float]:
        """Every phase due at this step, on the same micro-batches; returns the step's row."""
        started = time.perf_counter()
        step = self.step
        batches = [self.stream.next(step) for _ in range(self.config.grad_accumulation)]
        self.batch_items = [count_items(batch) for batch in batches]  # of the global batch
        if self.dist.enabled:
            batches = [shard_batch(b, self.dist.rank, self.dist.world_size) for b in batches]
        batches = [
            map_tensors(batch, lambda t: t.to(self.device, non_blocking=True)) for batch in batches
        ]
        row: dict[str, float] = {"step": step + 1}
        with dry_run.measured_step(self, batches):  # a dry run measures the first step
            for state in self._states:
                if step % state.phase.every == 0:
                    row.update(self._train_phase(state, batches, step))
        self.step += 1
        row["step_ms"] = 1000 * (time.perf_counter() - started)
        return row

    def _train_phase(self, state: _PhaseState, batches: list[Any], step: int) -> dict[str, float]:
        """Forward and backward over the micro-batches, then one optimizer step.

        With one micro-batch in one process, the gradient is that of the loss. With several
        micro-batches, or processes, the step stands in for one large batch, whose loss is
        the mean over all its targets: each micro-batch's mean loss counts in proportion to
        the targets it averages (`TARGETS`, when the loss reports them; else once each).
        """
        phase, optimizer, scaler = state.phase, state.optimizer, state.scaler
        optimizer.zero_grad(set_to_none=True)  # also clears gradients other phases left here
        weighted = len(batches) > 1 or self.dist.enabled
        # Sums in float64: 1 / (the step's targets) scales every gradient, and must not round.
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        count_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        metric_sums: dict[str, Tensor] = {}
        for index, batch in enumerate(batches):
            # Under DDP only the last micro-batch's backward averages gradients across ranks.
            last = index == len(batches) - 1
            sync = nullcontext() if last or not self.dist.enabled else state.module.no_sync()
            with sync:
                with self._autocast():
                    loss, metrics = phase.loss_fn(state.module, batch, step)
                metrics = dict(metrics)  # the loss's own dict stays as it returned it
                count = target_count(metrics.pop(TARGETS, None), phase.name, self.device)
                count = count if weighted else torch.ones((), dtype=count.dtype, device=self.device)
                # the sum over this micro-batch's targets; divided by the step's count below
                scaler.scale(loss * count if weighted else loss).backward()
            loss_sum += loss.detach().double() * count
            count_sum += count
            for key, value in metrics.items():
                value = torch.as_tensor(value, dtype=torch.float64, device=self.device).detach()
                metric_sums[key] = metric_sums.get(key, 0) + value * count
        # Summed over processes, then divided by the step's targets: one collective, one sync.
        sums = torch.stack([loss_sum, *metric_sums.values(), count_sum])
        if self.dist.enabled:
            dist.all_reduce(sums)
        scaler.unscale_(optimizer)  # clip true gradients, not scaled ones (no-op unless fp16)
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if weighted:  # DDP averaged the summed gradients over ranks: times ranks / targets
            factor = self.dist.world_size / sums[-1]
            for parameter in parameters:
                if parameter.grad is not None:
                    parameter.grad.mul_(factor)
        if self.config.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
        else:  # not clipped, but worth watching all the same
            norm = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
        numbers = torch.cat([sums[:-1] / sums[-1], norm.double().reshape(1)]).tolist()
        name = phase.name
        # The phase's own rate (lr times the schedule), whatever lr_scale gives each group
        lr_now = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_scale", 1.0)
        row = {f"{name}/loss": numbers[0], f"{name}/lr": lr_now}
        row.update({f"{name}/{key}": v for key, v in zip(metric_sums, numbers[1:], strict=False)})
        row[f"{name}/grad_norm"] = numbers[-1]  # before clipping
        if not math.isfinite(numbers[0]):
            if not self.config.skip_nonfinite:
                raise NonFiniteLossError(
                    _nonfinite_message(name, numbers[0], step + 1, self.last_checkpoint)
                )
            self.skipped_steps += 1
            row[f"{name}/skipped"] = 1.0
            optimizer.zero_grad(set_to_none=True)
            scaler.update()  # resets the scaler for the next step (and lowers the fp16 scale)
            return row
        scale = scaler.get_scale() if scaler.is_enabled() else None
        scaler.step(optimizer)  # skips the update if fp16 gradients overflowed...
        scaler.update()  # ...and then halves the scale
        if scale is not None and scaler.get_scale() < scale:
            row[f"{name}/overflow"] = 1.0  # no update happened, so the schedule waits too
            return row
        state.scheduler.step()
        state.updates += 1
        return row

    def _autocast(self) -> Any:
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    # -------------------------------------------------------------------- evaluation

    def evaluate(self) -> dict[str, float]:
        """Run eval_fn now, in eval mode, without gradients; return its metrics as floats."""
        if self.eval_fn is None:
            raise ValueError("Trainer.evaluate needs an eval_fn; pass eval_fn= to Trainer")
        with evaluating(self.model), self._autocast():
            metrics = self.eval_fn(self.step)
        metrics = {key: float(value) for key, value in metrics.items()}
        if self.dist.enabled:
            # GPUs may differ in the last bits; every rank must take the same early-stopping
            # decision, or the ones that stop would leave the others waiting forever.
            shared = [metrics]
            dist.broadcast_object_list(shared, src=0)
            metrics = shared[0]
        return metrics

    def summary(self, skip_first: int = 1) -> dict[str, Any]:
        """Speed over this process's steps, leaving out the first (compile, warm-up)."""
        return self.throughput.summary(self.history, self.step, self.skipped_steps, skip_first)

    @property
    def max_steps(self) -> int:
        return self.config.max_steps

    @property
    def phase_names(self) -> list[str]:
        return [phase.name for phase in self.phases]

    # ------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the weights and the random generators that a resumed trainer
        needs to go on exactly: each phase's optimizer, schedule, loss scale and update
        count, the step, the data position, the history and the callbacks' states. Plain
        values and tensors only, so a checkpoint loads with `torch.load(weights_only=True)`."""
        return {
            "format": STATE_FORMAT,
            "step": self.step,
            "phases": {
                s.phase.name: {
                    "optimizer": s.optimizer.state_dict(),
                    "scheduler": s.scheduler.state_dict(),
                    "scaler": s.scaler.state_dict(),
                    "updates": s.updates,
                }
                for s in self._states
            },
            "data": self.stream.state_dict(),
            "history": self.history,
            "skipped_steps": self.skipped_steps,
            "callbacks": {c.state_key: c.state_dict() for c in self.callbacks if c.state_key},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what `state_dict` returned. A state of a newer format or of other phases
        is refused (ValueError) before anything changes; so is an optimizer state that does
        not fit its phase's parameters."""
        if state.get("format", 1) > STATE_FORMAT:
            raise ValueError(
                f"state format {state['format']} is newer than this sslm_lab understands "
                f"({STATE_FORMAT}); update sslm_lab to resume from it"
            )
        saved, ours = sorted(state["phases"]), sorted(self.phase_names)
        if saved != ours:
            raise ValueError(f"holds phases {saved}, but this trainer has {ours}")
        for phase_state in self._states:
            saved_phase = state["phases"][phase_state.phase.name]
            try:
                phase_state.optimizer.load_state_dict(saved_phase["optimizer"])
            except ValueError as error:
                raise ValueError(f"optimizer state does not fit ({error})") from error
            phase_state.scheduler.load_state_dict(saved_phase["scheduler"])
            if saved_phase["scaler"] and phase_state.scaler.is_enabled():
                phase_state.scaler.load_state_dict(saved_phase["scaler"])
            phase_state.updates = saved_phase["updates"]
        self.step = state["step"]
        self.stream.load_state_dict(state["data"])
        self.history = list(state["history"])
        self.skipped_steps = state["skipped_steps"]
        # Format 1 kept early stopping's state at the top level, the only callback state then.
        callbacks = state.get("callbacks") or {"early_stopping": state.get("early_stopping")}
        for callback in self.callbacks:
            if callback.state_key is not None and callbacks.get(callback.state_key) is not None:
                callback.load_state_dict(callbacks[callback.state_key])

    # ------------------------------------------------------------------- checkpoints

    def _folder(self) -> Path | None:
        if self.config.checkpoint_dir is None:
            return None
        return Path(self.config.checkpoint_dir) / step_folder_name(self.step)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step (rank 0 writes; every rank must call)."""
        folder = self._folder()
        if folder is None:
            raise ValueError("Trainer.save_checkpoint needs TrainerConfig.checkpoint_dir")
        state = {**self.state_dict(), "rng": rng_states(self.dist.world_size)}
        if self.dist.is_main:
            config = self.config
            save_checkpoint(config.checkpoint_dir, self.step, self.model, state, config.keep_last_n)
        if self.dist.enabled:
            dist.barrier()  # nobody moves on until the checkpoint exists
        self.last_checkpoint = folder
        return folder

    def _resume(self) -> bool:
        """Load the checkpoint `config.resume` names, if any; True if training resumed."""
        if self.config.resume is None:
            return False
        folder = resume_folder(self.config.resume, self.config.checkpoint_dir)
        if folder is None:
            directory = self.config.checkpoint_dir
            self._progress.write(f"no checkpoint in {directory} yet: starting at step 0")
            return False
        state = load_checkpoint(folder, self.model)
        try:
            self.load_state_dict(state)
        except ValueError as error:
            raise CheckpointError(f"{folder}: {error}") from error
        rank = self.dist.rank
        reseed = self.config.seed + rank + self.step
        restore_rng_states(state["rng"], rank, self.dist.world_size, reseed, folder)
        self.last_checkpoint = folder
        self._progress.write(f"resumed from {folder} at step {self.step}")
        if self.dist.is_main and self.config.checkpoint_dir is not None:
            # Only once the checkpoint has loaded: a refused resume changes nothing on disk.
            removed = remove_leftovers(self.config.checkpoint_dir, keep=folder)
            if removed:
                names = ", ".join(path.name for path in removed)
                self._progress.write(f"removed what interrupted saves left behind: {names}")
        return True

    # ------------------------------------------------------------------------- setup

    def _build_callbacks(self) -> list[Callback]:
        """Early stopping first, so that your callbacks see its decision; reporting last."""
        config, callbacks = self.config, []
        metric = config.early_stopping_metric
        if metric is not None:
            patience, mode = config.early_stopping_patience, config.early_stopping_mode
            callbacks.append(EarlyStopping(metric, patience, mode))
        callbacks += [as_callback(callback) for callback in config.callbacks]
        callbacks.append(self._progress)
        if config.tensorboard and self.dist.is_main:
            log_dir = config.log_dir or Path(config.checkpoint_dir or "runs") / "tensorboard"
            callbacks.append(TensorBoard(log_dir))
        return callbacks

    def _build_phase(self, phase: Phase, wrapped: dict[int, nn.Module]) -> _PhaseState:
        """The phase's module as the loss sees it (compiled, DDP), optimizer and schedule."""
        config = self.config
        if id(phase.module) not in wrapped:
            module = phase.module
            if config.compile:
                module.compile()  # in place: parameter names (and checkpoints) stay the same
            if self.dist.enabled:
                device_ids = [self.device.index] if self.device.type == "cuda" else None
                module = DistributedDataParallel(
                    module,
                    device_ids=device_ids,
                    find_unused_parameters=config.find_unused_parameters,
                )
            wrapped[id(phase.module)] = module
        fused = self.device.type in FUSED_ADAMW_DEVICES
        optimizer, scheduler = _optimizer_and_schedule(phase, config.max_steps, fused)
        return _PhaseState(
            phase=phase,
            module=wrapped[id(phase.module)],
            optimizer=optimizer,
            scheduler=scheduler,
            # fp16 overflows above 65504: scale the loss up, and gradients back down.
            scaler=torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16"),
        )
