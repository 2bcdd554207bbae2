"""Contrastive learning: tell the positive apart from the negatives.

Two views of the same thing (two augmentations of a digit, two dropout masks over a
line) should map close together, views of different things far apart. Every loss here
is a softmax classifier whose classes are candidates and whose right answer is the
positive, so its loss is a cross-entropy and its accuracy says how often the positive
wins:

    contrastive_logits   query-candidate cosine similarities / τ, positives on the diagonal
    info_nce             van den Oord et al. 2018; candidates: the batch's keys (+ a queue)
    symmetric_info_nce   both directions averaged, as in CLIP (Radford et al. 2021)
    nt_xent              SimCLR's loss (Chen et al. 2020): 2N views, 2N - 2 negatives each
    SimCSE               an encoder read twice with dropout on, InfoNCE between the two
                         readings (Gao et al. 2021); `simcse_objective` for the trainer
    KeyQueue             MoCo's FIFO of past keys, extra negatives (He et al. 2020)
    momentum_update      MoCo's key encoder: an exponential moving average of the online one
    alignment, uniformity  the two halves of what the loss asks for (Wang & Isola 2020)
    cpc_info_nce         CPC: predict the code k steps ahead among other positions and
                         sequences (van den Oord et al. 2018)

Embeddings are L2-normalised inside every function but `cpc_info_nce`, whose scores are
CPC's log-bilinear dot products, so scaling a row changes nothing (a zero row has no
direction: its similarities are 0). The temperature τ scales cosine similarities in
[-1, 1] before the softmax: small τ makes the hardest negatives dominate the loss.

Embeddings are checked by type, dtype, device and shape, which costs nothing; their values
are not scanned, since a model makes them at every step: NaN in, NaN out, and the trainer
stops on a loss that is not finite. Token ids are checked where they enter, in `SimCSE`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.checks import check_int, check_real, check_token_ids, invalid
from sslm_lab.heads import pool
from sslm_lab.masking import validate_attention_mask
from sslm_lab.transformer import TransformerModel

# Below it the softmax is already a hard maximum (a cosine gap of 0.01 weighs e^-100), and
# 2 / τ, the widest gap between two logits, stays finite even in half precision.
MIN_TEMPERATURE = 1e-4


def contrastive_logits(
    queries: Tensor, keys: Tensor, temperature: float, negatives: Tensor | None = None
) -> Tensor:
    """Cosine similarity of every query to every candidate, divided by the temperature.

    queries, keys: (batch, dim), keys[i] being the positive of queries[i]; the other keys
    are its in-batch negatives. negatives: (K, dim) extra candidates for every query (a
    MoCo queue), or None; they take the keys' dtype, so a float32 queue serves keys made
    under autocast. Returns (batch, batch + K); the positives are on the diagonal.
    """
    temperature = _check_temperature(temperature)
    _check_views(queries, keys, ("queries", "keys"))
    candidates = keys
    if negatives is not None:
        _check_embeddings("negatives", negatives)
        if negatives.size(1) != keys.size(1):
            raise invalid(
                "negatives.shape", tuple(negatives.shape), f"(K, {keys.size(1)}), like the keys"
            )
        if negatives.device != keys.device:
            raise invalid("negatives.device", str(negatives.device), f"the keys', {keys.device}")
        candidates = torch.cat([keys, negatives.to(keys.dtype)])  # (batch + K, dim)
    return F.normalize(queries, dim=1) @ F.normalize(candidates, dim=1).T / temperature


def info_nce(
    queries: Tensor, keys: Tensor, temperature: float = 0.1, negatives: Tensor | None = None
) -> Tensor:
    """InfoNCE: mean over i of -log( e^{s(q_i, k_i)/τ} / Σ_candidates e^{s(q_i, c)/τ} ).

    s is the cosine similarity; the candidates of q_i are all the keys of the batch (its
    positive k_i and batch - 1 negatives) and the `negatives` (K, dim), if given. With N
    candidates the loss of a model that has learned nothing is log N, and
    log N - loss is a lower bound on the mutual information of the two views (van den
    Oord et al. 2018). MoCo scores only the queue as negatives; keeping the batch's own
    keys too changes K by batch - 1 and makes queue size 0 plain in-batch InfoNCE.
    """
    logits = contrastive_logits(queries, keys, temperature, negatives)  # (batch, batch + K)
    return F.cross_entropy(logits, torch.arange(len(queries), device=logits.device))


def symmetric_info_nce(first: Tensor, second: Tensor, temperature: float = 0.1) -> Tensor:
    """InfoNCE from the first view to the second and back, averaged (CLIP's loss).

    first, second: (batch, dim). Each direction has batch - 1 in-batch negatives.
    """
    return (info_nce(first, second, temperature) + info_nce(second, first, temperature)) / 2


def nt_xent(first: Tensor, second: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy (Chen et al. 2020).

    first, second: (batch, dim), two augmented views of the same batch. All 2·batch views
    are anchors; the positive of view i is its partner, and its negatives are the other
    2·batch - 2 views, from both halves. The loss is the mean over all 2·batch anchors.
    """
    temperature = _check_temperature(temperature)
    _check_views(first, second, ("first", "second"))
    batch = len(first)
    views = F.normalize(torch.cat([first, second]), dim=1)  # (2 batch, dim)
    logits = views @ views.T / temperature  # (2 batch, 2 batch)
    self_pairs = torch.eye(2 * batch, dtype=torch.bool, device=views.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))  # a view is not its own candidate
    partners = torch.arange(2 * batch, device=views.device).roll(batch)  # i <-> i + batch
    return F.cross_entropy(logits, partners)


class SimCSE(nn.Module):
    """Unsupervised SimCSE (Gao et al. 2021): the same lines read twice by one encoder.

    In training mode each reading draws its own dropout masks, and that is the only
    difference between the two views: InfoNCE asks each line's first reading to find its
    second among the batch's (in eval mode the two readings are equal). A line's embedding
    is the mean of the body's last hidden states over its real tokens, so every line needs
    one; its ids are checked against the vocabulary on the way in.

    encoder: any sslm_lab Transformer model; SimCSE uses its body alone (a `MaskedLM`
    keeps the head a checkpoint needs, which gets no gradient). forward(input_ids,
    attention_mask) -> the loss.
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.05) -> None:
        super().__init__()
        if not isinstance(encoder, TransformerModel):
            raise invalid("type(encoder)", type(encoder), "an sslm_lab Transformer model")
        self.encoder = encoder
        self.temperature = _check_temperature(temperature)

    def embed(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(batch, seq) ids -> (batch, n_embd): the mean hidden state over the real tokens.

        The ids are checked against the vocabulary, and every line must hold a real token.
        """
        _check_lines(input_ids, attention_mask, self.encoder.config.vocab_size)
        return self._mean_hidden_state(input_ids, attention_mask)

    def _mean_hidden_state(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        hidden = self.encoder.hidden_states(input_ids, attention_mask)  # (batch, seq, n_embd)
        return pool(hidden, attention_mask, "mean")

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        _check_lines(input_ids, attention_mask, self.encoder.config.vocab_size)
        check_int("batch size", len(input_ids), low=2, hint="the other lines are the negatives")
        first = self._mean_hidden_state(input_ids, attention_mask)  # (batch, n_embd), masks 1
        second = self._mean_hidden_state(input_ids, attention_mask)  # the same lines, masks 2
        return info_nce(first, second, self.temperature)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: two passes of the body, no head
        (`TransformerModel.flops_per_token`)."""
        return 2 * self.encoder.body.flops_per_token(seq_len)


def simcse_objective(
    module: SimCSE, batch: tuple[Tensor, Tensor], step: int
) -> tuple[Tensor, dict[str, Tensor]]:
    """`SimCSE` in the trainer's shape: the batch is (input_ids, attention_mask)."""
    if not isinstance(batch, tuple | list):
        raise invalid("type(batch)", type(batch), "a pair (input_ids, attention_mask)")
    if len(batch) != 2:
        raise invalid("len(batch)", len(batch), "2: (input_ids, attention_mask)")
    input_ids, attention_mask = batch
    loss = module(input_ids, attention_mask)
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise invalid("type(module)", type(module), "SimCSE, whose forward returns the loss")
    return loss, {}


def alignment(first: Tensor, second: Tensor, alpha: float = 2.0) -> Tensor:
    """Mean of ||f(x) - f(y)||^α over positive pairs, on the unit sphere (Wang & Isola 2020).

    first, second: (batch, dim), row i of each a positive pair. 0 means every pair maps to
    the same point; 4 (α = 2) means every pair is antipodal. Lower is better.
    """
    check_real("alpha", alpha, low=0, low_open=True)
    _check_views(first, second, ("first", "second"))
    distances = (F.normalize(first, dim=1) - F.normalize(second, dim=1)).norm(dim=1)  # (batch,)
    return distances.pow(alpha).mean()


def uniformity(embeddings: Tensor, t: float = 2.0) -> Tensor:
    """log of the mean of e^{-t ||f(x) - f(y)||²} over all pairs x ≠ y (Wang & Isola 2020).

    embeddings: (batch, dim), normalised here. 0 when all collapse to one point; the more
    evenly they cover the sphere, the more negative. Lower is better. Computed as a
    log-sum-exp, so a large t gives a large negative number, not log 0 = -inf.
    """
    check_real("t", t, low=0, low_open=True)
    _check_embeddings("embeddings", embeddings)
    check_int("batch size", len(embeddings), low=2, hint="uniformity needs a pair")
    squared = torch.pdist(F.normalize(embeddings, dim=1)).pow(2)  # (batch (batch - 1) / 2,)
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))


class KeyQueue(nn.Module):
    """MoCo's queue: the `size` most recent keys, first in, first out (He et al. 2020).

    Negatives need not come from the current batch: keys computed in earlier steps still
    describe other images, so a queue gives many more negatives than a batch can hold, at
    no extra cost. They go stale as the encoder changes, which is why MoCo computes keys
    with a slowly moving encoder (`momentum_update`). The keys live in a buffer, so a
    checkpoint of a model holding the queue keeps them. size=0 holds nothing.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = check_int("size", size, low=0, hint="the number of keys the queue keeps")
        self.dim = check_int("dim", dim, low=1)
        self.register_buffer("buffer", torch.zeros(self.size, self.dim))  # (size, dim)
        self.register_buffer("next_slot", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def keys(self) -> Tensor:
        """The keys held, oldest first: (min(count, size), dim)."""
        if self.count < self.size:
            return self.buffer[: int(self.count)]
        return self.buffer.roll(-int(self.next_slot), dims=0)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Add keys (batch, dim), dropping the oldest ones beyond `size`. No gradient flows."""
        _check_embeddings("keys", keys)
        if keys.size(1) != self.dim:
            raise invalid("keys.shape", tuple(keys.shape), f"(batch, {self.dim})")
        if keys.device != self.buffer.device:
            raise invalid("keys.device", str(keys.device), f"the queue's, {self.buffer.device}")
        if self.size == 0:
            return
        keys = keys.detach()[-self.size :]  # more keys than slots: only the newest fit
        slots = (self.next_slot + torch.arange(len(keys), device=keys.device)) % self.size
        self.buffer[slots] = keys.to(self.buffer.dtype)
        self.next_slot.copy_((self.next_slot + len(keys)) % self.size)
        self.count.add_(len(keys))


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """target ← momentum · target + (1 - momentum) · online, parameter by parameter.

    MoCo's key encoder (He et al. 2020; momentum 0.999 there): it follows the trained
    encoder slowly, so keys in the queue stay comparable with today's queries. Buffers
    (e.g. batch-norm statistics) are copied. momentum=0 copies the online encoder. Every
    pair is checked before any is changed, so a refused call leaves the target as it was.
    """
    momentum = check_real("momentum", momentum, low=0, high=1, high_open=True)
    for name, module in (("online", online), ("target", target)):
        if not isinstance(module, nn.Module):
            raise invalid(f"type({name})", type(module), "torch.nn.Module")
    sources = dict(online.named_parameters()) | dict(online.named_buffers())
    pairs = [*target.named_parameters(), *target.named_buffers()]
    for name, tensor in pairs:  # all checked before any is changed
        source = sources.get(name)
        kind = (tensor.shape, tensor.dtype, tensor.device)
        if source is None or (source.shape, source.dtype, source.device) != kind:
            allowed = "a copy of the online module: same names, shapes, dtypes and devices"
            raise invalid("target", name, allowed)
    for name, tensor in pairs:
        source = sources[name]
        if isinstance(tensor, nn.Parameter):
            tensor.lerp_(source, 1 - momentum)
        else:
            tensor.copy_(source)


def cpc_info_nce(predictions: Tensor, latents: Tensor, steps_ahead: int) -> tuple[Tensor, Tensor]:
    """Contrastive predictive coding's loss for one horizon k (van den Oord et al. 2018).

    predictions: (batch, seq, dim), W_k c_t, what the context at each position t predicts
    for the code k steps later; latents: (batch, seq, dim), the codes z_t. The positive of
    the prediction at (b, t) is z_{b, t+k}; the candidates are the codes z_{b', s} of every
    sequence b' at every position s >= k (other times and other sequences), scored by the
    dot product (CPC's log-bilinear score, no normalisation, no temperature). Returns the
    mean InfoNCE loss over the batch · (seq - k) predictions and how often the positive
    scored highest (chance: 1 / (batch · (seq - k))).
    """
    _check_same_kind(predictions, latents, ("predictions", "latents"))
    if predictions.dim() != 3 or predictions.shape != latents.shape:
        raise invalid(
            "predictions.shape, latents.shape",
            (tuple(predictions.shape), tuple(latents.shape)),
            "two equal shapes (batch, seq, dim)",
        )
    batch, seq, dim = latents.shape
    k = check_int("steps_ahead", steps_ahead, low=1, high=seq - 1)
    check_int(
        "batch · (seq - steps_ahead)", batch * (seq - k), low=2, hint="one positive, one negative"
    )
    queries = predictions[:, : seq - k].reshape(-1, dim)  # (batch (seq - k), dim)
    targets = latents[:, k:].reshape(-1, dim)  # (batch (seq - k), dim): row i pairs with query i
    logits = queries @ targets.T  # (batch (seq - k), batch (seq - k))
    labels = torch.arange(len(queries), device=logits.device)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return F.cross_entropy(logits, labels), accuracy


# ---------------------------------------------------------------------------- input checks


def _check_temperature(temperature: float) -> float:
    temperature = check_real("temperature", temperature, low=0, low_open=True)
    hint = "below it the softmax is a hard maximum already"
    return check_real("temperature", temperature, low=MIN_TEMPERATURE, hint=hint)


def _check_embeddings(name: str, embeddings: Any) -> None:
    """A floating-point (rows, dim) tensor, dim >= 1."""
    if not isinstance(embeddings, Tensor):
        raise invalid(f"type({name})", type(embeddings), "torch.Tensor; torch.as_tensor converts")
    if not embeddings.is_floating_point():
        raise invalid(f"{name}.dtype", embeddings.dtype, "a floating-point dtype")
    if embeddings.dim() != 2 or embeddings.size(1) == 0:
        raise invalid(f"{name}.shape", tuple(embeddings.shape), "(batch, dim) with dim >= 1")


def _check_same_kind(first: Any, second: Any, names: tuple[str, str]) -> None:
    """Two floating-point tensors of one dtype on one device."""
    for name, tensor in zip(names, (first, second), strict=True):
        if not isinstance(tensor, Tensor):
            raise invalid(f"type({name})", type(tensor), "torch.Tensor; torch.as_tensor converts")
        if not tensor.is_floating_point():
            raise invalid(f"{name}.dtype", tensor.dtype, "a floating-point dtype")
    both = f"{names[0]}.dtype, {names[1]}.dtype"
    if first.dtype != second.dtype:
        raise invalid(both, (first.dtype, second.dtype), "one dtype: convert one with .to()")
    if first.device != second.device:
        both = f"{names[0]}.device, {names[1]}.device"
        raise invalid(both, (str(first.device), str(second.device)), "one device")


def _check_views(first: Tensor, second: Tensor, names: tuple[str, str]) -> None:
    """Two (batch, dim) views of the same batch, at least two rows (one negative each)."""
    _check_same_kind(first, second, names)
    if first.dim() != 2 or first.shape != second.shape:
        raise invalid(
            f"{names[0]}.shape, {names[1]}.shape",
            (tuple(first.shape), tuple(second.shape)),
            "two equal shapes (batch, dim): row i of one view pairs with row i of the other",
        )
    _check_embeddings(names[0], first)
    check_int("batch size", len(first), low=2, hint="with one row there is no negative")


def _check_lines(input_ids: Any, attention_mask: Any, vocab_size: int) -> None:
    """SimCSE's batch: integer ids (batch, seq) in the vocabulary, each line a real token."""
    check_token_ids("input_ids", input_ids, vocab_size=vocab_size)
    if attention_mask is None:
        return
    if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
        given = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else None
        shapes = (tuple(input_ids.shape), given)
        raise invalid("input_ids.shape, attention_mask.shape", shapes, "two equal shapes")
    empty = ~validate_attention_mask(attention_mask, *input_ids.shape).any(dim=1)  # (batch,)
    if bool(empty.any()):
        line = int(empty.nonzero()[0])
        raise invalid(f"attention_mask[{line}]", "all 0", "at least one real token a line")


# ---------------------------------------------------------------------------- two spans of a line


def line_spans(
    input_ids: Tensor, attention_mask: Tensor, share: float = 0.75
) -> list[tuple[Tensor, Tensor]]:
    """The first and the last `share` of each line, each as a line of its own.

    input_ids, attention_mask: (batch, seq), a line being its first position ([CLS]) and
    n real tokens after it, padding at the end. Each span is [CLS] and w = max(1,
    ⌊share · n⌋) tokens: the first w, or the last w. Returns [(ids, mask), (ids, mask)],
    each (batch, 1 + the batch's widest w), read from position 0 as any line is, so the two
    spans differ in their words, never in their positions. share > 0.5 makes them overlap
    in the middle of the line; share < 0.5 leaves a gap between them.
    """
    share = check_real("share", share, low=0, high=1, low_open=True)
    real = validate_attention_mask(attention_mask, *input_ids.shape)
    tokens = real.sum(dim=1, keepdim=True) - 1  # (batch, 1): real tokens after [CLS]
    width = (tokens * share).floor().long().clamp(min=1)  # (batch, 1)
    offsets = torch.arange(int(width.max()), device=input_ids.device)  # (widest,)
    inside = offsets < width  # (batch, widest): which places of a span hold a token
    spans = []
    for start in (torch.ones_like(width), tokens - width + 1):  # after [CLS]; to the end
        index = (start + offsets).clamp(max=input_ids.size(1) - 1)  # (batch, widest)
        ids = torch.cat([input_ids[:, :1], input_ids.gather(1, index)], dim=1)
        spans.append((ids, torch.cat([real[:, :1], inside], dim=1)))
    return spans


class SpanContrast(nn.Module):
    """Two spans of one line are a positive pair (DeCLUTR, Giorgi et al. 2021).

    What two parts of one text share is what holds for the whole text: its topic, its
    style, its dialect. Each line's first and last `share` of tokens (`line_spans`) are
    read by one encoder as lines of their own; a span's embedding is its mean hidden state.
    Symmetric InfoNCE asks each line's first span to find its last among the batch's, and
    back. Unlike SimCSE's two readings of the same words, the two views hold different
    words, so the encoder is paid for what the words of a line have in common.

    The spans overlap by default (share 0.75: the middle half of a line is in both). With
    disjoint halves the words alone, at initialisation, say nothing about each other in a
    language whose dialects differ only in word order, and the embeddings collapse to one
    point (the loss then sits at log(batch), the value of knowing nothing).

    encoder: any sslm_lab Transformer model (its body is used). forward(input_ids,
    attention_mask) -> the loss.
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.1, share: float = 0.75):
        super().__init__()
        if not isinstance(encoder, TransformerModel):
            raise invalid("type(encoder)", type(encoder), "an sslm_lab Transformer model")
        self.encoder = encoder
        self.temperature = _check_temperature(temperature)
        self.share = check_real("share", share, low=0, high=1, low_open=True)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        _check_lines(input_ids, attention_mask, self.encoder.config.vocab_size)
        check_int("batch size", len(input_ids), low=2, hint="the other lines are the negatives")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        first, last = (
            pool(self.encoder.hidden_states(ids, mask), mask, "mean")  # (batch, n_embd)
            for ids, mask in line_spans(input_ids, attention_mask, self.share)
        )
        return symmetric_info_nce(first, last, self.temperature)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token of a line of seq_len: the body reads two spans of
        1 + ⌊share · (seq_len - 1)⌋ tokens each (`TransformerModel.flops_per_token`)."""
        body = self.encoder.body
        seq_len = body.config.block_size if seq_len is None else seq_len
        span = 1 + max(1, math.floor(self.share * (seq_len - 1)))
        return 2 * span / seq_len * body.flops_per_token(span)


def span_contrast_objective(
    module: SpanContrast, batch: tuple[Tensor, Tensor], step: int
) -> tuple[Tensor, dict[str, Tensor]]:
    """`SpanContrast` in the trainer's shape: the batch is (input_ids, attention_mask)."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise invalid("batch", type(batch), "a pair (input_ids, attention_mask)")
    input_ids, attention_mask = batch
    return module(input_ids, attention_mask), {}
