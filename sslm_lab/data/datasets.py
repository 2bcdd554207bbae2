"""Torch datasets for the three kinds of self-supervised and supervised examples.

- `LMBlocks`: windows of consecutive token ids for language modelling (next token,
  or masked tokens when a masking function is applied to the window).
- `LinePairs`: pairs of consecutive lines, BERT's sentence-pair input, optionally
  with next-sentence-prediction negatives.
- `LabelledPassages`: fixed-length passages labelled with their work's genre, for
  probes and fine-tuning.

All randomness is drawn once, at construction, from a generator seeded by `seed`: the
same seed gives the same items in any order of access and in any worker process.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sslm_lab.checks import check_int
from sslm_lab.data.shakespeare import GENRES, Work, read_work, works_in_split
from sslm_lab.data.tokenizers import TextTokenizer


def _check_index(index: int, length: int) -> int:
    """Python's own rule for sequences: -length <= index < length, as an IndexError."""
    index = check_int("index", index)
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a dataset of {length} items")
    return index % length


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
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() != 1:
            raise ValueError(
                f"ids must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}"
            )
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


class LinePairs(Dataset):
    """Pairs of consecutive non-empty lines as BERT inputs: [CLS] a [SEP] b [SEP].

    Lines are stripped of surrounding whitespace and empty lines are dropped, so pair i
    is (line i, line i + 1) of the remaining lines. With `negatives=True`, about half
    of the pairs (decided by a generator seeded with `seed`) get a random other line as
    their second line, and `is_next` is 0 for them: the next-sentence-prediction task
    of Devlin et al. (2019). A random line equal in text to the true next line is drawn
    again, so a negative is never secretly the right answer.

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
        check_int("max_length", max_length, low=5, hint="3 special tokens + 1 per line")
        self.lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(self.lines) < 2:
            raise ValueError(f"text has {len(self.lines)} non-empty lines; a pair needs at least 2")
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
                true_next = self.lines[pair + 1]
                while True:
                    other = int(torch.randint(0, len(self.lines), (1,), generator=generator))
                    if self.lines[other] != true_next:
                        break
                self.second_index[pair] = other

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
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
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
        check_int("n_tokens", n_tokens, low=1)
        check_int("max_per_work", max_per_work, low=1, allow_none=True)
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
