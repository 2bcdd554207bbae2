"""The one training loop every notebook uses, for every objective.

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
`sslm_lab.training.batches.sample_rows`), so the GPU never waits for the host. Either way a batch is the
*global* batch: under torchrun each process keeps its 1/WORLD_SIZE slice of it.
"""

from __future__ import annotations

import functools
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from sslm_lab.training.batches import BatchFn, BatchStream, count_items, map_tensors, shard_batch
from sslm_lab.training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    step_folder_name,
)
from sslm_lab.training.hardware import (
    AUTOCAST_DTYPES,
    check_precision,
    configure_tf32,
    invalid_setting,
    model_flops_utilization,
    peak_flops,
    resolve_device,
    setup_distributed,
)

LossFn = Callable[[nn.Module, Any, int], tuple[Tensor, dict[str, Any]]]
Callback = Callable[["Trainer", dict[str, float]], None]
SCHEDULES = ("cosine", "constant")
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
    schedule: str = "cosine"  # linear warmup, then "cosine" decay to min_lr, or "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    decay_steps: int | None = None  # updates until min_lr; default: all of this phase's updates
    every: int = 1  # run this phase on steps 0, every, 2*every, ...


@dataclass
class TrainerConfig:
    """Everything about *how* to train; *what* to train lives in the phases."""

    max_steps: int = 1000
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N", "mps"
    precision: str = "fp32"  # "fp32", "bf16" or "fp16" (fp16 adds loss scaling)
    tf32: bool = True  # fp32 matmuls on TF32 tensor cores (CUDA only)
    grad_accumulation: int = 1  # micro-batches per optimizer step
    grad_clip: float | None = 1.0  # max global gradient norm per phase; None: no clipping
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
    callbacks: list[Callback] = field(default_factory=list)  # called after every step
    find_unused_parameters: bool = False  # DDP: set if a loss leaves some parameters unused


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite and the config did not ask to skip such steps."""


def adamw_param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split trainable parameters: decay matrices and embeddings, not biases and norm gains.

    Decaying a LayerNorm gain or a bias toward 0 only fights the model (nanoGPT,
    following GPT-2); `parameters()` lists a tied weight once, so it is updated once.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
    ]


def lr_multiplier(
    update: int, *, warmup_steps: int, decay_steps: int, schedule: str, min_ratio: float
) -> float:
    """Learning rate of update number `update` (0-based), as a fraction of the peak.

    Linear warmup over `warmup_steps`, then either constant or a half cosine from 1
    down to `min_ratio` at `decay_steps` (Loshchilov & Hutter, SGDR, 2017).
    """
    if update < warmup_steps:
        return (update + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (update - warmup_steps) / max(1, decay_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _PhaseState:
    """What the trainer builds for each phase."""

    phase: Phase
    module: nn.Module  # phase.module, possibly compiled and wrapped in DDP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    updates: int = 0


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _require(ok: bool, setting: str, value: Any, allowed: str) -> None:
    if not ok:
        raise invalid_setting(setting, value, allowed)


def _validate(config: TrainerConfig, phases: list[Phase], model: nn.Module, has_eval: bool) -> None:
    """Every check that can fail before training, with the setting, value and what is allowed."""
    for name in ("max_steps", "grad_accumulation", "early_stopping_patience"):
        value = getattr(config, name)
        _require(_is_int(value, 1), f"TrainerConfig.{name}", value, "an integer >= 1")
    for name in ("eval_every", "checkpoint_every", "keep_last_n"):
        value = getattr(config, name)
        ok = value is None or _is_int(value, 1)
        _require(ok, f"TrainerConfig.{name}", value, "an integer >= 1, or None")
    clip = config.grad_clip
    _require(clip is None or clip > 0, "TrainerConfig.grad_clip", clip, "a number > 0, or None")
    mode = config.early_stopping_mode
    _require(mode in ("min", "max"), "TrainerConfig.early_stopping_mode", mode, "'min' or 'max'")

    names = [phase.name for phase in phases]
    _require(phases and len(set(names)) == len(names), "phases", names, "distinct names")
    in_model = {id(p) for p in model.parameters()}
    for phase in phases:
        where = f"Phase({phase.name!r})"
        lr_ok = isinstance(phase.lr, int | float) and math.isfinite(phase.lr) and phase.lr > 0
        _require(lr_ok, f"{where}.lr", phase.lr, "a finite number > 0")
        betas_ok = len(phase.betas) == 2 and all(0 <= beta < 1 for beta in phase.betas)
        _require(betas_ok, f"{where}.betas", phase.betas, "two numbers in [0, 1)")
        _require(phase.eps > 0, f"{where}.eps", phase.eps, "a number > 0")
        decay = phase.weight_decay
        _require(decay >= 0, f"{where}.weight_decay", decay, "a number >= 0")
        schedule = phase.schedule
        _require(schedule in SCHEDULES, f"{where}.schedule", schedule, ", ".join(SCHEDULES))
        warmup = phase.warmup_steps
        _require(_is_int(warmup, 0), f"{where}.warmup_steps", warmup, "an integer >= 0")
        min_lr_ok = 0 <= phase.min_lr <= phase.lr
        _require(min_lr_ok, f"{where}.min_lr", phase.min_lr, f"a number in [0, lr={phase.lr}]")
        steps = phase.decay_steps
        ok = steps is None or _is_int(steps, 1)
        _require(ok, f"{where}.decay_steps", steps, "an integer >= 1, or None")
        _require(_is_int(phase.every, 1), f"{where}.every", phase.every, "an integer >= 1")
        signature = "a function (module, batch, step) -> (loss, metrics)"
        _require(callable(phase.loss_fn), f"{where}.loss_fn", phase.loss_fn, signature)
        trainable = [p for p in phase.module.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(f"{where}.module has no parameters with requires_grad=True")
        if any(id(p) not in in_model for p in trainable):
            raise ValueError(
                f"{where}.module has parameters outside the model given to Trainer, so they "
                "would not be checkpointed; pass a model that contains every phase's module, "
                "e.g. nn.ModuleDict({'generator': G, 'discriminator': D})"
            )

    for name in ("eval_every", "early_stopping_metric"):
        if getattr(config, name) is not None and not has_eval:
            raise ValueError(f"TrainerConfig.{name}: got {getattr(config, name)!r}, but no eval_fn")
    if config.checkpoint_dir is None:
        if config.checkpoint_every is not None:
            raise ValueError("TrainerConfig.checkpoint_every needs TrainerConfig.checkpoint_dir")
        if str(config.resume) == "latest":
            raise ValueError("TrainerConfig.resume='latest' needs TrainerConfig.checkpoint_dir")


class Trainer:
    """Train `model` by running `phases` on batches from `data` (see the module docstring).

    `eval_fn(step) -> dict of metrics` is called every `eval_every` steps with the
    model in eval mode and gradients off; its results land in that step's history row.
    Under torchrun every process runs it and rank 0's numbers are shared. Callbacks,
    `callback(trainer, row)` after every step, also run on every rank.
    """

    def __init__(
        self,
        model: nn.Module,
        phases: Phase | Sequence[Phase],
        data: Iterable | BatchFn,
        config: TrainerConfig | None = None,
        eval_fn: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.config = config = config if config is not None else TrainerConfig()
        self.phases = [phases] if isinstance(phases, Phase) else list(phases)
        _validate(config, self.phases, model, eval_fn is not None)
        self.device = resolve_device(config.device)
        check_precision(config.precision, self.device)
        self.dist = setup_distributed(self.device)
        configure_tf32(self.device, config.tf32)
        self.model = model.to(self.device)
        self.eval_fn = eval_fn
        self.stream = BatchStream(data, self.device, config.seed)
        self.history: list[dict[str, float]] = []
        self.step = 0  # optimizer steps completed
        self.skipped_steps = 0
        self.last_checkpoint: Path | None = None
        self.stop_reason: str | None = None
        self.throughput_unit = "samples"
        self._best: float | None = None
        self._bad_evals = 0
        self._started = False
        self._flops_per_token: dict[int, float | None] = {}
        self._peak = peak_flops(self.device, config.precision, config.tf32)
        wrapped: dict[int, nn.Module] = {}  # phases sharing a module share one wrapper
        self._states = [self._build_phase(phase, wrapped) for phase in self.phases]

    def _build_phase(self, phase: Phase, wrapped: dict[int, nn.Module]) -> _PhaseState:
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
        optimizer = torch.optim.AdamW(
            adamw_param_groups(phase.module, phase.weight_decay),
            lr=phase.lr,
            betas=phase.betas,
            eps=phase.eps,
            # One fused kernel instead of ~10 small ops per parameter: ~4x faster on a CPU too.
            fused=self.device.type in FUSED_ADAMW_DEVICES,
        )
        updates = math.ceil(config.max_steps / phase.every)
        schedule = functools.partial(
            lr_multiplier,
            warmup_steps=phase.warmup_steps,
            decay_steps=phase.decay_steps or updates,
            schedule=phase.schedule,
            min_ratio=phase.min_lr / phase.lr,
        )
        return _PhaseState(
            phase=phase,
            module=wrapped[id(phase.module)],
            optimizer=optimizer,
            scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
            # fp16 overflows above 65504: scale the loss up, and gradients back down.
            scaler=torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16"),
        )

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
        # Pass disable= only to silence: an explicit disable=False would override TQDM_DISABLE.
        # tqdm.notebook (what tqdm.auto picks in Jupyter) ignores TQDM_DISABLE: check it here.
        silent = not (config.progress and self.dist.is_main) or bool(os.environ.get("TQDM_DISABLE"))
        quiet = {"disable": True} if silent else {}
        bar = tqdm(total=config.max_steps, initial=self.step, desc="training", **quiet)
        writer = self._open_tensorboard()
        try:
            while self.step < config.max_steps and self.stop_reason is None:
                row = self._train_step()
                if config.eval_every and (
                    self.step % config.eval_every == 0 or self.step == config.max_steps
                ):
                    metrics = self.evaluate()
                    row.update(metrics)
                    self._update_early_stopping(metrics)
                for callback in config.callbacks:
                    callback(self, row)
                self.history.append(row)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                self._report(row, bar, writer)
            if config.checkpoint_dir is not None and self.last_checkpoint != self._folder():
                self.save_checkpoint()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if self.stop_reason is not None:
            self._say(self.stop_reason)
        return self.history

    def _train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        step = self.step
        batches = [self.stream.next(step) for _ in range(self.config.grad_accumulation)]
        counts = [count_items(batch) for batch in batches]
        self.throughput_unit = counts[0][0]
        if self.dist.enabled:
            batches = [shard_batch(b, self.dist.rank, self.dist.world_size) for b in batches]
        batches = [
            map_tensors(batch, lambda t: t.to(self.device, non_blocking=True)) for batch in batches
        ]
        row: dict[str, float] = {"step": step + 1}
        for state in self._states:
            if step % state.phase.every == 0:
                row.update(self._train_phase(state, batches, step))
        self.step += 1
        seconds = time.perf_counter() - started
        items_per_second = sum(count for _, count, _ in counts) / seconds
        row["step_ms"] = 1000 * seconds
        row[f"{self.throughput_unit}_per_s"] = items_per_second
        mfu = model_flops_utilization(
            items_per_second,
            self._model_flops_per_token(counts[0][2]) if counts[0][0] == "tokens" else None,
            None if self._peak is None else self._peak * self.dist.world_size,
        )
        if mfu is not None:
            row["mfu"] = mfu
        return row

    def _train_phase(self, state: _PhaseState, batches: list[Any], step: int) -> dict[str, float]:
        """Forward and backward over the micro-batches, then one optimizer step."""
        phase, optimizer, scaler = state.phase, state.optimizer, state.scaler
        optimizer.zero_grad(set_to_none=True)  # also clears gradients other phases left here
        loss_sum = torch.zeros((), device=self.device)
        metric_sums: dict[str, Tensor] = {}
        for index, batch in enumerate(batches):
            # Under DDP only the last micro-batch's backward averages gradients across ranks.
            last = index == len(batches) - 1
            sync = nullcontext() if last or not self.dist.enabled else state.module.no_sync()
            with sync:
                with self._autocast():
                    loss, metrics = phase.loss_fn(state.module, batch, step)
                scaler.scale(loss / len(batches)).backward()
            loss_sum += loss.detach().float()
            for key, value in metrics.items():
                value = torch.as_tensor(value, dtype=torch.float32, device=self.device).detach()
                metric_sums[key] = metric_sums.get(key, 0) + value
        scaler.unscale_(optimizer)  # clip true gradients, not scaled ones (no-op unless fp16)
        values = [loss_sum, *metric_sums.values()]
        if self.config.grad_clip is not None:
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            values.append(torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip))
        # One host-device sync per phase: read every number at once (and average over ranks).
        summed = torch.stack([v.float() for v in values])
        summed[: 1 + len(metric_sums)] /= len(batches)
        if self.dist.enabled:
            dist.all_reduce(summed)
            summed /= self.dist.world_size
        numbers = summed.tolist()
        name = phase.name
        row = {f"{name}/loss": numbers[0], f"{name}/lr": optimizer.param_groups[0]["lr"]}
        row.update({f"{name}/{key}": v for key, v in zip(metric_sums, numbers[1:], strict=False)})
        if self.config.grad_clip is not None:
            row[f"{name}/grad_norm"] = numbers[-1]
        if not math.isfinite(numbers[0]):
            if not self.config.skip_nonfinite:
                raise NonFiniteLossError(self._nonfinite_message(name, numbers[0], step + 1))
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

    def _nonfinite_message(self, phase: str, value: float, step: int) -> str:
        if self.last_checkpoint is not None:
            where = (
                f"the last good checkpoint is {self.last_checkpoint} (resume with resume='latest')"
            )
        else:
            where = "no checkpoint was saved (set checkpoint_dir and checkpoint_every to keep one)"
        return (
            f"phase {phase!r}: the loss is {value} at step {step}; training stopped before "
            f"updating the weights. {where}. Try a lower learning rate, check the data, or set "
            "TrainerConfig.skip_nonfinite=True to skip such steps and count them."
        )

    def _autocast(self) -> Any:
        if self.config.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.config.precision])

    def _model_flops_per_token(self, seq_len: int | None) -> float | None:
        """Training FLOPs per token from `model.flops_per_token`, if the model has one."""
        if seq_len not in self._flops_per_token:
            estimate = getattr(self.model, "flops_per_token", None)
            self._flops_per_token[seq_len] = float(estimate(seq_len=seq_len)) if estimate else None
        return self._flops_per_token[seq_len]

    # -------------------------------------------------------------------- evaluation

    def evaluate(self) -> dict[str, float]:
        """Run eval_fn now, in eval mode, without gradients; return its metrics as floats."""
        if self.eval_fn is None:
            raise ValueError("Trainer.evaluate needs an eval_fn; pass eval_fn= to Trainer")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                metrics = self.eval_fn(self.step)
        finally:
            self.model.train(was_training)
        metrics = {key: float(value) for key, value in metrics.items()}
        if self.dist.enabled:
            # GPUs may differ in the last bits; every rank must take the same early-stopping
            # decision, or the ones that stop would leave the others waiting forever.
            shared = [metrics]
            dist.broadcast_object_list(shared, src=0)
            metrics = shared[0]
        return metrics

    def _update_early_stopping(self, metrics: dict[str, float]) -> None:
        metric = self.config.early_stopping_metric
        if metric is None:
            return
        if metric not in metrics:
            raise ValueError(
                f"TrainerConfig.early_stopping_metric: got {metric!r}, but eval_fn returned "
                f"only {sorted(metrics)}"
            )
        value = metrics[metric]
        minimize = self.config.early_stopping_mode == "min"
        if self._best is None or (value < self._best if minimize else value > self._best):
            self._best, self._bad_evals = value, 0
            return
        self._bad_evals += 1
        if self._bad_evals >= self.config.early_stopping_patience:
            self.stop_reason = (
                f"early stopping at step {self.step}: {metric} has not improved on "
                f"{self._best:.4g} for {self._bad_evals} evaluations"
            )

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
        rng = [capture_rng_state()]
        if self.dist.enabled:  # each rank's dropout stream differs: keep them all
            rng = [None] * self.dist.world_size
            dist.all_gather_object(rng, capture_rng_state())
        if self.dist.is_main:
            state = {
                "format": 1,
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
                "rng": rng,
                "history": self.history,
                "early_stopping": {"best": self._best, "bad_evals": self._bad_evals},
                "skipped_steps": self.skipped_steps,
            }
            save_checkpoint(
                self.config.checkpoint_dir, self.step, self.model, state, self.config.keep_last_n
            )
        if self.dist.enabled:
            dist.barrier()  # nobody moves on until the checkpoint exists
        self.last_checkpoint = folder
        return folder

    def _resume(self) -> bool:
        """Load the checkpoint `config.resume` names, if any; True if training resumed."""
        request = self.config.resume
        if request is None:
            return False
        if str(request) == "latest":
            folder = latest_checkpoint(self.config.checkpoint_dir)
            if folder is None:
                self._say(f"no checkpoint in {self.config.checkpoint_dir} yet: starting at step 0")
                return False
        else:
            folder = Path(request)
            if not folder.is_dir():
                raise CheckpointError(f"TrainerConfig.resume: {folder} is not a checkpoint folder")
        state = load_checkpoint(folder, self.model)
        saved, ours = sorted(state["phases"]), sorted(p.name for p in self.phases)
        if saved != ours:
            raise CheckpointError(f"{folder} holds phases {saved}, but this trainer has {ours}")
        for phase_state in self._states:
            saved_phase = state["phases"][phase_state.phase.name]
            try:
                phase_state.optimizer.load_state_dict(saved_phase["optimizer"])
            except ValueError as error:
                raise CheckpointError(
                    f"{folder}: optimizer state does not fit ({error})"
                ) from error
            phase_state.scheduler.load_state_dict(saved_phase["scheduler"])
            if saved_phase["scaler"] and phase_state.scaler.is_enabled():
                phase_state.scaler.load_state_dict(saved_phase["scaler"])
            phase_state.updates = saved_phase["updates"]
        self.step = state["step"]
        self.stream.load_state_dict(state["data"])
        self.history = list(state["history"])
        self._best = state["early_stopping"]["best"]
        self._bad_evals = state["early_stopping"]["bad_evals"]
        self.skipped_steps = state["skipped_steps"]
        if len(state["rng"]) == self.dist.world_size:
            restore_rng_state(state["rng"][self.dist.rank])
        else:
            warnings.warn(
                f"{folder} was saved by {len(state['rng'])} processes and is resumed by "
                f"{self.dist.world_size}: random streams are reseeded, so the run is not exact",
                stacklevel=2,
            )
            seed_everything(self.config.seed + self.dist.rank + self.step)
        self.last_checkpoint = folder
        self._say(f"resumed from {folder} at step {self.step}")
        return True

    # ------------------------------------------------------------------- reporting

    def _say(self, message: str) -> None:
        if self.config.progress and self.dist.is_main:
            tqdm.write(message)

    def _open_tensorboard(self) -> Any:
        if not (self.config.tensorboard and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warnings.warn(
                "TrainerConfig.tensorboard=True, but tensorboard is not installed "
                "(pip install 'sslm_lab[tensorboard]'); metrics go to trainer.history only",
                stacklevel=3,
            )
            return None
        log_dir = self.config.log_dir
        if log_dir is None:
            log_dir = Path(self.config.checkpoint_dir or "runs") / "tensorboard"
        return SummaryWriter(str(log_dir))

    def _report(self, row: dict[str, float], bar: Any, writer: Any) -> None:
        if writer is not None:
            for key, value in row.items():
                if key != "step":
                    writer.add_scalar(key, value, self.step)
        postfix = {
            s.phase.name: f"{row[f'{s.phase.name}/loss']:.4f}"
            for s in self._states
            if f"{s.phase.name}/loss" in row
        }
        rate = row[f"{self.throughput_unit}_per_s"]
        postfix[f"{self.throughput_unit}/s"] = f"{rate:,.0f}"
        if "mfu" in row:
            postfix["mfu"] = f"{100 * row['mfu']:.1f}%"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    def summary(self, skip_first: int = 1) -> dict[str, Any]:
        """Speed over this process's steps, leaving out the first (compile, warm-up)."""
        rows = [row for row in self.history if "step_ms" in row][skip_first:]
        if not rows:
            return {"steps": self.step, "skipped_steps": self.skipped_steps}
        seconds = sum(row["step_ms"] for row in rows) / 1000
        key = f"{self.throughput_unit}_per_s"
        items = sum(row[key] * row["step_ms"] / 1000 for row in rows if key in row)
        mfus = [row["mfu"] for row in rows if "mfu" in row]
        return {
            "steps": self.step,
            "skipped_steps": self.skipped_steps,
            "ms_per_step": 1000 * seconds / len(rows),
            key: items / seconds,
            "mfu": sum(mfus) / len(mfus) if mfus else "unknown",
        }

    def plot_history(self, keys: Sequence[str] | None = None) -> Figure:
        """`plot_history(self.history, keys)`."""
        return plot_history(self.history, keys)


def plot_history(history: list[dict[str, float]], keys: Sequence[str] | None = None) -> Figure:
    """Plot metrics against the step; by default every key containing "loss".

    Returns a matplotlib Figure (not drawn through pyplot, so a notebook shows it once).
    """
    if keys is None:
        keys = sorted({key for row in history for key in row if "loss" in key})
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for key in keys:
        points = [(row["step"], row[key]) for row in history if key in row]
        if not points:
            present = sorted({name for row in history for name in row})
            raise KeyError(f"no history row has {key!r}; keys present: {present}")
        steps, values = zip(*points, strict=True)
        sparse = len(points) < len(history) / 2  # evaluations: show the points
        axes.plot(steps, values, marker="o" if sparse else None, label=key)
    axes.set_xlabel("step")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure
