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
- "span": contiguous spans until `mask_rate` of the tokens are covered, with SpanBERT's
  span lengths (Joshi et al., 2020): geometric with p = 0.2, truncated to 1..10 tokens,
  so 3.8 tokens on average (`span_lengths`).

Special tokens (`[CLS]`, `[SEP]`, `[PAD]`, ...) are never selected. Labels hold the
original id at selected positions and `IGNORE_INDEX` everywhere else, the value
`torch.nn.functional.cross_entropy` skips by default.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import torch

from sslm_lab.checks import ArgumentError, check_choice, check_int, check_real, invalid

IGNORE_INDEX = -100
MASK_RATE = 0.15  # the share of tokens BERT selects
STRATEGIES = ("token", "whole_word", "span")
SPANBERT_P = 0.2  # SpanBERT's geometric parameter...
SPANBERT_MAX_LENGTH = 10  # ...and its longest span


def span_lengths(
    count: int,
    p: float = SPANBERT_P,
    max_length: int = SPANBERT_MAX_LENGTH,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`count` span lengths from a geometric distribution truncated to 1..max_length.

    P(length = k) is proportional to (1 - p)^(k - 1) · p for k = 1 .. max_length: a long
    span is drawn again rather than cut, which gives SpanBERT's mean of 3.8 at p = 0.2
    and max_length = 10. Drawn by inverting the truncated distribution's CDF. (count,) int64.
    """
    check_int("count", count, low=0)
    p = check_real("p", p, low=0, high=1, low_open=True)
    max_length = check_int("max_length", max_length, low=1)
    uniform = torch.rand(count, generator=generator, dtype=torch.float64)
    kept_mass = 1.0 - (1.0 - p) ** max_length  # P(length <= max_length) before truncation
    if p == 1.0:
        return torch.ones(count, dtype=torch.long)
    lengths = torch.ceil(torch.log1p(-uniform * kept_mass) / math.log1p(-p))
    return lengths.clamp(1, max_length).long()  # the clamp only guards float rounding


def special_tokens_mask(input_ids: torch.Tensor, special_ids: Iterable[int]) -> torch.Tensor:
    """True where `input_ids` holds one of `special_ids`. Same shape as `input_ids`.

    One comparison per special id (there are a handful) rather than a tensor of them: a
    tensor built from a list on a GPU is a copy from the host that waits for the GPU.
    """
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for special_id in sorted(set(special_ids)):
        special |= input_ids == special_id
    return special


def select_tokens(
    input_ids: torch.Tensor,
    mask_rate: float,
    special_ids: Iterable[int],
    *,
    strategy: str = "token",
    word_ids: torch.Tensor | None = None,
    span_p: float = SPANBERT_P,
    max_span_length: int = SPANBERT_MAX_LENGTH,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean (batch, seq) of the positions the model must predict; specials never chosen.

    word_ids: (batch, seq) integer word index of each token (any value for specials),
    required for "whole_word": tokens sharing a word index in a row are masked together.
    span_p, max_span_length: the span lengths of "span" (see `span_lengths`).
    """
    check_real("mask_rate", mask_rate, low=0, high=1, low_open=True, high_open=True)
    check_choice("strategy", strategy, STRATEGIES)
    check_real("span_p", span_p, low=0, high=1, low_open=True)
    check_int("max_span_length", max_span_length, low=1)
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

    # "span": spans at uniform starts until the row's budget is covered. The budget is
    # mask_rate × candidates rounded up or down at random, so that its mean is exactly
    # mask_rate × candidates even when that is below one token (always rounding up would
    # select 3 % of a short row at mask_rate = 0.01).
    selected = torch.zeros_like(special)
    for row in range(input_ids.shape[0]):
        candidates = int((~special[row]).sum())
        share = mask_rate * candidates
        extra = torch.rand((), generator=generator, device=device) < share - math.floor(share)
        budget = math.floor(share) + int(extra)
        while int(selected[row].sum()) < budget:
            (length,) = span_lengths(1, span_p, max_span_length, generator).tolist()
            length = min(length, budget - int(selected[row].sum()), input_ids.shape[1])
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
    mask_rate: float = MASK_RATE,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    strategy: str = "token",
    word_ids: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking. Returns (masked input_ids, labels), both (batch, seq) int64.

    Of the selected positions, `mask_fraction` become `mask_id`, `random_fraction` a
    random non-special token, and the rest keep their token. Both lie in [0, 1] and add up
    to at most 1: mask_fraction=1 hides every selected token, an ablation BERT's authors
    ran. Deterministic given `generator`.
    """
    check_real("mask_fraction", mask_fraction, low=0, high=1)
    check_real("random_fraction", random_fraction, low=0, high=1)
    if mask_fraction + random_fraction > 1:
        raise ArgumentError(
            f"mask_fraction + random_fraction = {mask_fraction + random_fraction} exceeds 1: "
            "they are shares of the same selected tokens"
        )
    check_int("vocab_size", vocab_size, low=1)
    check_int("mask_id", mask_id, low=0, high=vocab_size - 1)
    special_ids = sorted(set(special_ids))
    in_vocabulary = all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) and 0 <= i < vocab_size
        for i in special_ids
    )
    if not in_vocabulary or len(special_ids) >= vocab_size:
        allowed = f"fewer than vocab_size={vocab_size} integer ids, each in 0..{vocab_size - 1}"
        raise invalid("special_ids", special_ids, allowed)
    selected = select_tokens(
        input_ids, mask_rate, special_ids, strategy=strategy, word_ids=word_ids, generator=generator
    )
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

    # One uniform draw per position decides its fate: [0, m) mask, [m, m + r) random, else keep.
    fate = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = selected & (fate < mask_fraction)
    to_random = selected & (fate >= mask_fraction) & (fate < mask_fraction + random_fraction)

    # Random replacements come from the ordinary (non-special) vocabulary only: draw the
    # k-th ordinary id, then step over every special id at or below it. Counting them
    # with comparisons (specials are few) instead of listing the ordinary ids keeps the
    # masking free of host syncs on a GPU, and gives the same ids from the same draws.
    picks = torch.randint(
        vocab_size - len(special_ids), input_ids.shape, generator=generator, device=input_ids.device
    )
    random_ids = picks.clone()
    for below, special_id in enumerate(special_ids):
        random_ids += picks >= special_id - below  # special_id - below ordinary ids precede it
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def word_ids_from_pieces(
    input_ids: torch.Tensor,
    pieces: Sequence[str],
    special_ids: Iterable[int] = (),
    *,
    continuation_prefix: str | None = None,
) -> torch.Tensor:
    """(batch, seq) int64 word index of each token, for `strategy="whole_word"`.

    pieces: the readable text of every id in the vocabulary (`tokenizer.id_to_token`, or
    `convert_ids_to_tokens` of a `transformers` tokenizer). Two ways to mark words:

    - whitespace (continuation_prefix=None: byte-level BPE, characters): a word is a run
      of tokens with no whitespace between them, so a token starts a new word when its
      text begins with whitespace, when the token before it ends with whitespace, or when
      it opens the row. Byte-level BPE keeps the space in front of a word inside the
      word's first piece (" Rosencrantz" → " Ros" "enc" "rantz").
    - a continuation prefix (WordPiece, as BERT and MiniLM: continuation_prefix="##"):
      pieces carry no spaces; a piece continues the word before it when it starts with
      the prefix ("ros" "##enc" "##rant" "##z") and starts a new word otherwise.

    Special tokens are words of their own and end the word before them. Indices count
    from 0 in each row.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    if len(pieces) <= int(input_ids.max()):
        raise ValueError(
            f"pieces has {len(pieces)} entries but input_ids holds id {int(input_ids.max())}; "
            "pass the text of every id in the vocabulary"
        )
    device = input_ids.device
    special = special_tokens_mask(input_ids, special_ids)
    if continuation_prefix is not None:
        if not isinstance(continuation_prefix, str) or not continuation_prefix:
            raise ArgumentError(
                f"continuation_prefix={continuation_prefix!r} is not allowed; allowed: a "
                "non-empty string such as '##' (WordPiece), or None for whitespace words"
            )
        continues = torch.tensor([p.startswith(continuation_prefix) for p in pieces], device=device)
        starts = ~continues[input_ids] | special
        starts[:, 1:] |= special[:, :-1]
        starts[:, 0] = True
        return starts.long().cumsum(dim=1) - 1
    if not any(p[:1].isspace() or p[-1:].isspace() for p in pieces) and any(
        p.startswith("##") for p in pieces
    ):
        raise ArgumentError(
            "these pieces have no whitespace but some start with '##': a WordPiece "
            "vocabulary, whose words the whitespace rule cannot find (it would make every "
            "row one word); pass continuation_prefix='##'"
        )
    starts_with_space = torch.tensor([p[:1].isspace() for p in pieces], device=device)
    ends_with_space = torch.tensor([p[-1:].isspace() for p in pieces], device=device)
    breaks_after = ends_with_space[input_ids] | special  # (batch, seq)
    starts = starts_with_space[input_ids] | special
    starts[:, 1:] |= breaks_after[:, :-1]
    starts[:, 0] = True
    return starts.long().cumsum(dim=1) - 1


# ---------------------------------------------------------------------------- attention masks
#
# Attention masks follow the `transformers` convention: `attention_mask` has shape
# (batch, seq) with 1 for a real token and 0 for padding. Padding hides keys; the causal
# mask hides the future.


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(seq, seq) boolean: True where query position i may attend to key position j (j <= i)."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(batch, seq) attention_mask from sequence lengths: 1 for real tokens, 0 for padding."""
    positions = torch.arange(seq_len, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).long()


def validate_attention_mask(attention_mask: torch.Tensor, batch: int, seq: int) -> torch.Tensor:
    """Check a padding mask and return it as bool, shape (batch, seq), True = real token.

    Accepts bool, or integer/float holding only 0 and 1 (the `transformers` convention).
    A bool mask of the right shape is returned as is, so calling this again is free (and a
    bool mask skips the 0/1 value check, which costs a synchronisation on a GPU).
    """
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor; got {type(attention_mask)}")
    if tuple(attention_mask.shape) != (batch, seq):
        raise ValueError(
            f"attention_mask must have shape (batch, seq) = {(batch, seq)}, matching the input; "
            f"got {tuple(attention_mask.shape)}"
        )
    if attention_mask.dtype == torch.bool:
        return attention_mask
    if attention_mask.is_complex():
        raise TypeError(
            f"attention_mask must be bool, integer or float (1 = real token, 0 = padding); "
            f"got dtype {attention_mask.dtype}"
        )
    is_binary = (attention_mask == 0) | (attention_mask == 1)
    if not bool(is_binary.all()):
        bad = attention_mask[~is_binary].unique()[:5].tolist()
        raise ValueError(
            f"attention_mask of dtype {attention_mask.dtype} must hold only 0 (padding) and "
            f"1 (real token); found {bad}. An additive mask (0 / -inf) is not accepted here."
        )
    return attention_mask == 1


def allowed_keys(
    key_mask: torch.Tensor | None,
    causal: bool,
    seq: int,
    device: torch.device,
    past: int = 0,
) -> torch.Tensor | None:
    """Combine padding and causal masks: bool (batch or 1, 1, seq, past + seq), True = may attend.

    `past` counts keys cached before these `seq` queries (see `transformer.KVCache`): query
    i then sits at position past + i and, under the causal mask, sees keys 0 .. past + i.
    key_mask, if given, covers all past + seq keys. Returns None when nothing is masked, so
    the caller can take the fastest route.
    """
    if key_mask is None and not causal:
        return None
    allowed = torch.ones(1, 1, seq, past + seq, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed & causal_mask(past + seq, device)[past:]  # the last seq rows
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]  # (batch, 1, 1, keys): hide padded keys
    return allowed
