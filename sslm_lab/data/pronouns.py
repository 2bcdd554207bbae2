"""Which form does the gap need? The case of a hidden pronoun, labelled by the text itself.

English pronouns change form with their role: *I* see, he sees *me*. Hide the pronoun
and the form is no longer visible; what is left to decide it is the context:

    words   Give   [MASK]   thy   hand   ,   Romeo   .        object:  me
    words   Now    [MASK]   will  speak  .                    subject: I

Every spoken line of a play (`sslm_lab.data.speeches`) that holds one of the five pairs
in PAIRS gives one example per occurrence: the line's words, where the pronoun stood and
which form it was (0 subject, 1 object). Nobody had to write a label. *She*/*her* is
left out: *her* is also the possessive ("her father"), so its form does not say its case;
*you* is the same word in both cases.

Why this task. Whether the gap takes the subject or the object form depends on where it
stands and on its neighbours ("to [MASK]", "[MASK] am"), so the order of the words
matters: a bag of the line's other words keeps little of that, and a model that reads
the line in order can do better. Every example is one line of a play of one split, so
the test lines come from plays no encoder saw.

`balanced` keeps as many subject as object forms of each pair, so always answering one
case scores 0.5 and the pair itself says nothing about the case. `encode_gaps` writes
each line as model input: [CLS], the pieces before the gap, one [MASK], the pieces
after it, cut around the gap to `max_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sslm_lab.checks import check_int, invalid
from sslm_lab.data.names import words
from sslm_lab.data.shakespeare import Work, read_work, works_in_split
from sslm_lab.data.speeches import speeches
from sslm_lab.data.tokenizers import TextTokenizer

PAIRS = (("I", "me"), ("he", "him"), ("we", "us"), ("they", "them"), ("thou", "thee"))
CASES = ("subject", "object")  # label ids 0, 1
# lower-case form -> (pair index, case); "I" is matched as written (see `_form_of`)
_FORMS = {
    form.lower(): (pair, case)
    for pair, forms in enumerate(PAIRS)
    for case, form in enumerate(forms)
}


@dataclass(frozen=True)
class HiddenPronoun:
    """One pronoun in one spoken line: the line's words, where it stands, its form."""

    work: str  # the play's title
    words: tuple[str, ...]  # the line's words and marks (`names.words`), the pronoun among them
    position: int  # the pronoun's index in `words`
    pair: int  # index into PAIRS
    label: int  # 0 subject, 1 object (index into CASES)

    @property
    def pronoun(self) -> str:
        return self.words[self.position]

    def context(self) -> list[str]:
        """The line's other words: what a bag-of-words baseline may read."""
        return [*self.words[: self.position], *self.words[self.position + 1 :]]

    def neighbours(self) -> tuple[str, str]:
        """The word before the gap and the word after it ("" at the line's ends)."""
        before = self.words[self.position - 1] if self.position > 0 else ""
        after = self.words[self.position + 1] if self.position + 1 < len(self.words) else ""
        return before, after


def _form_of(word: str) -> tuple[int, int] | None:
    """(pair, case) of a pronoun of PAIRS, else None. "I" counts only as a capital: a
    lower-case "i" is not the pronoun (the texts write it capitalised)."""
    if word.lower() == "i":
        return _FORMS["i"] if word == "I" else None
    return _FORMS.get(word.lower())


def hidden_pronouns(split: str, works: list[Work] | None = None) -> list[HiddenPronoun]:
    """Every pronoun of PAIRS in the spoken lines of `split`'s plays ('train', 'val',
    'test'), or of `works`, in the order of the texts: one example per occurrence."""
    rows = []
    for work in works if works is not None else works_in_split(split):
        for speech in speeches(read_work(work)):
            for line in speech.text.splitlines():
                line_words = tuple(words(line))
                for position, word in enumerate(line_words):
                    form = _form_of(word)
                    if form is not None:
                        rows.append(HiddenPronoun(work.title, line_words, position, *form))
    return rows


def balanced(
    rows: list[HiddenPronoun], per_pair_and_case: int, seed: int = 0
) -> list[HiddenPronoun]:
    """As many subject as object forms of each pair: `per_pair_and_case` of each, or all of
    the rarer form where there are fewer, drawn by `seed`; returned in their order in `rows`."""
    check_int("per_pair_and_case", per_pair_and_case, low=1)
    check_int("seed", seed, low=0)
    if not isinstance(rows, list) or not all(isinstance(r, HiddenPronoun) for r in rows):
        raise invalid("type(rows)", type(rows), "a list of HiddenPronoun, from hidden_pronouns")
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for pair in range(len(PAIRS)):
        groups = [
            [i for i, r in enumerate(rows) if r.pair == pair and r.label == c] for c in (0, 1)
        ]
        count = min(per_pair_and_case, *(len(group) for group in groups))
        for group in groups:
            order = torch.randperm(len(group), generator=generator)[:count]
            kept += [group[i] for i in order.tolist()]
    return [rows[i] for i in sorted(kept)]


@dataclass(frozen=True)
class EncodedGaps:
    """Lines with their pronoun hidden, as model input: one row per line, [CLS] first."""

    ids: Tensor  # (rows, max_tokens) int64, padded with the tokenizer's pad id
    attention_mask: Tensor  # (rows, max_tokens) int64, 1 on real pieces
    gap: Tensor  # (rows,) int64: where the [MASK] piece stands
    labels: Tensor  # (rows,) int64: 0 subject, 1 object


def _spelled(tokens: list[str], line_start: bool) -> str:
    """Words and marks as running text: a space before each word but a line's first, none
    before a mark (how the tokenizer met them in the plays)."""
    return "".join(
        t if (i == 0 and line_start) or not t[0].isalnum() else " " + t
        for i, t in enumerate(tokens)
    )


def encode_gaps(
    rows: list[HiddenPronoun], tokenizer: TextTokenizer, max_tokens: int
) -> EncodedGaps:
    """[CLS] + the pieces before the pronoun + [MASK] + the pieces after it, for each row.

    A line too long for `max_tokens` is cut around the gap: the pieces after it are cut
    first down to half of the room, then the pieces before it, so the gap always fits.
    """
    check_int("max_tokens", max_tokens, low=3)
    if not isinstance(tokenizer, TextTokenizer):
        raise invalid("type(tokenizer)", type(tokenizer), "an sslm_lab TextTokenizer")
    ids = torch.full((len(rows), max_tokens), tokenizer.pad_id, dtype=torch.long)
    gap = torch.zeros(len(rows), dtype=torch.long)
    room = max_tokens - 2  # [CLS] and [MASK]
    for index, row in enumerate(rows):
        before = tokenizer.encode(_spelled(list(row.words[: row.position]), line_start=True))
        after = tokenizer.encode(_spelled(list(row.words[row.position + 1 :]), line_start=False))
        after = after[: max(room - len(before), room // 2)]
        before = before[max(0, len(before) - (room - len(after))) :]
        pieces = [tokenizer.cls_id, *before, tokenizer.mask_id, *after]
        ids[index, : len(pieces)] = torch.tensor(pieces)
        gap[index] = 1 + len(before)
    labels = torch.tensor([row.label for row in rows], dtype=torch.long)
    return EncodedGaps(ids, (ids != tokenizer.pad_id).long(), gap, labels)
