"""Tiny models, data and objectives for the trainer tests, plus a script entry point.

The SIGKILL and torchrun tests run training in other processes; they import the same
builders from here, so the process under test and the in-process reference train the
very same thing.

    python tests/trainer_worker.py kill --dir D --steps N --every K --kill-at S
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        tests/trainer_worker.py ddp --dir D --steps N --out losses.json
    python tests/trainer_worker.py faults --dir D --steps 0 --out report.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslm_lab import files  # noqa: E402
from sslm_lab.training.batches import sample_rows  # noqa: E402
from sslm_lab.training.checkpoint import (  # noqa: E402
    MANIFEST_FILE,
    capture_rng_state,
    latest_checkpoint,
    list_checkpoints,
    restore_rng_state,
    verify_checkpoint,
)
from sslm_lab.training.hardware import cleanup_distributed  # noqa: E402
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig  # noqa: E402

VOCAB = 16


class TinyLM(nn.Module):
    """Next-token prediction from a few previous tokens: embedding, MLP, tied output head."""

    def __init__(self, width: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, width)
        self.mix = nn.Conv1d(width, 2 * width, kernel_size=3, padding=2)  # sees 3 tokens back
        self.norm = nn.LayerNorm(2 * width)
        self.hidden = nn.Linear(2 * width, width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, VOCAB, bias=False)
        self.head.weight = self.embedding.weight  # tied: safetensors must cope

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens).transpose(1, 2)  # (batch, width, seq)
        x = self.mix(x)[..., : tokens.shape[1]].transpose(1, 2)  # causal: drop the right pad
        x = self.dropout(F.gelu(self.hidden(self.norm(x))))
        return self.head(x)  # (batch, seq, vocab)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        return 6.0 * sum(p.numel() for p in self.parameters())


def make_tokens(length: int = 4000, seed: int = 0) -> torch.Tensor:
    """A learnable sequence: a repeating pattern with 10% random replacements."""
    generator = torch.Generator().manual_seed(seed)
    pattern = torch.tensor([1, 5, 2, 9, 3, 7, 11, 4, 13, 6])
    tokens = pattern.repeat(length // len(pattern) + 1)[:length]
    noise = torch.rand(length, generator=generator) < 0.1
    tokens[noise] = torch.randint(VOCAB, (int(noise.sum()),), generator=generator)
    return tokens


def block_sampler(tokens: torch.Tensor, batch_size: int, block: int = 16):
    """batch_fn(step, generator) -> (inputs, targets), random windows of the sequence."""

    def batch_fn(step: int, generator: torch.Generator):
        starts = torch.randint(len(tokens) - block - 1, (batch_size,), generator=generator)
        index = starts[:, None] + torch.arange(block + 1)
        windows = tokens[index]  # (batch, block + 1)
        return windows[:, :-1], windows[:, 1:]

    return batch_fn


def lm_loss(model: nn.Module, batch, step: int, noisy: bool = True):
    """Cross-entropy, plus a negligible term drawn from Python's and NumPy's RNGs.

    The extra term proves that a resume restores those generators too: if they were
    not restored, the losses after resuming would differ in the last digits.
    """
    inputs, targets = batch
    logits = model(inputs)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    if noisy:
        loss = loss + 1e-3 * (random.random() + float(np.random.rand()))
    accuracy = (logits.argmax(-1) == targets).float().mean()
    return loss, {"accuracy": accuracy}


def clean_lm_loss(model: nn.Module, batch, step: int):
    return lm_loss(model, batch, step, noisy=False)


def lm_trainer(
    directory: str | Path | None,
    steps: int,
    *,
    batch_size: int = 8,
    dropout: float = 0.1,
    noisy: bool = True,
    seed: int = 0,
    eval_fn=None,
    **config_overrides,
) -> Trainer:
    """A causal-LM run on TinyLM that every resume and torchrun test builds the same way."""
    torch.manual_seed(seed)
    model = TinyLM(dropout=dropout)
    settings = {"device": "cpu", "progress": False, "seed": seed, **config_overrides}
    config = TrainerConfig(max_steps=steps, checkpoint_dir=directory, **settings)
    phase = Phase(
        "lm", model, lm_loss if noisy else clean_lm_loss, lr=3e-2, warmup_steps=3, min_lr=3e-3
    )
    return Trainer(model, phase, block_sampler(make_tokens(), batch_size), config, eval_fn)


class Generator(nn.Module):
    """noise (batch, 2) -> a sample (batch, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise)


def gan_trainer(steps: int, **config_overrides) -> Trainer:
    """A 1-D GAN: the discriminator every step (warmup, cosine), the generator every 2nd."""
    torch.manual_seed(0)
    generator = Generator()
    discriminator = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
    gan = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    real_data = 3.0 + 0.5 * torch.randn(256, 1)

    def discriminator_loss(disc: nn.Module, batch, step: int):
        (real,) = batch
        with torch.no_grad():
            fake = generator(torch.randn(len(real), 2))
        scores = disc(torch.cat([real, fake]))  # (2 * batch, 1)
        labels = torch.cat([torch.ones(len(real), 1), torch.zeros(len(fake), 1)])
        loss = F.binary_cross_entropy_with_logits(scores, labels)
        return loss, {"real_score": scores[: len(real)].mean()}

    def generator_loss(gen: nn.Module, batch, step: int):
        scores = discriminator(gen(torch.randn(len(batch[0]), 2)))
        return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores)), {}

    phases = [
        Phase("discriminator", discriminator, discriminator_loss, lr=1e-2, warmup_steps=2),
        Phase("generator", generator, generator_loss, lr=5e-3, schedule="constant", every=2),
    ]
    settings = {"device": "cpu", "progress": False, **config_overrides}
    return Trainer(
        gan, phases, sample_rows(real_data, batch_size=32), TrainerConfig(steps, **settings)
    )


def losses(history: list[dict[str, float]], phase: str = "lm") -> list[float]:
    return [row[f"{phase}/loss"] for row in history]


def _kill(args: argparse.Namespace) -> None:
    """Train with checkpoints; SIGKILL ourselves in the middle of step `kill_at`."""

    def die(trainer: Trainer, row: dict[str, float]) -> None:
        if trainer.step == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer = lm_trainer(
        args.dir, args.steps, checkpoint_every=args.every, callbacks=[die], keep_last_n=2
    )
    trainer.fit()


def _ddp(args: argparse.Namespace) -> None:
    """Under torchrun: a causal LM with the global batch split over the processes, then a GAN.

    Every rank writes what it saw to `<out>.rank<r>.json`: the batches it trained on,
    the evaluation numbers it received, and a checksum of the GAN's weights. Rank 0
    also writes the LM losses to `<out>`.
    """
    seen = []

    def recording_loss(model, batch, step):
        inputs = batch[0]
        seen.append({"rows": len(inputs), "first_window": inputs[0].tolist()})
        return clean_lm_loss(model, batch, step)

    def eval_fn(step: int) -> dict[str, float]:
        return {"val/rank": float(torch.distributed.get_rank())}  # rank 0's value must win

    trainer = lm_trainer(
        args.dir,
        args.steps,
        batch_size=args.batch_size,
        dropout=0.0,
        noisy=False,
        eval_fn=eval_fn,
        eval_every=4,
    )
    trainer.phases[0].loss_fn = recording_loss
    history = trainer.fit()

    gan = gan_trainer(4)
    gan.fit()
    checksums = {name: float(p.double().sum()) for name, p in gan.model.named_parameters()}
    record = {
        "batches": seen,
        "val_rank": [row["val/rank"] for row in history if "val/rank" in row],
        "gan_checksums": checksums,
    }
    Path(f"{args.out}.rank{trainer.dist.rank}.json").write_text(json.dumps(record))
    if trainer.dist.is_main:
        record = {"world_size": trainer.dist.world_size, "losses": losses(history)}
        Path(args.out).write_text(json.dumps(record))
    cleanup_distributed()


def _faults(args: argparse.Namespace) -> None:
    """Kill one save at each of its disk operations in turn; write what was left to --out.

    Two saves of step 8 are tried. "new": the folder holds step 4 only, and the save also
    prunes it (keep_last_n=1). "resave": the folder holds steps 4 and 8 with `latest` on
    8, and a run resumed from step 4 with other settings (no dropout) writes step 8 again.
    For operation N, a forked copy of this process installs a hook that SIGKILLs it right
    before the N-th operation and saves into a fresh copy of the folder; this process
    then looks at what a user would find there, and resumes from it.
    """
    torch.set_num_threads(1)  # a forked child must not wait on a thread pool it lacks
    root = Path(args.dir)
    report = {
        scenario: _kill_each_operation(root / scenario, scenario) for scenario in ("new", "resave")
    }
    Path(args.out).write_text(json.dumps(report, indent=1))


def _kill_each_operation(root: Path, scenario: str) -> dict:
    template = root / "template"
    if scenario == "new":
        lm_trainer(template, 4, keep_last_n=1).fit()
        saver = lm_trainer(root / "saver", 8, keep_last_n=1)
    else:
        lm_trainer(template, 8, checkpoint_every=4, keep_last_n=None).fit()
        shutil.copytree(template, root / "saver")
        saver = lm_trainer(
            root / "saver", 8, dropout=0.0, resume=root / "saver" / "step_0000004", keep_last_n=1
        )
    saver.fit()  # now at step 8, the state every killed save below writes
    old = _state_digest(latest_checkpoint(template))

    operations: list[list[str]] = []
    counted = root / "counted"
    shutil.copytree(template, counted)

    def record(operation: str, path: Path) -> None:
        name = re.sub(r"-[0-9a-f]{8}", "-*", str(path.relative_to(counted)))
        operations.append([operation, name])

    generators = capture_rng_state()  # saved with the state; resuming below moves them on
    files.disk_operation_hook = record
    saver.config.checkpoint_dir = counted
    saver.save_checkpoint()
    files.disk_operation_hook = None
    new = _state_digest(counted / "step_0000008")

    trials = []
    for n in range(1, len(operations) + 1):
        trial = root / f"kill_{n:03d}"
        shutil.copytree(template, trial)
        saver.config.checkpoint_dir = trial
        pid = os.fork()
        if pid == 0:  # the child: die right before operation n
            restore_rng_state(generators)
            files.disk_operation_hook = _killer(n)
            try:
                saver.save_checkpoint()
            finally:
                os._exit(3)  # reached only if the kill did not happen
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        trials.append(
            {"operation": operations[n - 1], "killed": killed, **_inspect(trial, old, new)}
        )
        shutil.rmtree(trial)
    return {"operations": operations, "trials": trials}


def _killer(n: int) -> Callable[[str, Path], None]:
    """A disk-operation hook that SIGKILLs this process right before the n-th operation."""
    calls = itertools.count(1)

    def crash(operation: str, path: Path) -> None:
        if next(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def _state_digest(folder: Path) -> str | None:
    """The state's sha256 from a folder's manifest: it tells two saves apart (the weights
    file does not always: safetensors orders its header's metadata differently each time)."""
    path = folder / MANIFEST_FILE
    return json.loads(path.read_text())["files"]["state.pt"]["sha256"] if path.is_file() else None


def _inspect(trial: Path, old: str | None, new: str | None) -> dict:
    """What a user finds after the kill, and after resuming from `latest` and saving once."""
    try:
        folder = latest_checkpoint(trial)
    except Exception as error:  # reported, so that the test shows it
        return {"latest": None, "problem": f"{type(error).__name__}: {error}"}
    listed = [p.name for p in list_checkpoints(trial)]
    found = {
        "latest": folder.name,
        "problem": verify_checkpoint(folder),
        "holds": {old: "old", new: "new"}.get(_state_digest(folder), "other"),
        "listed": listed,
        "listed_verify": all(verify_checkpoint(trial / name) is None for name in listed),
    }
    resumed = lm_trainer(trial, 9, resume="latest", keep_last_n=1)
    resumed.fit()
    found["after_resume"] = sorted(p.name for p in trial.iterdir())
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["kill", "ddp", "faults"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--kill-at", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="losses.json")
    args = parser.parse_args()
    {"kill": _kill, "ddp": _ddp, "faults": _faults}[args.mode](args)


if __name__ == "__main__":
    main()
