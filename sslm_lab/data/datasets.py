"""Torch datasets for the three kinds of self-supervised and supervised examples.

- `LMBlocks`: windows of consecutive token ids for language modelling (next token,
  or masked tokens when a masking function is applied to the window).
- `LinePairs`: pairs of consecutive lines, BERT's sentence-pair input, optionally
  with next-sentence-prediction negatives.
- `LabelledPassages`: fixed-length passages labelled with their work's genre, for
  probes and fine-tuning.

All randomness is drawn once, at construction, from a generator seeded by `seed`: the
same seed gives the same items in any order of access and in any worker process.

The data enter here, so this is where their values are checked, once: token ids are
integers >= 0 (the model checks them against its vocabulary), flags are real booleans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sslm_lab.checks import check_bool, check_int, invalid
from sslm_lab.data.shakespeare import GENRES, Work, read_work, works_in_split
from sslm_lab.data.tokenizers import TextTokenizer


def _check_index(index: int, length: int) -> int:
    """Python's own rule for sequences: -length <= index < length, as an IndexError."""
    index = check_int("index", index)
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a dataset of {length} items")
    return index % length


def _check_seed(seed: int) -> int:
    return check_int("seed", seed, low=0, high=2**64 - 1, hint="it seeds a torch.Generator")


def _token_ids(ids: Tensor | Sequence[int]) -> Tensor:
    """`ids` as a 1-D LongTensor of at least 2 ids, each >= 0; floats are not rounded."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Tensor | Sequence | np.ndarray):
        raise invalid("type(ids)", type(ids), "a 1-D tensor, array or list of integer token ids")
    tensor = torch.as_tensor(ids)
    if tensor.dim() != 1 or len(tensor) < 2:
        raise invalid("ids.shape", tuple(tensor.shape), "1-D with at least 2 ids (one block)")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise invalid("ids.dtype", tensor.dtype, "an integer dtype: ids are token indices")
    tensor = tensor.long()
    smallest = int(tensor.min())
    if smallest < 0:
        raise invalid("min(ids)", smallest, "ids >= 0: they index a vocabulary")
    return tensor


class LMBlocks(Dataset):
    """Windows of `block_size + 1` consecutive token ids from one long sequence.

    An item is a LongTensor (block_size + 1,); the model reads `item[:-1]` and
    predicts `item[1:]`, each token's successor.

    random_offsets=True (training): `num_blocks` windows (default: as many as fit
    without overlap) start at offsets drawn uniformly from a generator seeded with
    `seed`, so item i is the same every time for a given seed.
    random_offsets=False (evaluation): windows start at 0, block_size, 2·block_size,
    ...: inputs do not overlap and every token after the first is predicted once.
    """

    def __init__(
        self,
        ids: Tensor | Sequence[int],
        block_size: int,
        *,
        random_offsets: bool,
        num_blocks: int | None = None,
        seed: int = 0,
    ) -> None:
        ids = _token_ids(ids)
        random_offsets = check_bool("random_offsets", random_offsets)
        seed = _check_seed(seed)
        length = len(ids)
        block_size = check_int(
            "block_size",
            block_size,
            low=1,
            high=length - 1,
            hint=f"len(ids) = {length}, and a block holds block_size + 1 tokens",
        )
        fitting = (length - 1) // block_size  # windows whose inputs do not overlap
        num_blocks = check_int("num_blocks", num_blocks, low=1, allow_none=True)
        if num_blocks is None:
            num_blocks = fitting
        if not random_offsets and num_blocks > fitting:
            raise ValueError(
                f"num_blocks={num_blocks} is more than the {fitting} non-overlapping blocks of "
                f"{block_size} tokens in {length} ids"
            )
        if random_offsets:
            generator = torch.Generator().manual_seed(seed)
            # The last valid start leaves room for block_size + 1 tokens.
            self.offsets = torch.randint(0, length - block_size, (num_blocks,), generator=generator)
        else:
            self.offsets = torch.arange(num_blocks) * block_size
        self.ids = ids
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> Tensor:
        start = int(self.offsets[_check_index(index, len(self))])
        # A copy, so in-place masking of an item never edits the corpus.
        return self.ids[start : start + self.block_size + 1].clone()


NEGATIVE_DRAWS = 100  # tries at a random line before LinePairs lists the other lines


class LinePairs(Dataset):
    """Pairs of consecutive non-empty lines as BERT inputs: [CLS] a [SEP] b [SEP].

    Lines are stripped of surrounding whitespace and empty lines are dropped, so pair i
    is (line i, line i + 1) of the remaining lines. With `negatives=True`, about half
    of the pairs (decided by a generator seeded with `seed`) get a random other line as
    their second line, and `is_next` is 0 for them: the next-sentence-prediction task
    of Devlin et al. (2019). A random line equal in text to the true next line is drawn
    again, so a negative is never secretly the right answer; negatives therefore need a
    text with at least two different lines.

    Items are dicts of tensors: input_ids (length,), token_type_ids (length,), 0 for
    the first segment and 1 for the second, and is_next () as int64. Pairs longer than
    `max_length` tokens are cut, one token at a time from the longer line's end.
    """

    def __init__(
        self,
        text: str,
        tokenizer: TextTokenizer,
        *,
        negatives: bool = False,
        max_length: int = 128,
        seed: int = 0,
    ) -> None:
        if not isinstance(text, str):
            raise invalid("type(text)", type(text), "str, the corpus with one sentence per line")
        if not isinstance(tokenizer, TextTokenizer):
            raise invalid("type(tokenizer)", type(tokenizer), "an sslm_lab TextTokenizer")
        negatives = check_bool("negatives", negatives)
        check_int("max_length", max_length, low=5, hint="3 special tokens + 1 per line")
        seed = _check_seed(seed)
        self.lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(self.lines) < 2:
            raise ValueError(f"text has {len(self.lines)} non-empty lines; a pair needs at least 2")
        if negatives and len(set(self.lines)) < 2:
            raise invalid(
                "text",
                f"{len(self.lines)} copies of {self.lines[0]!r}",
                "at least 2 different lines: a negative is a line other than the true next",
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        count = len(self.lines) - 1
        self.second_index = torch.arange(1, count + 1)  # (count,)
        self.is_next = torch.ones(count, dtype=torch.long)  # (count,)
        if negatives:
            generator = torch.Generator().manual_seed(seed)
            replaced = torch.rand(count, generator=generator) < 0.5
            self.is_next[replaced] = 0
            for pair in replaced.nonzero().flatten().tolist():
                self.second_index[pair] = self._other_line(self.lines[pair + 1], generator)

    def _other_line(self, true_next: str, generator: torch.Generator) -> int:
        """A line drawn uniformly among those whose text differs from `true_next`.

        Drawing again until the text differs is quick unless one line fills nearly all
        of the text; after NEGATIVE_DRAWS tries the draw is made among the others directly.
        """
        for _ in range(NEGATIVE_DRAWS):
            other = int(torch.randint(0, len(self.lines), (1,), generator=generator))
            if self.lines[other] != true_next:
                return other
        others = [index for index, line in enumerate(self.lines) if line != true_next]
        return others[int(torch.randint(0, len(others), (1,), generator=generator))]

    def __len__(self) -> int:
        return len(self.is_next)

    def pair(self, index: int) -> tuple[str, str, bool]:
        """Pair `index` as text: (first line, second line, whether it is the true next)."""
        index = _check_index(index, len(self))
        second = self.lines[int(self.second_index[index])]
        return self.lines[index], second, bool(self.is_next[index])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        first, second, is_next = self.pair(index)
        first_ids = self.tokenizer.encode(first)
        second_ids = self.tokenizer.encode(second)
        while len(first_ids) + len(second_ids) + 3 > self.max_length:
            (first_ids if len(first_ids) >= len(second_ids) else second_ids).pop()
        cls_id, sep_id = self.tokenizer.cls_id, self.tokenizer.sep_id
        input_ids = [cls_id, *first_ids, sep_id, *second_ids, sep_id]
        token_type_ids = [0] * (len(first_ids) + 2) + [1] * (len(second_ids) + 1)
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "token_type_ids": torch.tensor(token_type_ids, dtype=torch.long),
            "is_next": torch.tensor(int(is_next), dtype=torch.long),
        }


def pad_batch(items: Sequence[dict[str, Tensor]], pad_id: int) -> dict[str, Tensor]:
    """Collate dict items of different lengths into one batch (a DataLoader collate_fn).

    1-D fields are right-padded to the longest item: input_ids with `pad_id`, the
    others with 0; 0-D fields are stacked. Adds attention_mask (batch, length), 1 on
    real tokens and 0 on padding. Use `functools.partial(pad_batch, pad_id=...)`.
    Every item needs the same fields, and a 1-D field as long as its input_ids.
    """
    if isinstance(items, Mapping) or not isinstance(items, Sequence):
        raise invalid("type(items)", type(items), "a list of dict items, as a DataLoader gives")
    if not items:
        raise invalid("items", items, "at least one item", "cannot collate an empty batch")
    pad_id = check_int("pad_id", pad_id, low=0, hint="the tokenizer's pad_id")
    for index, item in enumerate(items):
        _check_item(index, item, items[0])
    lengths = torch.tensor([len(item["input_ids"]) for item in items])  # (batch,)
    batch: dict[str, Tensor] = {}
    for key, first in items[0].items():
        if first.dim() == 0:
            batch[key] = torch.stack([item[key] for item in items])
            continue
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.nn.utils.rnn.pad_sequence(
            [item[key] for item in items], batch_first=True, padding_value=fill
        )  # (batch, longest)
    batch["attention_mask"] = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()
    return batch


def _check_item(index: int, item: Any, first: Mapping[str, Any]) -> None:
    """Item `index` of a batch: a dict of tensors with first's fields, input_ids 1-D
    integer ids, every other 1-D field one entry per id (else padding misaligns them)."""
    name = f"items[{index}]"
    if not isinstance(item, Mapping):
        raise invalid(f"type({name})", type(item), "a dict of tensors with an input_ids field")
    if "input_ids" not in item:
        raise invalid(f"{name}.keys()", sorted(item), "the fields of an item, input_ids among them")
    if set(item) != set(first):
        raise invalid(f"{name}.keys()", sorted(item), f"items[0]'s fields, {sorted(first)}")
    for key, value in item.items():
        if not isinstance(value, Tensor):
            raise invalid(f"type({name}[{key!r}])", type(value), "torch.Tensor")
    ids = item["input_ids"]
    if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
        where = f"{name}['input_ids'].dtype, .shape"
        raise invalid(where, (ids.dtype, tuple(ids.shape)), "an integer dtype, 1-D")
    for key, value in item.items():
        if value.dim() != first[key].dim() or (value.dim() > 0 and len(value) != len(ids)):
            raise invalid(
                f"{name}[{key!r}].shape",
                tuple(value.shape),
                f"() or ({len(ids)},): one entry per input id, as in items[0]",
            )


class LabelledPassages(Dataset):
    """Passages of exactly `n_tokens` token ids, labelled with their work's genre.

    Each work of `split` ('train', 'val' or 'test', see SPLITS) is encoded whole and
    cut into consecutive, non-overlapping passages; the leftover tail is dropped. To
    keep long plays from outweighing short poems, at most `max_per_work` passages are
    kept per work (None keeps all), spread evenly through the work. Genres still
    differ in size because they differ in number of works; `class_counts()` says by
    how much, so a majority-class baseline is one line away. `genres` keeps only the
    works of those genres (e.g. the plays: ("comedy", "history", "tragedy")).

    Items are (ids (n_tokens,) int64, label () int64), label = genres.index(genre).
    """

    def __init__(
        self,
        split: str,
        tokenizer: TextTokenizer,
        n_tokens: int,
        *,
        max_per_work: int | None = 64,
        genres: tuple[str, ...] = GENRES,
    ) -> None:
        if not isinstance(tokenizer, TextTokenizer):
            raise invalid("type(tokenizer)", type(tokenizer), "an sslm_lab TextTokenizer")
        check_int("n_tokens", n_tokens, low=1)
        check_int("max_per_work", max_per_work, low=1, allow_none=True)
        if isinstance(genres, str):
            raise invalid("genres", genres, f"a tuple of genres, e.g. ({genres!r},)")
        genres = tuple(genres)
        if not genres or len(set(genres)) != len(genres) or not set(genres) <= set(GENRES):
            raise ValueError(f"genres: got {genres!r}; allowed: distinct values from {GENRES}")
        self.split = split
        self.genres = genres
        self.works: list[Work] = [w for w in works_in_split(split) if w.genre in genres]
        passages, labels, work_index = [], [], []
        for position, work in enumerate(self.works):
            ids = torch.tensor(tokenizer.encode(read_work(work)), dtype=torch.long)
            count = len(ids) // n_tokens
            if count == 0:
                continue
            chunks = ids[: count * n_tokens].view(count, n_tokens)  # (count, n_tokens)
            if max_per_work is not None and count > max_per_work:
                chosen = torch.linspace(0, count - 1, max_per_work).round().long()
                chunks = chunks[chosen]
            passages.append(chunks)
            labels += [genres.index(work.genre)] * len(chunks)
            work_index += [position] * len(chunks)
        if not passages:
            raise ValueError(
                f"no work in split {split!r} is {n_tokens} tokens long; lower n_tokens"
            )
        self.passages = torch.cat(passages)  # (n, n_tokens)
        self.labels = torch.tensor(labels, dtype=torch.long)  # (n,)
        self.work_index = torch.tensor(work_index, dtype=torch.long)  # (n,) into self.works

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        index = _check_index(index, len(self))
        return self.passages[index].clone(), self.labels[index]

    def chunked(self, chunks: int, cls_id: int) -> Tensor:
        """The passages cut into `chunks` equal chunks, each with `cls_id` in front:
        (n, n_tokens) -> (n, chunks, 1 + n_tokens / chunks), for an encoder whose block
        is shorter than a passage (`SequenceClassifier` reads chunks)."""
        n, n_tokens = self.passages.shape
        check_int("chunks", chunks, low=1)
        check_int("cls_id", cls_id)
        if n_tokens % chunks:
            raise ValueError(
                f"chunks: got {chunks}; allowed: a divisor of the passages' {n_tokens} tokens"
            )
        pieces = self.passages.view(n, chunks, n_tokens // chunks)
        return torch.cat([torch.full((n, chunks, 1), cls_id), pieces], dim=2)

    def class_counts(self) -> dict[str, int]:
        """Number of passages per genre, in the order of `genres`."""
        counts = torch.bincount(self.labels, minlength=len(self.genres))
        return {genre: int(count) for genre, count in zip(self.genres, counts, strict=True)}

    def work_of(self, index: int) -> Work:
        """The work passage `index` was cut from."""
        return self.works[int(self.work_index[_check_index(index, len(self))])]
