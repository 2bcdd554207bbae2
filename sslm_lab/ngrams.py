"""Character n-gram baselines: the bits per character every language model must beat.

An n-gram model predicts the next character from the previous n - 1 characters by
counting, with add-k smoothing so an unseen continuation is unlikely but possible:

    P(c | context) = (count(context, c) + k) / (count(context) + k * V)

where V is the vocabulary size. Its quality on held-out text is the cross-entropy in
bits per character (bpc): -mean(log2 P(next char | context)). A uniform guess over V
characters scores log2(V); English text compresses to roughly 1 bpc with the best
models, so everything in between tells how much structure a model has found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from sslm_lab.checks import check_int, check_real


def char_ids(text: str, alphabet: Sequence[str]) -> np.ndarray:
    """Map each character of `text` to its index in `alphabet`, as an int64 array."""
    index = {char: i for i, char in enumerate(alphabet)}
    try:
        return np.fromiter((index[char] for char in text), dtype=np.int64, count=len(text))
    except KeyError as error:
        raise ValueError(f"character {error.args[0]!r} is not in the alphabet") from None


def _ngram_codes(ids: np.ndarray, order: int, vocab_size: int, start: int) -> np.ndarray:
    """One integer per position i >= start encoding the window ids[i - order + 1 : i + 1]."""
    codes = np.zeros(len(ids) - start, dtype=np.int64)
    for offset in range(order - 1, -1, -1):  # oldest character first: the most significant digit
        codes = codes * vocab_size + ids[start - offset : len(ids) - offset]
    return codes


def add_k_probabilities(counts: np.ndarray, k: float) -> np.ndarray:
    """Add-k smoothed next-character probabilities from counts.

    counts: (..., V), how often each of the V characters followed each context. Returns
    the same shape, (count + k) / (row total + k·V): every row sums to 1 and no
    character has probability 0.
    """
    k = check_real("k", k, low=0, low_open=True, hint="add-k smoothing needs k > 0")
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + k) / (counts.sum(axis=-1, keepdims=True) + k * counts.shape[-1])


def bits_per_char(probabilities: np.ndarray) -> float:
    """Cross-entropy in bits per character: -mean(log2 p) of the probabilities a model
    gave the characters that actually came."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.size == 0 or not ((probabilities > 0) & (probabilities <= 1)).all():
        raise ValueError("probabilities must be a non-empty array of numbers in (0, 1]")
    return float(-np.log2(probabilities).mean())


def ngram_bits_per_char(
    train_ids: np.ndarray,
    eval_ids: np.ndarray,
    order: int,
    vocab_size: int,
    k: float = 0.01,
    start: int | None = None,
) -> float:
    """Bits per character of an add-k smoothed `order`-gram model on `eval_ids`.

    train_ids, eval_ids: 1-D int arrays of character ids in [0, vocab_size).
    Positions before `start` (default: order - 1) are not scored, so models of
    different orders can be compared on exactly the same characters.
    """
    order = check_int("order", order, low=1)
    vocab_size = check_int("vocab_size", vocab_size, low=1)
    k = check_real("k", k, low=0, low_open=True, hint="add-k smoothing needs k > 0")
    start = order - 1 if start is None else start
    check_int(
        "start", start, low=order - 1, hint=f"order={order} needs {order - 1} characters of context"
    )
    if vocab_size**order > 2**31:
        raise ValueError(f"order={order} with vocab_size={vocab_size} needs too many counters")
    counts = np.bincount(
        _ngram_codes(train_ids, order, vocab_size, order - 1), minlength=vocab_size**order
    )
    table = add_k_probabilities(counts.reshape(-1, vocab_size), k)  # (V ** (order - 1), V)
    codes = _ngram_codes(eval_ids, order, vocab_size, start)
    return bits_per_char(table.reshape(-1)[codes])


def ngram_baselines(
    train_text: str,
    eval_text: str,
    alphabet: Sequence[str],
    orders: Iterable[int] = (1, 2, 3),
    k: float = 0.01,
) -> dict[int, float]:
    """Bits per character on `eval_text` for each n-gram order, all scored on the same characters."""
    orders = list(orders)
    train_ids, eval_ids = char_ids(train_text, alphabet), char_ids(eval_text, alphabet)
    start = max(orders) - 1
    return {
        order: ngram_bits_per_char(train_ids, eval_ids, order, len(alphabet), k=k, start=start)
        for order in orders
    }
