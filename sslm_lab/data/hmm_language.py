"""A language whose rules we know: words sampled from a hidden Markov model.

On Shakespeare nobody knows how good a language model could be, nor what a sentence's
hidden structure is. Here both are known. Every sequence is made in three steps:

    dialect   z ~ p(z)                      one per sequence, K dialects
    classes   h_0 ~ π,  h_t ~ A_z[h_{t-1}]  S hidden word classes (noun, verb, ...)
    words     x_t ~ B[h_t]                  V words, one emission matrix for all dialects

so p(x, h, z) = p(z) π(h_0) B(h_0, x_0) Π_t A_z(h_{t-1}, h_t) B(h_t, x_t) (Rabiner 1989).
Three knobs make it a language worth learning:

- ambiguity: a share of the words is emitted by more than one class, as English "run" is
  a noun and a verb. Only the context says which class such a word is.
- a grammar: each class is followed by a few classes only (`successors`), so the context
  is informative.
- dialects: K transition matrices over the same emissions. Dialects differ in word
  order, not in which words they use: every transition matrix is doubly stochastic and
  the first class uniform, so every class (and hence every word) is equally frequent at
  every position in every dialect. A bag of words cannot tell the dialects apart; only
  the order can. `dialect_distance` says how different their grammars are.

Because the model is known, the best any predictor can do is computable exactly, by the
forward-backward algorithm (`forward_backward`): the causal-LM floor (the true model's
cross-entropy), the Bayes-optimal masked-LM loss, the Bayes-optimal tagger of the hidden
classes and the Bayes-optimal classifier of the dialect. The baselines at the end
(unigram, bigram, most frequent class per word, bag of words) say what needs no context.

    language = make_language()                       the defaults below; seeded
    sample = language.sample(2000, seed=1)           words, classes, dialects
    tokenizer = WordTokenizer(language.num_words)    "w017" <-> id, with [PAD], [MASK], ...
    posteriors = forward_backward(language, sample.words)      everything exact, batched
    optimum = bayes_optimum(language, sample)        the four optima as numbers
    text, lines = pretraining_ids(sample, tokenizer) what recipes.Corpus takes

Words are HMM indices 0..V-1 everywhere in this file; the tokenizer adds the special
tokens in front (`to_ids`, `to_words`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sslm_lab.checks import check_choice, check_int, check_real, invalid
from sslm_lab.data.tokenizers import SPECIAL_TOKENS, TextTokenizer
from sslm_lab.files import atomic_write_text

# The defaults, measured by `python benchmarks/bench_hmm.py --quality` (make_language()
# with seed 0; 20,000 held-out sequences, seed 1; baselines fitted on 20,000 more, seed 2):
#   tagging the hidden class:   Bayes 0.856; most frequent class per word 0.606 (fitted on
#                               the held-out labels themselves); chance 0.050
#   the dialect:                Bayes 0.884; bag of words (logistic regression) 0.252;
#                               majority 0.250
#   causal LM, nats per token:  floor 4.952; bigram 5.116 (add-1); unigram 5.306
#   masked LM, 15 % [MASK]:     Bayes 4.673 nats per token, accuracy 0.090
# Ambiguity moves them most: at 3 classes per ambiguous word (share 0.8) Bayes tags 0.941
# and the most frequent class 0.701; at 6, 0.818 and 0.580 (4,000 held-out sequences).
NUM_CLASSES = 20
NUM_WORDS = 300
AMBIGUITY = 5  # classes that emit each ambiguous word
AMBIGUOUS_SHARE = 0.8  # share of the words that are ambiguous
SUCCESSORS = 5  # classes that may follow a class, in each grammar
NUM_DIALECTS = 4
DIALECT_DISTANCE = 0.25  # 0: one grammar for all dialects; 1: unrelated grammars
LENGTH = 32
ZIPF = 1.0  # a class's r-th most frequent word has weight 1 / r**ZIPF
ROW_TOLERANCE = 1e-6  # how far a probability row may sum from 1


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class HMMLanguage:
    """A K-dialect HMM: start (S,), transitions (K, S, S), emissions (S, V), dialect_prior
    (K,), all float64 with rows that sum to 1; `length` tokens per sequence.

    Matrices may be given as tensors, arrays or nested lists; a single (S, S) transition
    matrix is one dialect. Negative entries or rows that do not sum to 1 are refused.
    """

    start: Tensor = field(repr=False)
    transitions: Tensor = field(repr=False)
    emissions: Tensor = field(repr=False)
    dialect_prior: Tensor | None = field(default=None, repr=False)  # None: uniform
    length: int = LENGTH
    settings: dict[str, Any] = field(default_factory=dict)  # the knobs that made it

    def __post_init__(self) -> None:
        start = _distribution("start", self.start, dims=(1,))
        transitions = _distribution("transitions", self.transitions, dims=(2, 3))
        if transitions.dim() == 2:
            transitions = transitions[None]  # one dialect
        emissions = _distribution("emissions", self.emissions, dims=(2,))
        classes, dialects = len(start), len(transitions)
        if emissions.shape[0] != classes:
            raise invalid("emissions", f"shape {tuple(emissions.shape)}", f"({classes}, V)")
        if transitions.shape[1:] != (classes, classes):
            raise invalid(
                "transitions", f"shape {tuple(transitions.shape)}", f"(K, {classes}, {classes})"
            )
        if self.dialect_prior is None:
            prior = torch.full((dialects,), 1 / dialects)
        else:
            prior = _distribution("dialect_prior", self.dialect_prior, dims=(1,))
        if len(prior) != dialects:
            raise invalid("dialect_prior", f"{len(prior)} entries", f"{dialects}, one a dialect")
        check_int("length", self.length, low=1)
        for name, value in zip(
            ("start", "transitions", "emissions", "dialect_prior"),
            (start, transitions, emissions, prior),
            strict=True,
        ):
            object.__setattr__(self, name, value.double())

    @property
    def num_classes(self) -> int:
        return self.emissions.shape[0]

    @property
    def num_words(self) -> int:
        return self.emissions.shape[1]

    @property
    def num_dialects(self) -> int:
        return self.transitions.shape[0]

    def sample(self, count: int, *, seed: int = 0) -> LanguageSample:
        """`count` independent sequences, drawn with a generator seeded by `seed`."""
        return sample_language(self, count, seed=seed)


def _distribution(name: str, value: Any, dims: tuple[int, ...]) -> Tensor:
    """`value` as a float64 tensor with one of `dims` dimensions whose last axis holds
    probability rows: finite, non-negative, each summing to 1 within ROW_TOLERANCE."""
    if isinstance(value, Tensor):
        matrix = value.detach().cpu().double()
    else:
        matrix = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if matrix.dim() not in dims or matrix.shape[-1] == 0:
        wanted = " or ".join(f"{d}-D" for d in dims)
        raise invalid(name, f"shape {tuple(matrix.shape)}", f"a non-empty {wanted} array")
    if not torch.isfinite(matrix).all():
        raise invalid(name, "a matrix with a non-finite entry", "finite entries >= 0")
    if (matrix < 0).any():
        raise invalid(name, f"a matrix with the entry {matrix.min().item():g}", "entries >= 0")
    sums = matrix.sum(-1)
    off = (sums - 1).abs()
    if (off > ROW_TOLERANCE).any():
        where = tuple(int(i) for i in np.unravel_index(int(off.argmax()), tuple(sums.shape)))
        raise invalid(
            name,
            f"a matrix whose row {where} sums to {sums[where].item():.6g}",
            f"rows that sum to 1 (within {ROW_TOLERANCE:g})",
        )
    return matrix


# ---------------------------------------------------------------------------- building one


def _sinkhorn(weights: np.ndarray, tolerance: float = 1e-13) -> np.ndarray:
    """Scale rows and columns of a non-negative matrix in turn until both sum to 1
    (Sinkhorn 1964). It converges when every non-zero lies on a permutation of non-zeros,
    as in a union of permutation matrices. Rows sum to 1 exactly at the end."""
    matrix = weights / weights.sum(1, keepdims=True)
    for _ in range(100_000):
        matrix = matrix / matrix.sum(0, keepdims=True)
        matrix = matrix / matrix.sum(1, keepdims=True)
        if np.abs(matrix.sum(0) - 1).max() < tolerance:
            break
    return matrix


def _grammar(classes: int, successors: int, rng: np.random.Generator) -> np.ndarray:
    """A doubly stochastic (S, S) matrix in which every class has `successors` followers.

    A band of `successors` diagonals (class a -> a, a+1, ... mod S), rows and columns
    shuffled, random weights, then balanced by Sinkhorn: every row and every column sums
    to 1, so the uniform distribution over classes is stationary.
    """
    rows, columns = rng.permutation(classes), rng.permutation(classes)
    band = (np.arange(classes)[:, None] + np.arange(successors)) % classes  # (S, successors)
    weights = np.zeros((classes, classes))
    weights[rows[:, None], columns[band]] = rng.exponential(size=(classes, successors))
    return _sinkhorn(weights)


def _emissions(
    classes: int, words: int, ambiguity: int, share: float, zipf: float, rng: np.random.Generator
) -> np.ndarray:
    """(S, V) emissions: every word has a home class (V/S words each); round(share * V)
    words are also emitted by `ambiguity - 1` other classes, chosen at random. Within a
    class its words get Zipf weights 1/r**zipf in a random order."""
    home = np.empty(words, dtype=int)
    home[rng.permutation(words)] = np.arange(words) % classes
    emits = np.zeros((classes, words), dtype=bool)
    emits[home, np.arange(words)] = True
    ambiguous = rng.choice(words, size=round(share * words), replace=False)
    keys = rng.random((len(ambiguous), classes))
    keys[np.arange(len(ambiguous)), home[ambiguous]] = -1.0  # the home class comes first
    chosen = np.argsort(keys, axis=1)[:, :ambiguity]  # home + (ambiguity - 1) random others
    emits[chosen, ambiguous[:, None]] = True
    keys = np.where(emits, rng.random((classes, words)), np.inf)  # random order of members
    rank = np.argsort(np.argsort(keys, axis=1), axis=1) + 1.0
    weights = np.where(emits, rank**-zipf, 0.0)
    return weights / weights.sum(1, keepdims=True)


def make_language(
    num_classes: int = NUM_CLASSES,
    num_words: int = NUM_WORDS,
    *,
    ambiguity: int = AMBIGUITY,
    ambiguous_share: float = AMBIGUOUS_SHARE,
    successors: int = SUCCESSORS,
    num_dialects: int = NUM_DIALECTS,
    dialect_distance: float = DIALECT_DISTANCE,
    length: int = LENGTH,
    zipf: float = ZIPF,
    seed: int = 0,
) -> HMMLanguage:
    """A random language with these knobs (see the module docstring), the same for a seed.

    Each dialect's transitions mix one shared grammar with a grammar of its own:
    A_k = (1 - dialect_distance) G_shared + dialect_distance G_k. Both are doubly
    stochastic, so A_k is too, and the first class is uniform: class frequencies are the
    same at every position of every dialect. A class has up to 2 * successors followers.
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    num_words = check_int(
        "num_words", num_words, low=num_classes, hint="every class needs a word of its own"
    )
    ambiguity = check_int(
        "ambiguity", ambiguity, low=1, high=num_classes, hint="classes per ambiguous word"
    )
    ambiguous_share = check_real("ambiguous_share", ambiguous_share, low=0, high=1)
    successors = check_int("successors", successors, low=1, high=num_classes)
    num_dialects = check_int("num_dialects", num_dialects, low=1)
    dialect_distance = check_real("dialect_distance", dialect_distance, low=0, high=1)
    length = check_int("length", length, low=1)
    zipf = check_real("zipf", zipf, low=0)
    seed = check_int("seed", seed, low=0)
    settings = dict(locals())  # the checked knobs, by name

    rng = np.random.default_rng(seed)
    emissions = _emissions(num_classes, num_words, ambiguity, ambiguous_share, zipf, rng)
    shared = _grammar(num_classes, successors, rng)
    own = [_grammar(num_classes, successors, rng) for _ in range(num_dialects)]
    transitions = np.stack([(1 - dialect_distance) * shared + dialect_distance * g for g in own])
    return HMMLanguage(
        start=np.full(num_classes, 1 / num_classes),
        transitions=transitions,
        emissions=emissions,
        length=length,
        settings=settings,
    )


# ---------------------------------------------------------------------------- sampling


@dataclass(frozen=True, eq=False)
class LanguageSample:
    """Sequences with their hidden truth: words (N, L) and classes (N, L), dialects (N,)."""

    words: Tensor
    classes: Tensor
    dialects: Tensor

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, rows: Any) -> LanguageSample:
        """The sample's rows `rows` (a slice or an index tensor), e.g. sample[:1000]."""
        return LanguageSample(self.words[rows], self.classes[rows], self.dialects[rows])


def sample_language(language: HMMLanguage, count: int, *, seed: int = 0) -> LanguageSample:
    """`count` sequences of `language.length` tokens, batched: one draw per position for all
    sequences at once (classes), then one draw per class for all its tokens (words)."""
    count = check_int("count", count, low=1)
    seed = check_int("seed", seed, low=0)
    generator = torch.Generator().manual_seed(seed)

    def draw(probabilities: Tensor, n: int) -> Tensor:
        return torch.multinomial(probabilities, n, replacement=True, generator=generator)

    dialects = draw(language.dialect_prior, count)
    classes = torch.empty(count, language.length, dtype=torch.long)
    classes[:, 0] = draw(language.start, count)
    for t in range(1, language.length):
        rows = language.transitions[dialects, classes[:, t - 1]]  # (N, S): each one's A_z row
        classes[:, t] = draw(rows, 1)[:, 0]
    words = torch.empty_like(classes)
    for s in range(language.num_classes):
        where = classes == s
        if where.any():
            words[where] = draw(language.emissions[s], int(where.sum()))
    return LanguageSample(words, classes, dialects)


# ---------------------------------------------------------------------------- the tokenizer


class WordTokenizer(TextTokenizer):
    """Words "w000" ... behind the suite's tokenizer interface.

    Ids: the five special tokens first ([PAD] 0, [MASK] 1, [CLS] 2, [SEP] 3, [UNK] 4), then
    word w at id 5 + w. `to_ids` and `to_words` map HMM word indices to ids and back.
    Text is words separated by whitespace; special tokens may appear in it by name.
    """

    def __init__(self, num_words: int) -> None:
        self.num_words = check_int("num_words", num_words, low=1)
        digits = max(3, len(str(num_words - 1)))
        self.words = [f"w{w:0{digits}d}" for w in range(num_words)]
        self.special_ids = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        self.offset = len(SPECIAL_TOKENS)
        self._vocabulary = [*SPECIAL_TOKENS, *self.words]
        self._id_of = {token: i for i, token in enumerate(self._vocabulary)}

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    def encode(self, text: str, *, errors: str = "strict") -> list[int]:
        """Ids of the whitespace-separated words of `text`; errors="unk" maps an unknown
        word to [UNK] instead of raising."""
        check_choice("errors", errors, ("strict", "unk"))
        ids = [self._id_of.get(word, -1) for word in text.split()]
        if -1 in ids and errors == "strict":
            unknown = text.split()[ids.index(-1)]
            raise ValueError(
                f"word {unknown!r} is not one of {self.words[0]}..{self.words[-1]} or a special "
                "token; pass errors='unk' to map unknown words to [UNK]"
            )
        return [self.unk_id if i == -1 else i for i in ids]

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i >= self.offset]
        return " ".join(self._vocabulary[i] for i in ids)

    def id_to_token(self, token_id: int) -> str:
        return self._vocabulary[self._check_id(token_id)]

    def to_ids(self, words: Tensor) -> Tensor:
        """Token ids of HMM word indices (any shape): words + 5."""
        return torch.as_tensor(words) + self.offset

    def to_words(self, ids: Tensor) -> Tensor:
        """HMM word indices of token ids (any shape); a special token is refused."""
        ids = torch.as_tensor(ids)
        if ids.numel() and (ids.min() < self.offset or ids.max() >= self.vocab_size):
            raise invalid(
                "ids",
                f"ids from {ids.min()} to {ids.max()}",
                f"word ids {self.offset}..{self.vocab_size - 1} (no special tokens)",
            )
        return ids - self.offset

    def save(self, path: str | Path) -> Path:
        state = {"type": "word", "num_words": self.num_words, "special_tokens": SPECIAL_TOKENS}
        return atomic_write_text(path, json.dumps(state) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> WordTokenizer:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("type") != "word" or state.get("special_tokens") != list(SPECIAL_TOKENS):
            raise ValueError(f"{path} is not a word tokenizer saved by WordTokenizer.save")
        return cls(state["num_words"])


def pretraining_ids(
    sample: LanguageSample, tokenizer: WordTokenizer
) -> tuple[Tensor, tuple[tuple[int, ...], ...]]:
    """What `sslm_lab.lab.recipes.Corpus` takes, as `Corpus(name, *pretraining_ids(...))`:
    the token ids (N, L) as cut rows read whole, and each row as a line of ids (no specials).
    A recipe's block_size of L + 1 fits the [CLS] that line-reading objectives put first."""
    ids = tokenizer.to_ids(sample.words)
    return ids, tuple(tuple(row) for row in ids.tolist())


# ---------------------------------------------------------------------------- exact inference


@dataclass(frozen=True, eq=False)
class Posteriors:
    """What the true model knows about N sequences of L tokens (S classes, K dialects).

    log_likelihood (N,): log p(x) = log Σ_k p(k) p(x | k), over the visible tokens
    dialect_log_likelihood (N, K): log p(x | dialect k)
    dialect_posterior (N, K): p(k | x), the Bayes-optimal sequence classifier
    class_posterior (N, L, S): p(h_t | x), the Bayes-optimal tagger
    predicted_class (N, L, S): p(h_t | x_<t); `predicted_class @ emissions` is p(x_t | x_<t)
    next_word_log_prob (N, L): log p(x_t | x_<t), the causal LM's floor (0 where masked)

    A sequence the language cannot produce has log_likelihood -inf and NaN posteriors.
    """

    log_likelihood: Tensor
    dialect_log_likelihood: Tensor
    dialect_posterior: Tensor
    class_posterior: Tensor
    predicted_class: Tensor
    next_word_log_prob: Tensor


def _log_matmul(log_x: Tensor, matrix: Tensor) -> Tensor:
    """log(exp(log_x) @ matrix) without underflow: logsumexp_i(log_x_i + log M_ij) as
    m + log(exp(log_x - m) @ M), m the row maximum. log_x (K, N, S), matrix (K, S, S)."""
    top = log_x.amax(-1, keepdim=True)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)  # an impossible row
    return top + torch.bmm((log_x - top).exp(), matrix).log()


def _forward_backward(language: HMMLanguage, words: Tensor, mask: Tensor | None) -> Posteriors:
    transitions, log_prior = language.transitions, language.dialect_prior.log()
    # log B(s, x_t) at every position, positions first: (L, N, S). A masked token's
    # emission, summed over every word it could be, is 1 (log 1 = 0): it says nothing.
    emit = language.emissions.log().T[words.T]
    if mask is not None:
        emit = emit.masked_fill(mask.T[..., None], 0.0)
    emit = emit[:, None]  # (L, 1, N, S): the same in every dialect
    shape = (words.shape[1], language.num_dialects, words.shape[0], language.num_classes)
    before = torch.empty(shape, dtype=torch.float64)  # log p(x_<t, h_t = s | k), (L, K, N, S)
    alpha = torch.empty(shape, dtype=torch.float64)  # log p(x_<=t, h_t = s | k)
    beta = torch.zeros(shape, dtype=torch.float64)  # log p(x_>t | h_t = s, k)
    before[0] = language.start.log()
    alpha[0] = before[0] + emit[0]
    for t in range(1, len(emit)):  # forward: α_t(j) = Σ_i α_t-1(i) A(i, j) · B(j, x_t)
        before[t] = _log_matmul(alpha[t - 1], transitions)
        alpha[t] = before[t] + emit[t]
    for t in range(len(emit) - 2, -1, -1):  # backward: β_t(i) = Σ_j A(i, j) B(j, x_t+1) β_t+1(j)
        beta[t] = _log_matmul(emit[t + 1] + beta[t + 1], transitions.mT)

    prior = log_prior[:, None, None]  # (K, 1, 1), against (L, K, N, S)
    with_dialect = torch.logsumexp(alpha, -1) + prior[..., 0]  # log p(k, x_<=t), (L, K, N)
    prefix = torch.logsumexp(with_dialect, 1)  # log p(x_<=t), (L, N)
    log_likelihood = prefix[-1]  # (N,)
    past = torch.cat([torch.zeros_like(prefix[:1]), prefix[:-1]])  # log p(x_<t), log 1 first
    # Every exponent below is a log-probability (<= 0): exp cannot overflow, and the sum
    # over dialects is a plain sum. p(h_t = s | x) = Σ_k p(k) α_k,t(s) β_k,t(s) / p(x).
    # In place, into beta and before: they are the largest tensors here.
    class_posterior = beta.add_(alpha).add_(prior).sub_(log_likelihood[:, None]).exp_().sum(1)
    predicted = before.add_(prior).sub_(past[:, None, :, None]).exp_().sum(1)  # p(h_t | x_<t)
    return Posteriors(
        log_likelihood=log_likelihood,
        dialect_log_likelihood=torch.logsumexp(alpha[-1], -1).T,  # log p(x | k), (N, K)
        dialect_posterior=(with_dialect[-1].T - log_likelihood[:, None]).exp(),
        class_posterior=class_posterior.transpose(0, 1),  # (N, L, S)
        predicted_class=predicted.transpose(0, 1),
        next_word_log_prob=(prefix - past).T,  # log p(x_t | x_<t), (N, L)
    )


def forward_backward(
    language: HMMLanguage, words: Tensor, mask: Tensor | None = None, *, chunk: int = 4096
) -> Posteriors:
    """The exact posteriors of `words` (N, L) of HMM word indices under `language`, in log
    space and float64 on the CPU, all sequences at once (`chunk` rows at a time to bound
    memory: about 4 K L N S doubles). L may differ from `language.length`.

    mask (N, L), True where a token is hidden (replaced by [MASK]): the hidden tokens'
    emissions are marginalised (set to 1 for every class), so everything is conditioned on
    the visible tokens only, as `masked_word_log_probs` needs.
    """
    words = torch.as_tensor(words)
    if words.dim() != 2 or words.dtype != torch.long or words.numel() == 0:
        raise invalid(
            "words",
            f"a {words.dtype} tensor of shape {tuple(words.shape)}",
            "a (N, L) LongTensor of word indices, N and L >= 1",
        )
    if words.min() < 0 or words.max() >= language.num_words:
        raise invalid(
            "words",
            f"indices {words.min()}..{words.max()}",
            f"word indices 0..{language.num_words - 1} (not token ids: to_words)",
        )
    if mask is not None and mask.shape != words.shape:
        raise invalid("mask", f"shape {tuple(mask.shape)}", f"words' shape {tuple(words.shape)}")
    parts = [
        _forward_backward(
            language,
            words[i : i + chunk],
            None if mask is None else mask[i : i + chunk].bool(),
        )
        for i in range(0, len(words), chunk)
    ]
    return Posteriors(
        **{f.name: torch.cat([getattr(part, f.name) for part in parts]) for f in fields(Posteriors)}
    )


def masked_word_log_probs(language: HMMLanguage, words: Tensor, mask: Tensor) -> Tensor:
    """log p(x_t = v | visible tokens) at each masked position: (M, V), M = mask.sum(), in
    the order of `mask.nonzero()`. Each masked position is predicted from the visible
    tokens alone, the other masked words summed over: what BERT's loss asks of a position
    replaced by [MASK]. p(x_t = v | visible) = Σ_s p(h_t = s | visible) B(s, v)."""
    posteriors = forward_backward(language, words, mask)
    return (posteriors.class_posterior[mask.bool()] @ language.emissions).log()


@dataclass(frozen=True)
class BayesOptimum:
    """The best any predictor can do on a sample, by the true model (nats per token)."""

    tagging_accuracy: float  # argmax_s p(h_t = s | x), all positions
    dialect_accuracy: float  # argmax_k p(k | x)
    clm_nats: float  # -mean log p(x_t | x_<t): the causal-LM floor
    mlm_nats: float  # -mean log p(x_t | visible) at positions replaced by [MASK]
    mlm_accuracy: float  # argmax_v p(x_t = v | visible) at those positions
    mask_rate: float


def bayes_optimum(
    language: HMMLanguage, sample: LanguageSample, *, mask_rate: float = 0.15, seed: int = 0
) -> BayesOptimum:
    """The Bayes-optimal scores on `sample`. For the masked LM every token is hidden by
    [MASK] independently with probability `mask_rate` (seeded). The optimum is for [MASK]
    positions only: BERT's 10 % random and 10 % unchanged tokens are not modelled (to
    compare a network with it, evaluate the network with every selected token as [MASK])."""
    mask_rate = check_real("mask_rate", mask_rate, low=0, high=1, low_open=True, high_open=True)
    posteriors = forward_backward(language, sample.words)
    generator = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    mask = torch.rand(sample.words.shape, generator=generator) < mask_rate
    masked = masked_word_log_probs(language, sample.words, mask)
    truth = sample.words[mask]
    tagged = posteriors.class_posterior.argmax(-1) == sample.classes
    return BayesOptimum(
        tagging_accuracy=tagged.double().mean().item(),
        dialect_accuracy=_accuracy(posteriors.dialect_posterior.argmax(-1), sample.dialects),
        clm_nats=-posteriors.next_word_log_prob.mean().item(),
        mlm_nats=-masked.gather(1, truth[:, None]).mean().item(),
        mlm_accuracy=_accuracy(masked.argmax(-1), truth),
        mask_rate=mask_rate,
    )


def _accuracy(predicted: Tensor, truth: Tensor) -> float:
    return (torch.as_tensor(predicted) == torch.as_tensor(truth)).double().mean().item()


# ---------------------------------------------------------------------------- baselines


def unigram_cross_entropy(train: Tensor, test: Tensor, num_words: int, k: float = 1.0) -> float:
    """Nats per token of `test` under add-k word frequencies counted on `train` (no context)."""
    k = check_real("k", k, low=0, low_open=True)
    counts = torch.bincount(train.flatten(), minlength=num_words).double() + k
    return -(counts / counts.sum()).log()[test.flatten()].mean().item()


def bigram_cross_entropy(train: Tensor, test: Tensor, num_words: int, k: float = 1.0) -> float:
    """Nats per token of `test` (N, L) under add-k bigrams counted on `train` (N', L); the
    first word of a sequence is predicted from a start symbol (context index V)."""
    k = check_real("k", k, low=0, low_open=True)

    def pairs(words: Tensor) -> tuple[Tensor, Tensor]:
        start = torch.full((len(words), 1), num_words)
        return torch.cat([start, words[:, :-1]], 1).flatten(), words.flatten()

    before, after = pairs(train)
    counts = torch.bincount(before * num_words + after, minlength=(num_words + 1) * num_words)
    counts = counts.view(num_words + 1, num_words).double() + k
    log_p = (counts / counts.sum(1, keepdim=True)).log()
    before, after = pairs(test)
    return -log_p[before, after].mean().item()


def most_frequent_class(words: Tensor, classes: Tensor, num_words: int, num_classes: int) -> Tensor:
    """(V,) the class each word most often has in (words, classes); a word never seen gets
    the most frequent class overall. Tag with `table[words]`."""
    pairs = torch.bincount(
        words.flatten() * num_classes + classes.flatten(), minlength=num_words * num_classes
    ).view(num_words, num_classes)
    table = pairs.argmax(1)
    table[pairs.sum(1) == 0] = pairs.sum(0).argmax()
    return table


def bag_of_words(words: Tensor, num_words: int) -> np.ndarray:
    """(N, V) each word's share of each sequence's tokens: word order thrown away."""
    rows = torch.arange(len(words))[:, None].expand_as(words)
    counts = torch.zeros(len(words), num_words, dtype=torch.float64)
    counts.index_put_(
        (rows.flatten(), words.flatten()),
        torch.ones(words.numel(), dtype=torch.float64),
        accumulate=True,
    )
    return (counts / words.shape[1]).numpy()


def bag_of_words_accuracy(
    train_words: Tensor,
    train_labels: Tensor,
    test_words: Tensor,
    test_labels: Tensor,
    num_words: int,
    C: float = 1.0,
) -> float:
    """Accuracy on the test sequences of scikit-learn's logistic regression on word shares
    (`bag_of_words`), fitted on the training sequences; the label is usually the dialect."""
    from sklearn.linear_model import LogisticRegression  # here: importing sklearn takes a while

    model = LogisticRegression(C=check_real("C", C, low=0, low_open=True), max_iter=1000)
    model.fit(bag_of_words(train_words, num_words), train_labels.numpy())
    predicted = model.predict(bag_of_words(test_words, num_words))
    return _accuracy(torch.as_tensor(predicted), test_labels)


def majority_accuracy(train_labels: Tensor, test_labels: Tensor) -> float:
    """Accuracy on `test_labels` of always answering the most frequent training label."""
    return _accuracy(
        torch.full_like(test_labels, int(torch.mode(train_labels.flatten())[0])), test_labels
    )
