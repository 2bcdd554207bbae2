"""Tiny models, data and objectives for the trainer tests, plus a script entry point.

The SIGKILL and torchrun tests run training in other processes; they import the same
builders from here, so the process under test and the in-process reference train the
very same thing.

    python tests/trainer_worker.py kill --dir D --steps N --every K --kill-at S
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        tests/trainer_worker.py ddp --dir D --steps N --out losses.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslm_lab.training.batches import sample_rows  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["kill", "ddp"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--kill-at", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="losses.json")
    args = parser.parse_args()
    {"kill": _kill, "ddp": _ddp}[args.mode](args)


if __name__ == "__main__":
    main()
