"""Where batches come from, and where the stream of them has got to.

The trainer takes either of two kinds of data:

- a *sampler* `batch_fn(step, generator) -> batch`, drawing from tensors that already
  sit on the training device (`sample_rows` builds one). Nothing crosses from host
  to GPU during training, and the position in the stream is just the state of
  `generator`, so a checkpoint can store it in a few bytes.
- an *iterable* of batches, such as a `DataLoader` or a list. Its position is
  (epoch, batches taken this epoch).

A batch is a tensor or a tuple/list/dict of them (other values pass through).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from sslm_lab.checks import ArgumentError, check_int

BatchFn = Callable[[int, torch.Generator], Any]
_END = object()  # marks an exhausted iterator


def sample_rows(*tensors: Tensor, batch_size: int) -> BatchFn:
    """A `batch_fn` drawing `batch_size` random rows (with replacement) of equal-length tensors.

    Keep the tensors on the training device and no batch ever crosses the PCIe bus.
    """
    check_int("batch_size", batch_size, low=1)
    if not tensors:
        raise ArgumentError("sample_rows needs at least one tensor to draw rows from")
    length = len(tensors[0])
    if any(len(t) != length for t in tensors):
        raise ValueError(
            f"sample_rows needs tensors of equal length; got {[len(t) for t in tensors]}"
        )

    def batch_fn(step: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        index = torch.randint(length, (batch_size,), generator=generator, device=generator.device)
        return tuple(t[index.to(t.device)] for t in tensors)

    return batch_fn


def map_tensors(batch: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply `fn` to every tensor in a batch made of tuples, lists and dicts."""
    if isinstance(batch, Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {key: map_tensors(value, fn) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(map_tensors(value, fn) for value in batch)
    return batch


def _first_tensor(batch: Any) -> Tensor | None:
    if isinstance(batch, Tensor):
        return batch
    values = batch.values() if isinstance(batch, dict) else batch
    if isinstance(values, Iterable) and not isinstance(values, str | bytes):
        for value in values:
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def count_items(batch: Any) -> tuple[str, int, int | None]:
    """What one batch holds, for throughput: ("tokens", count, seq_len) or ("samples", count, None).

    A batch whose first tensor holds integer ids shaped (batch, seq) counts tokens;
    anything else (images, vectors) counts samples along the first dimension.
    """
    first = _first_tensor(batch)
    if first is None or first.dim() == 0:
        return "samples", 1, None
    if first.dim() >= 2 and not first.is_floating_point() and not first.is_complex():
        return "tokens", first.numel(), first.shape[-1]
    return "samples", first.shape[0], None


class BatchStream:
    """Hands out batches and remembers where it is, so a checkpoint can put it back.

    - `batch_fn(step, generator)`: the position is the state of `generator`, a
      torch.Generator on the training device seeded with `seed`.
    - An iterable: the position is (epoch, batches taken this epoch). Each epoch's
      order is drawn under a seed of its own, so a shuffling DataLoader repeats it
      after a resume, which then reads past the batches already trained on. Random
      augmentations drawn from torch's global RNG while loading stay exact too: that
      RNG is restored from the checkpoint and the skipping does not touch it.
    """

    def __init__(self, data: Iterable | BatchFn, device: torch.device, seed: int) -> None:
        if isinstance(data, Tensor):
            raise TypeError("data: got a Tensor; pass sample_rows(tensor, batch_size=...) instead")
        self.seed = seed
        self.batch_fn: BatchFn | None = None
        self.iterable: Iterable | None = None
        if isinstance(data, Iterable):
            self.iterable = data
        elif callable(data):
            self.batch_fn = data
        else:
            raise TypeError(
                f"data: got {type(data).__name__}; allowed: an iterable of batches "
                "(e.g. a DataLoader) or a function batch_fn(step, generator) -> batch"
            )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.epoch, self.index = 0, 0
        self._iterator = None

    def _start_epoch(self) -> None:
        # The epoch's order is drawn under a seed of its own; fork_rng keeps that away
        # from the global RNG that dropout uses. A DataLoader draws its shuffle when the
        # first batch is fetched, not in iter(), so that fetch happens in here too.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 1_000_003 * (self.epoch + 1))
            iterator = iter(self.iterable)
            first = next(iterator, _END)
        if first is _END:
            raise ValueError("data: the iterable yielded no batches")
        if self.index == 0:
            self._iterator = itertools.chain([first], iterator)
            return
        # Resuming mid-epoch: skip the batches already trained on, again without
        # disturbing the global RNG, which the checkpoint has just restored.
        with torch.random.fork_rng(devices=[]):
            for _ in itertools.islice(iterator, self.index - 1):
                pass
        self._iterator = iterator

    def next(self, step: int) -> Any:
        """The next global batch."""
        if self.batch_fn is not None:
            return self.batch_fn(step, self.generator)
        if self._iterator is None:
            self._start_epoch()
        batch = next(self._iterator, _END)
        if batch is _END:  # this epoch is used up: start the next one
            self.epoch, self.index = self.epoch + 1, 0
            self._start_epoch()
            batch = next(self._iterator)
        self.index += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.epoch, self.index = state["epoch"], state["index"]
        self._iterator = None  # rebuilt (and fast-forwarded) on the next batch


def shard_batch(batch: Any, rank: int, world_size: int) -> Any:
    """Rank `rank`'s equal slice (along dim 0) of every tensor in a global batch.

    Under torchrun every process draws the same global batch and keeps its own part,
    so N processes with batch B/N each train exactly like one process with batch B.
    """

    def take(tensor: Tensor) -> Tensor:
        if tensor.dim() == 0:
            return tensor
        if len(tensor) % world_size:
            raise ValueError(
                f"a batch tensor has {len(tensor)} rows, which {world_size} processes cannot "
                f"share equally; make the global batch size a multiple of WORLD_SIZE={world_size}"
            )
        size = len(tensor) // world_size
        return tensor[rank * size : (rank + 1) * size]

    return map_tensors(batch, take)
