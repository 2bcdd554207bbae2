"""Two tokenizers behind one interface: characters and byte-level BPE.

Both turn text into a list of integer ids and back, exactly: `decode(encode(text)) ==
text` for every work of the corpus, whitespace and newlines included. Both carry the
same five special tokens, used by the pretraining objectives:

    [PAD]   fills a batch of short sequences up to the longest one
    [MASK]  hides a token the masked language model must predict (BERT)
    [CLS]   starts a sequence; its final vector summarises the whole sequence
    [SEP]   ends a segment, e.g. between the two sentences of a sentence pair
    [UNK]   stands for a character the character vocabulary does not contain

The BPE tokenizer is trained with the Hugging Face `tokenizers` library on the
training split's works only (Sennrich et al. 2016, byte-level as in GPT-2), so no
validation or test text leaks into its merges.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from sslm_lab.checks import check_choice, check_int
from sslm_lab.data.cache import data_dir, sha256_bytes
from sslm_lab.files import atomic_write_text
from sslm_lab.data.shakespeare import WORK_SEPARATOR, corpus_text, read_work, works_in_split

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[MASK]", "[CLS]", "[SEP]", "[UNK]")
# Every byte must be a token of its own, so any text can be encoded, plus the
# specials, plus at least one merge (otherwise it is not BPE at all).
MIN_BPE_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS) + 1
MAX_BPE_VOCAB_SIZE = 65536
DEFAULT_BPE_VOCAB_SIZE = 2048
# Settings that change what training produces; they are part of the cache key.
BPE_SETTINGS = {
    "model": "byte-level BPE",
    "add_prefix_space": False,
    "min_frequency": 2,
    "special_tokens": list(SPECIAL_TOKENS),
    "training_split": "train",
}


def _as_id_list(ids: Iterable[int]) -> list[int]:
    """Accept a list, a tuple or a 1-D tensor of ids."""
    if hasattr(ids, "tolist"):
        return ids.tolist()
    return [int(i) for i in ids]


class TextTokenizer(ABC):
    """The interface both tokenizers share.

    `special_ids` maps each of SPECIAL_TOKENS to its id; `id_to_token` and `tokens`
    give human-readable pieces for display (a BPE piece such as " the" shows its
    leading space, not the byte-level alias "Ġthe").
    """

    special_ids: dict[str, int]

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; no special tokens are added."""

    @abstractmethod
    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """Text of `ids` (a list or a 1-D tensor); specials appear as "[MASK]" etc."""

    @abstractmethod
    def id_to_token(self, token_id: int) -> str:
        """The readable piece of text that `token_id` stands for."""

    def tokens(self, text: str) -> list[str]:
        """`text` cut into its tokens' readable pieces; they join back to `text`."""
        return [self.id_to_token(token_id) for token_id in self.encode(text)]

    def _check_id(self, token_id: int) -> int:
        token_id = int(token_id)
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(
                f"token id {token_id} is out of range; ids run from 0 to {self.vocab_size - 1}"
            )
        return token_id

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """`ids` as a list, after checking that the smallest and largest are in range."""
        ids = _as_id_list(ids)
        if ids:
            self._check_id(min(ids))
            self._check_id(max(ids))
        return ids

    @property
    def pad_id(self) -> int:
        return self.special_ids["[PAD]"]

    @property
    def mask_id(self) -> int:
        return self.special_ids["[MASK]"]

    @property
    def cls_id(self) -> int:
        return self.special_ids["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self.special_ids["[SEP]"]

    @property
    def unk_id(self) -> int:
        return self.special_ids["[UNK]"]


class CharTokenizer(TextTokenizer):
    """One token per character.

    Vocabulary: the sorted characters, then the special tokens appended after them,
    so character ids do not depend on which specials exist.
    """

    def __init__(self, characters: Iterable[str]) -> None:
        self.characters: list[str] = sorted(set(characters))
        for character in self.characters:
            if len(character) != 1:
                raise ValueError(
                    f"character vocabulary entries must be single characters, got {character!r}"
                )
        self._id_of = {character: i for i, character in enumerate(self.characters)}
        self.special_ids = {
            token: len(self.characters) + k for k, token in enumerate(SPECIAL_TOKENS)
        }
        self._vocabulary = [*self.characters, *SPECIAL_TOKENS]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is every character that occurs in `text`."""
        return cls(set(text))

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    def encode(self, text: str, *, errors: str = "strict") -> list[int]:
        """Ids of the characters of `text`.

        errors="strict" raises ValueError on a character outside the vocabulary,
        naming it and its position; errors="unk" maps it to [UNK] instead.
        """
        check_choice("errors", errors, ("strict", "unk"))
        id_of = self._id_of
        try:
            return [id_of[character] for character in text]
        except KeyError:
            pass
        if errors == "unk":
            return [id_of.get(character, self.unk_id) for character in text]
        position, character = next((i, c) for i, c in enumerate(text) if c not in id_of)
        raise ValueError(
            f"character {character!r} (U+{ord(character):04X}) at position {position} is not in "
            f"the vocabulary of {len(self.characters)} characters; pass errors='unk' to map "
            "unknown characters to [UNK]"
        )

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i < len(self.characters)]
        return "".join([self._vocabulary[i] for i in ids])

    def id_to_token(self, token_id: int) -> str:
        return self._vocabulary[self._check_id(token_id)]

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (readable; one entry per character)."""
        state = {
            "type": "char",
            "characters": self.characters,
            "special_tokens": list(SPECIAL_TOKENS),
        }
        return atomic_write_text(path, json.dumps(state, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("type") != "char" or state.get("special_tokens") != list(SPECIAL_TOKENS):
            raise ValueError(f"{path} is not a character tokenizer saved by CharTokenizer.save")
        return cls(state["characters"])


def char_tokenizer() -> CharTokenizer:
    """The character tokenizer of the whole Shakespeare corpus (all 42 works)."""
    return CharTokenizer.from_text(corpus_text())


class BPETokenizer(TextTokenizer):
    """Byte-level BPE: text → UTF-8 bytes → merged byte pairs.

    `backend` is the `tokenizers.Tokenizer` doing the work; `hf` wraps it as a
    `transformers.PreTrainedTokenizerFast` for Hugging Face collators.
    """

    def __init__(self, backend: Tokenizer) -> None:
        self.backend = backend
        special_ids = {token: backend.token_to_id(token) for token in SPECIAL_TOKENS}
        missing = [token for token, token_id in special_ids.items() if token_id is None]
        if missing:
            raise ValueError(f"the BPE vocabulary lacks the special tokens {missing}")
        self.special_ids = special_ids
        self._hf: PreTrainedTokenizerFast | None = None

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode` for many texts at once, in parallel threads."""
        return [
            encoding.ids
            for encoding in self.backend.encode_batch(list(texts), add_special_tokens=False)
        ]

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id: int) -> str:
        return self.backend.decode([self._check_id(token_id)], skip_special_tokens=False)

    def tokens(self, text: str) -> list[str]:
        ids = self.encode(text)
        return self.backend.decode_batch(
            [[token_id] for token_id in ids], skip_special_tokens=False
        )

    @property
    def hf(self) -> PreTrainedTokenizerFast:
        """The same tokenizer as a `transformers.PreTrainedTokenizerFast`."""
        if self._hf is None:
            from transformers import PreTrainedTokenizerFast

            self._hf = PreTrainedTokenizerFast(
                tokenizer_object=self.backend,
                pad_token="[PAD]",
                mask_token="[MASK]",
                cls_token="[CLS]",
                sep_token="[SEP]",
                unk_token="[UNK]",
                # The default "clean up" deletes spaces before punctuation: not exact.
                clean_up_tokenization_spaces=False,
            )
        return self._hf

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer in the `tokenizers` JSON format."""
        return atomic_write_text(path, self.backend.to_str())

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        return cls(Tokenizer.from_file(str(path)))


def check_bpe_vocab_size(vocab_size: Any) -> int:
    """Return `vocab_size` if it is an int in [MIN_BPE_VOCAB_SIZE, MAX_BPE_VOCAB_SIZE]."""
    return check_int(
        "vocab_size",
        vocab_size,
        low=MIN_BPE_VOCAB_SIZE,
        high=MAX_BPE_VOCAB_SIZE,
        hint=f"256 byte tokens + {len(SPECIAL_TOKENS)} special tokens + at least one merge",
    )


def train_bpe(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE `tokenizers.Tokenizer` on `texts`.

    No prefix space is added and no normalizer is set, so decoding is exact.
    """
    check_bpe_vocab_size(vocab_size)
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=BPE_SETTINGS["add_prefix_space"], use_regex=True
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=BPE_SETTINGS["min_frequency"],
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 bytes from the start: every text is encodable, none needs [UNK].
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return backend


def bpe_training_texts() -> list[str]:
    """The texts BPE is trained on: the works of the training split, by file name."""
    return [read_work(work) for work in works_in_split(BPE_SETTINGS["training_split"])]


def bpe_cache_path(vocab_size: int, training_texts: Sequence[str] | None = None) -> Path:
    """`data_dir()/tokenizers/bpe-<key>-v<vocab_size>.json`.

    The 12-character key is the sha256 of the training texts and BPE_SETTINGS, so a
    changed corpus, split or setting never reuses a stale tokenizer.
    """
    if training_texts is None:
        training_texts = bpe_training_texts()
    key_source = (
        json.dumps(BPE_SETTINGS, sort_keys=True) + "\0" + WORK_SEPARATOR.join(training_texts)
    )
    key = sha256_bytes(key_source.encode("utf-8"))[:12]
    return data_dir() / "tokenizers" / f"bpe-{key}-v{vocab_size}.json"


def bpe_tokenizer(vocab_size: int = DEFAULT_BPE_VOCAB_SIZE) -> BPETokenizer:
    """The byte-level BPE tokenizer of the training works, trained once then cached.

    Training takes about 1 s for 2048 tokens on a laptop CPU; later calls load the
    cached JSON file.
    """
    check_bpe_vocab_size(vocab_size)
    texts = bpe_training_texts()
    path = bpe_cache_path(vocab_size, texts)
    if path.is_file():
        try:
            return BPETokenizer.load(path)
        except Exception as error:  # a truncated or foreign file: train afresh
            warnings.warn(
                f"cannot load the cached tokenizer {path} ({error}); training it again",
                stacklevel=2,
            )
    backend = train_bpe(texts, vocab_size)
    if backend.get_vocab_size() < vocab_size:
        warnings.warn(
            f"BPE training stopped at {backend.get_vocab_size()} tokens, below vocab_size={vocab_size}: "
            "the training text has no more pairs seen at least twice",
            stacklevel=2,
        )
    tokenizer = BPETokenizer(backend)
    tokenizer.save(path)
    return tokenizer
