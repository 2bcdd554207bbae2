"""Masks: which tokens a masked language model must predict, and which ones it may look at.

BERT (Devlin et al., 2019) selects 15 % of the tokens. Of those, 80 % are replaced by
`[MASK]`, 10 % by a random token and 10 % are left unchanged; the model must predict
the original token at every selected position. The random and unchanged cases exist
because `[MASK]` never appears when the model is later fine-tuned: the model cannot
assume that only `[MASK]` positions matter, so it keeps a good representation of
every token.

Three ways to choose the selected positions (`strategy`):

- "token": every token independently with probability `mask_rate`;
- "whole_word": every *word* independently with probability `mask_rate`, and all of
  its BPE pieces together (a model can't cheat by reading "Ros" "encr" to fill "antz");
- "span": contiguous spans whose lengths follow a geometric distribution (SpanBERT,
  Joshi et al., 2020: p = 0.2, clipped at 10 tokens) until `mask_rate` of the tokens
  are covered.

Special tokens (`[CLS]`, `[SEP]`, `[PAD]`, ...) are never selected. Labels hold the
original id at selected positions and `IGNORE_INDEX` everywhere else, the value
`torch.nn.functional.cross_entropy` skips by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

IGNORE_INDEX = -100
STRATEGIES = ("token", "whole_word", "span")


def _check_fraction(name: str, value: float, *, closed_low: bool = False) -> None:
    low_ok = value >= 0 if closed_low else value > 0
    if not (low_ok and value < 1) or isinstance(value, bool):
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"{name}={value!r} is not allowed; it must lie in {interval}")


def special_tokens_mask(input_ids: torch.Tensor, special_ids: Iterable[int]) -> torch.Tensor:
    """True where `input_ids` holds one of `special_ids`. Same shape as `input_ids`."""
    special = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    return torch.isin(input_ids, special)


def select_tokens(
    input_ids: torch.Tensor,
    mask_rate: float,
    special_ids: Iterable[int],
    *,
    strategy: str = "token",
    word_ids: torch.Tensor | None = None,
    mean_span_length: float = 3.0,
    max_span_length: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean (batch, seq) of the positions the model must predict; specials never chosen.

    word_ids: (batch, seq) integer word index of each token (any value for specials),
    required for "whole_word": tokens sharing a word index in a row are masked together.
    """
    _check_fraction("mask_rate", mask_rate)
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy={strategy!r} is not known; choose one of {', '.join(STRATEGIES)}"
        )
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    special = special_tokens_mask(input_ids, special_ids)
    device = input_ids.device

    if strategy == "token":
        draws = torch.rand(input_ids.shape, generator=generator, device=device)
        return (draws < mask_rate) & ~special

    if strategy == "whole_word":
        if word_ids is None or word_ids.shape != input_ids.shape:
            given = None if word_ids is None else tuple(word_ids.shape)
            raise ValueError(
                f"strategy='whole_word' needs word_ids of shape {tuple(input_ids.shape)}; got {given}"
            )
        # One draw per (row, word): every token looks up the draw of its own word.
        words = word_ids.clamp(min=0).long()
        draws = torch.rand(
            (input_ids.shape[0], int(words.max()) + 1), generator=generator, device=device
        )
        return (torch.gather(draws, 1, words) < mask_rate) & ~special

    # "span": lengths ~ Geometric(p) with mean 1/p, clipped; starts uniform over the row.
    p = 1.0 / mean_span_length
    selected = torch.zeros_like(special)
    for row in range(input_ids.shape[0]):
        candidates = int((~special[row]).sum())
        budget = max(1, round(mask_rate * candidates)) if candidates else 0
        while int(selected[row].sum()) < budget:
            uniform = torch.rand((), generator=generator, device=device).clamp_min(1e-12)
            length = int(torch.ceil(torch.log(uniform) / torch.log1p(torch.tensor(-p))))
            length = max(1, min(length, max_span_length, budget - int(selected[row].sum())))
            start = int(
                torch.randint(
                    0, input_ids.shape[1] - length + 1, (), generator=generator, device=device
                )
            )
            selected[row, start : start + length] |= ~special[row, start : start + length]
    return selected


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    mask_rate: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    strategy: str = "token",
    word_ids: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking. Returns (masked input_ids, labels), both (batch, seq) int64.

    Of the selected positions, `mask_fraction` become `mask_id`, `random_fraction` a
    random non-special token, and the rest keep their token. Deterministic given
    `generator`.
    """
    _check_fraction("mask_fraction", mask_fraction, closed_low=True)
    _check_fraction("random_fraction", random_fraction, closed_low=True)
    if mask_fraction + random_fraction > 1:
        raise ValueError(
            f"mask_fraction + random_fraction = {mask_fraction + random_fraction} exceeds 1"
        )
    special_ids = sorted(set(special_ids))
    selected = select_tokens(
        input_ids, mask_rate, special_ids, strategy=strategy, word_ids=word_ids, generator=generator
    )
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

    # One uniform draw per position decides its fate: [0, m) mask, [m, m + r) random, else keep.
    fate = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = selected & (fate < mask_fraction)
    to_random = selected & (fate >= mask_fraction) & (fate < mask_fraction + random_fraction)

    # Random replacements come from the ordinary (non-special) vocabulary only.
    ordinary = torch.ones(vocab_size, dtype=torch.bool, device=input_ids.device)
    ordinary[special_ids] = False
    ordinary_ids = ordinary.nonzero().squeeze(1)
    picks = torch.randint(
        len(ordinary_ids), input_ids.shape, generator=generator, device=input_ids.device
    )
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(to_random, ordinary_ids[picks], masked)
    return masked, labels


def word_ids_from_pieces(
    input_ids: torch.Tensor, pieces: Sequence[str], special_ids: Iterable[int] = ()
) -> torch.Tensor:
    """(batch, seq) int64 word index of each token, for `strategy="whole_word"`.

    pieces: the readable text of every id in the vocabulary (`tokenizer.id_to_token`).
    A word is a run of tokens with no whitespace between them, so a token starts a new
    word when its text begins with whitespace, when the token before it ends with
    whitespace, or when it opens the row. Byte-level BPE keeps the space in front of a
    word inside the word's first piece (" Rosencrantz" → " Ros" "enc" "rantz"), which
    is why the first rule is enough for most words. Special tokens are words of their
    own and end the word before them. Indices count from 0 in each row.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    if len(pieces) <= int(input_ids.max()):
        raise ValueError(
            f"pieces has {len(pieces)} entries but input_ids holds id {int(input_ids.max())}; "
            "pass the text of every id in the vocabulary"
        )
    starts_with_space = torch.tensor([p[:1].isspace() for p in pieces], device=input_ids.device)
    ends_with_space = torch.tensor([p[-1:].isspace() for p in pieces], device=input_ids.device)
    special = special_tokens_mask(input_ids, special_ids)
    breaks_after = ends_with_space[input_ids] | special  # (batch, seq)
    starts = starts_with_space[input_ids] | special
    starts[:, 1:] |= breaks_after[:, :-1]
    starts[:, 0] = True
    return starts.long().cumsum(dim=1) - 1


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(seq, seq) boolean: True where query position i may attend to key position j (j <= i)."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(batch, seq) attention_mask from sequence lengths: 1 for real tokens, 0 for padding."""
    positions = torch.arange(seq_len, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).long()
