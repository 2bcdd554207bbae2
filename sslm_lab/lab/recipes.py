"""Pretrained encoders for fine-tuning: one table row per pretraining objective.

    encoder = pretrained_encoder("electra", recipe, profile="laptop")
    encoder.body          # an sslm_lab Transformer with the objective's weights
    encoder.train_flops   # what pretraining it cost, to compare objectives at equal compute
    encoder.source        # the checkpoint it came from, or why it was trained here

Each objective's notebook saves what it trained (02 the MLM encoder, 03 the causal LM,
04 the sentence VAE's encoder, 05 ELECTRA's discriminator, 06 the SimCSE encoder). A
fine-tuning comparison needs them all of one shape, though, and must work before those
notebooks ran. So `pretrained_encoder` loads a saved checkpoint when it exists for the
profile, has exactly the recipe's shape and records its training FLOPs; otherwise it
trains the objective here, briefly, with the recipe's steps, batch and learning rate,
on the training plays only (the val and test plays stay unseen, as in every notebook).

`PRETRAINING` is the table: for each objective, the network it trains, whether it reads
windows of running text or whole lines, its loss (each from the idea's own module) and
the encoder it leaves. `pretrain` is the one training function, and it takes the corpus
and the tokenizer, so the same call pretrains any objective on another text.

FLOPs are the network's own count (`flops_per_token`, PaLM's estimate, forward and
backward) times the tokens of the batches: ELECTRA counts its generator and its
discriminator, SimCSE its two passes per line (its body only; no output layer), the VAE
its encoder and decoder, MLM its output layer at the masked positions only (where it is
computed). `random` costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab import data
from sslm_lab.checks import check_bool, check_choice, check_int, check_real, invalid
from sslm_lab.contrastive import SimCSE, SpanContrast, simcse_objective, span_contrast_objective
from sslm_lab.data.speeches import speeches
from sslm_lab.electra import Electra, electra_objective
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.lab.profiles.table import PROFILE_NAMES
from sslm_lab.lab.results import run_dir
from sslm_lab.masking import mask_tokens
from sslm_lab.objectives import masked_lm_objective, next_token_objective
from sslm_lab.pretrained import CheckpointError, load_pretrained
from sslm_lab.training.batches import BatchFn, sample_rows
from sslm_lab.training.hardware import resolve_device
from sslm_lab.training.trainer import LossFn, Phase, Trainer, TrainerConfig
from sslm_lab.transformer import Transformer, TransformerConfig
from sslm_lab.vae import SentenceVAE, vae_objective

OBJECTIVES = ("random", "mlm", "clm", "simcse", "electra", "vae", "span_contrast")
# Where each objective's notebook saves its network: (notebook, folder in its run_dir)
CHECKPOINTS = {
    "mlm": ("02_masked_lm", "encoder"),
    "clm": ("03_autoregressive_lm", "bpe_decoder"),
    "vae": ("04_vae", "sentence_vae_encoder"),
    "electra": ("05_gan", "electra_discriminator"),
    "simcse": ("06_contrastive", "simcse_encoder"),
}
SIMCSE_TEMPERATURE = 0.05  # SimCSE's τ (Gao et al. 2021)
SHAPE_FIELDS = ("vocab_size", "n_layer", "n_head", "n_embd", "intermediate_size", "norm_position")


@dataclass(frozen=True)
class EncoderRecipe:
    """The encoder's shape and, for training it here, the run's size."""

    vocab_size: int = 2048  # a BPE vocabulary, as data.bpe_tokenizer trains it
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    intermediate_size: int = 512
    block_size: int = 32  # tokens per training window (and the longest input)
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "intermediate_size"):
            check_int(f"EncoderRecipe.{name}", getattr(self, name), low=1)
        if self.n_embd % self.n_head:
            raise invalid(
                "EncoderRecipe.n_head",
                self.n_head,
                f"a divisor of n_embd={self.n_embd}: each head gets n_embd / n_head dimensions",
            )
        check_int("EncoderRecipe.block_size", self.block_size, low=4)
        check_int("EncoderRecipe.steps", self.steps, low=1)
        check_int("EncoderRecipe.batch_size", self.batch_size, low=2)
        check_real("EncoderRecipe.lr", self.lr, low=0, low_open=True)
        check_real("EncoderRecipe.dropout", self.dropout, low=0, high=1, high_open=True)
        check_int("EncoderRecipe.seed", self.seed, low=0)

    def config(self, causal: bool = False) -> TransformerConfig:
        """The body's config (pre-LN; a causal one for the causal LM and the VAE decoder)."""
        return TransformerConfig(
            vocab_size=self.vocab_size,
            block_size=self.block_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            intermediate_size=self.intermediate_size,
            dropout=self.dropout,
            attention_dropout=self.dropout,
            causal=causal,
            norm_position="pre",
            gelu="tanh" if causal else "exact",
        )


@dataclass
class PretrainedEncoder:
    """An encoder body with the objective's weights, and what its pretraining cost."""

    objective: str
    body: Transformer
    tokenizer: Any  # a BPETokenizer for Shakespeare, or whatever made another corpus
    source: str  # "checkpoint <notebook>/<profile>/<folder>", "trained here ...", "random init"
    steps: int
    train_tokens: int  # tokens the trained networks read in pretraining
    train_flops: float
    metadata: dict[str, Any]


def _check_recipe(recipe: Any) -> EncoderRecipe:
    """The recipe given, or the default one for None."""
    if recipe is not None and not isinstance(recipe, EncoderRecipe):
        raise invalid("type(recipe)", type(recipe), "an EncoderRecipe, or None for the default")
    return recipe or EncoderRecipe()


def _check_device(device: Any) -> str:
    """A device this machine has, as the trainer resolves it ("auto": the fastest)."""
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', one this machine has"
    if not isinstance(device, str):
        raise invalid("device", device, allowed)
    try:
        return str(resolve_device(device))
    except ValueError as error:
        raise invalid("device", device, allowed, str(error)) from None


def matches(config: TransformerConfig, recipe: EncoderRecipe, causal: bool) -> list[str]:
    """What keeps a saved body from standing in for the recipe's (empty: nothing)."""
    wanted = recipe.config(causal)
    problems = [
        f"{name} {getattr(config, name)} != {getattr(wanted, name)}"
        for name in SHAPE_FIELDS
        if getattr(config, name) != getattr(wanted, name)
    ]
    if config.causal != causal:
        problems.append(f"causal {config.causal} != {causal}")
    if config.block_size < recipe.block_size:
        problems.append(f"block_size {config.block_size} < {recipe.block_size}")
    return problems


def saved_encoder(
    objective: str, recipe: EncoderRecipe, profile: str
) -> tuple[PretrainedEncoder | None, str]:
    """The checkpoint of `objective` saved under `profile`, if it fits; else (None, why not)."""
    notebook, name = CHECKPOINTS[objective]
    folder = run_dir(notebook, profile) / name
    shown = f"{notebook}/{profile}/{name}"  # within the runs folder (see run_dir)
    if not folder.is_dir():
        return None, f"no checkpoint at {shown}: run {notebook} with profile {profile!r}"
    try:
        model, tokenizer, metadata = load_pretrained(folder)
    except CheckpointError as error:
        return None, f"{shown} cannot be loaded ({error})"
    problems = matches(model.config, recipe, causal=objective == "clm")
    if problems:
        return None, f"{shown} has another shape ({'; '.join(problems)})"
    if "train_flops" not in metadata:
        return None, f"{shown} does not record its train_flops"
    body = model.transformer
    body.eval()
    return PretrainedEncoder(
        objective,
        body,
        tokenizer,
        f"checkpoint {shown}",
        int(metadata.get("steps", 0)),
        int(metadata.get("train_tokens", 0)),
        float(metadata["train_flops"]),
        metadata,
    ), ""


def pretrained_encoder(
    objective: str,
    recipe: EncoderRecipe | None = None,
    *,
    profile: str | None = None,
    reuse: bool = True,
    device: str = "cpu",
) -> PretrainedEncoder:
    """The encoder `objective` gives (see the module docstring), in eval mode on the CPU.

    profile: whose notebook checkpoints to look for (None: never look, train here).
    reuse: False trains here even when a fitting checkpoint exists.
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    recipe = _check_recipe(recipe)
    check_choice("profile", profile, PROFILE_NAMES, allow_none=True)
    reuse = check_bool("reuse", reuse)
    device = _check_device(device)
    tokenizer = data.bpe_tokenizer(recipe.vocab_size)
    if objective == "random":
        torch.manual_seed(recipe.seed)
        body = Transformer(recipe.config()).eval()
        return PretrainedEncoder(objective, body, tokenizer, "random init", 0, 0, 0.0, {})
    why = "no profile given"
    if objective not in CHECKPOINTS:
        why = f"no notebook saves a {objective} encoder"
    elif reuse and profile is not None:
        found, why = saved_encoder(objective, recipe, profile)
        if found is not None:
            return found
    elif not reuse:
        why = "reuse=False"
    trained = pretrain(objective, recipe, shakespeare_corpus(recipe.vocab_size), tokenizer, device)
    trained.source = f"trained here ({why})"
    return trained


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Corpus:
    """Unlabelled token ids to pretrain on, in the two forms the objectives read.

    text: the ids of one running text, (tokens,): mlm, clm and electra read random windows
        of block_size from it; or sequences already cut, (rows, length) with length <=
        block_size, each read whole.
    lines: one id sequence per line or sentence, without special tokens: simcse and the
        VAE read [CLS] + a line, cut or padded to block_size. A tuple of non-empty tuples.

    Shapes and types are checked here; the ids against a tokenizer's vocabulary (and the
    lines' ids for being ints) once in `pretrain`, which knows the tokenizer.
    """

    name: str
    text: Tensor
    lines: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise invalid("Corpus.name", self.name, "a non-empty string that names the text")
        if not isinstance(self.text, Tensor):
            raise invalid("type(Corpus.text)", type(self.text), "a torch.Tensor of token ids")
        text = self.text
        if text.is_floating_point() or text.is_complex() or text.dtype == torch.bool:
            raise invalid("Corpus.text.dtype", text.dtype, "an integer dtype: token ids")
        if text.dim() not in (1, 2) or text.numel() == 0:
            allowed = "(tokens,) or (rows, length), none of them 0"
            raise invalid("Corpus.text.shape", tuple(text.shape), allowed)
        allowed = "a non-empty tuple of lines, each a non-empty tuple of token ids"
        hint = "e.g. tuple(tuple(ids) for ids in lines)"
        if not isinstance(self.lines, tuple):
            raise invalid("type(Corpus.lines)", type(self.lines), allowed, hint)
        if not self.lines:
            raise invalid("Corpus.lines", self.lines, allowed)
        for i, line in enumerate(self.lines):
            if not isinstance(line, tuple) or not line:
                raise invalid(f"Corpus.lines[{i}]", line, allowed, hint)


@dataclass(frozen=True)
class Pretraining:
    """One row of the table: the network an objective trains, what it reads, its loss."""

    network: Callable[[EncoderRecipe, int], nn.Module]  # (recipe, mask id) -> the network
    reads: str  # "windows" of the running text, or "lines"
    objective: Callable[[EncoderRecipe, Any], LossFn]  # (recipe, tokenizer) -> the loss
    encoder: Callable[[Any], Transformer]  # the trained network -> the encoder body it leaves
    masked: bool = False  # the windows are masked (`mask_tokens`) before the loss sees them
    passes: int = 1  # how often the network reads each token in a step


def _electra_network(recipe: EncoderRecipe, mask_id: int) -> Electra:
    discriminator = recipe.config()
    # The generator a quarter of the discriminator's depth-width budget: ELECTRA's 1/4-1/2
    generator = replace(
        discriminator,
        n_layer=max(1, recipe.n_layer // 2),
        intermediate_size=max(1, recipe.intermediate_size // 2),
    )
    return Electra(generator, discriminator)


def _vae_network(recipe: EncoderRecipe, mask_id: int) -> SentenceVAE:
    return SentenceVAE(
        recipe.config(),
        recipe.config(causal=True),
        latent_size=32,
        word_dropout=0.25,
        word_dropout_id=mask_id,
    )


def _special_ids(tokenizer: Any) -> list[int]:
    return sorted(tokenizer.special_ids.values())


PRETRAINING = {
    "mlm": Pretraining(
        network=lambda recipe, mask_id: MaskedLM(recipe.config()),
        reads="windows",
        objective=lambda recipe, tokenizer: masked_lm_objective,
        encoder=lambda model: model.transformer,
        masked=True,
    ),
    "clm": Pretraining(
        network=lambda recipe, mask_id: CausalLM(recipe.config(causal=True)),
        reads="windows",
        objective=lambda recipe, tokenizer: next_token_objective,
        encoder=lambda model: model.transformer,
    ),
    "simcse": Pretraining(
        # A MaskedLM's body, as 06 trains and saves it; SimCSE never runs the head.
        network=lambda recipe, mask_id: SimCSE(MaskedLM(recipe.config()), SIMCSE_TEMPERATURE),
        reads="lines",
        objective=lambda recipe, tokenizer: simcse_objective,
        encoder=lambda model: model.encoder.transformer,
        passes=2,
    ),
    "electra": Pretraining(
        network=_electra_network,
        reads="windows",
        objective=lambda recipe, tokenizer: functools.partial(
            electra_objective, mask_id=tokenizer.mask_id, special_ids=_special_ids(tokenizer)
        ),
        encoder=lambda model: model.discriminator.transformer,
    ),
    "vae": Pretraining(
        network=_vae_network,
        reads="lines",
        # KL annealed linearly over the first half of training (Bowman et al. 2016)
        objective=lambda recipe, tokenizer: functools.partial(
            vae_objective, schedule="linear", ramp_steps=max(1, recipe.steps // 2)
        ),
        encoder=lambda model: model.encoder,
    ),
    "span_contrast": Pretraining(
        # Two spans of each line as a positive pair (09_known_language: they share the
        # dialect); a plain body, as the VAE's encoder is. Each line is read as two spans
        # of 3/4 of it, counted as two passes.
        network=lambda recipe, mask_id: SpanContrast(Transformer(recipe.config())),
        reads="lines",
        objective=lambda recipe, tokenizer: span_contrast_objective,
        encoder=lambda model: model.encoder,
        passes=2,
    ),
}


def flops_per_step(objective: str, recipe: EncoderRecipe | None = None) -> float:
    """Training FLOPs of one step of `objective` at the recipe's batch and block, as the
    network counts itself (`flops_per_token`; random: 0). Nothing is allocated: the network
    is built on PyTorch's meta device, which has shapes but no storage."""
    objective = check_choice("objective", objective, OBJECTIVES)
    recipe = _check_recipe(recipe)
    if objective == "random":
        return 0.0
    with torch.device("meta"):
        model = PRETRAINING[objective].network(recipe, 0)
    return model.flops_per_token(recipe.block_size) * recipe.batch_size * recipe.block_size


def steps_for_flops(objective: str, flops: float, recipe: EncoderRecipe | None = None) -> int:
    """The number of steps of `objective` (at the recipe's batch and block) whose training
    FLOPs come closest to `flops`, at least 1: to compare objectives at equal compute."""
    check_real("flops", flops, low=0, low_open=True)
    per_step = flops_per_step(objective, recipe)
    if per_step == 0:
        raise ValueError(f"objective: got {objective!r}, which costs nothing to train")
    return max(1, round(flops / per_step))


# ------------------------------------------------------------------ training


@functools.lru_cache(maxsize=4)
def shakespeare_corpus(vocab_size: int) -> Corpus:
    """The training plays as BPE ids (encoded once per vocabulary: it takes seconds): their
    text, and each spoken line of at least 20 characters."""
    tokenizer = data.bpe_tokenizer(vocab_size)
    lines = [
        line
        for work in data.works_in_split("train")
        if work.genre != "poetry"
        for speech in speeches(data.read_work(work))
        for line in speech.text.splitlines()
        if len(line) >= 20
    ]
    return Corpus(
        "Shakespeare's training plays",
        torch.tensor(tokenizer.encode(data.corpus_text("train"))),
        tuple(tuple(pieces) for pieces in tokenizer.encode_batch(lines)),
    )


def _windows(text: Tensor, recipe: EncoderRecipe) -> BatchFn:
    """Random windows of block_size from a running text, or whole rows of a cut one."""
    if text.dim() == 2:
        return lambda step, generator: text[
            torch.randint(len(text), (recipe.batch_size,), generator=generator).to(text.device)
        ]
    high = len(text) - recipe.block_size + 1  # the last window ends at the last token
    offsets = torch.arange(recipe.block_size, device=text.device)

    def batch_fn(step: int, generator: torch.Generator) -> Tensor:
        starts = torch.randint(high, (recipe.batch_size,), generator=generator)
        return text[starts.to(text.device)[:, None] + offsets]

    return batch_fn


def _lines(corpus: Corpus, tokenizer: Any, recipe: EncoderRecipe, device: str) -> BatchFn:
    """[CLS] + each line, cut or padded to block_size: rows of (ids, attention mask)."""
    length = recipe.block_size
    rows = [[tokenizer.cls_id, *pieces][:length] for pieces in corpus.lines]
    ids = torch.tensor([row + [tokenizer.pad_id] * (length - len(row)) for row in rows])
    mask = (ids != tokenizer.pad_id).long()
    return sample_rows(ids.to(device), mask.to(device), batch_size=recipe.batch_size)


def _check_text(text: Tensor, recipe: EncoderRecipe) -> None:
    """Ids in the vocabulary; rows no wider than block_size, or a text of one window at least."""
    if text.dim() == 2 and text.size(1) > recipe.block_size:
        allowed = f"(rows, length) with length <= block_size={recipe.block_size}, the recipe's"
        raise invalid("corpus.text.shape", tuple(text.shape), allowed)
    if text.dim() == 1 and len(text) < recipe.block_size:
        allowed = f"(tokens,) with tokens >= block_size={recipe.block_size}: one window at least"
        raise invalid("corpus.text.shape", tuple(text.shape), allowed)
    outside = (text < 0) | (text >= recipe.vocab_size)
    if outside.any():
        where = tuple(outside.nonzero()[0].tolist())
        raise invalid(
            f"corpus.text[{', '.join(map(str, where))}]",
            text[where].item(),
            f"a token id in [0, {recipe.vocab_size}), the tokenizer's vocabulary",
        )


def _check_lines(lines: tuple[tuple[int, ...], ...], vocab_size: int) -> None:
    """Every id of every line an int in [0, vocab_size)."""
    for i, line in enumerate(lines):
        for j, token in enumerate(line):
            if type(token) is not int or not 0 <= token < vocab_size:
                allowed = f"a token id, an int in [0, {vocab_size}), the tokenizer's vocabulary"
                raise invalid(f"corpus.lines[{i}][{j}]", token, allowed)


def pretrain(
    objective: str, recipe: EncoderRecipe, corpus: Corpus, tokenizer: Any, device: str = "cpu"
) -> PretrainedEncoder:
    """Train `objective`'s network at the recipe's shape on `corpus` with the trainer (AdamW,
    warmup over a tenth of the steps up to 50, cosine decay to a tenth of the rate), seeded
    by the recipe; return the encoder body it leaves, in eval mode on the CPU.

    tokenizer: what made the corpus's ids; its vocabulary must be the recipe's, and it
    gives the special tokens ([MASK], [CLS], [PAD]) the objectives use.

    The corpus enters here, so here its ids are checked against the vocabulary, in one
    pass over what the objective reads (the text or the lines), and the text's shape
    against the recipe: rows no wider than block_size, a running text of at least one
    window. The training steps then read only checked ids.
    """
    objective = check_choice("objective", objective, [o for o in OBJECTIVES if o != "random"])
    if not isinstance(recipe, EncoderRecipe):
        raise invalid("type(recipe)", type(recipe), "an EncoderRecipe")
    if not isinstance(corpus, Corpus):
        raise invalid("type(corpus)", type(corpus), "a Corpus")
    needed = ("vocab_size", "special_ids", "mask_id", "cls_id", "pad_id")
    if not all(hasattr(tokenizer, name) for name in needed):
        raise invalid("type(tokenizer)", type(tokenizer), "a tokenizer with " + ", ".join(needed))
    if tokenizer.vocab_size != recipe.vocab_size:
        allowed = f"{recipe.vocab_size}, the recipe's vocab_size"
        raise invalid("tokenizer.vocab_size", tokenizer.vocab_size, allowed)
    device = _check_device(device)
    row = PRETRAINING[objective]
    if row.reads == "lines":
        _check_lines(corpus.lines, recipe.vocab_size)
    else:
        _check_text(corpus.text, recipe)
    torch.manual_seed(recipe.seed)
    model = row.network(recipe, tokenizer.mask_id).to(device)
    if row.reads == "lines":
        batch_fn = _lines(corpus, tokenizer, recipe, device)
    else:
        windows = _windows(corpus.text.to(device), recipe)
        batch_fn = windows
        if row.masked:
            special = _special_ids(tokenizer)

            def batch_fn(step: int, generator: torch.Generator):
                return mask_tokens(
                    windows(step, generator),
                    mask_id=tokenizer.mask_id,
                    vocab_size=tokenizer.vocab_size,
                    special_ids=special,
                    generator=generator,
                )

    phase = Phase(
        "pretrain",
        model,
        row.objective(recipe, tokenizer),
        lr=recipe.lr,
        warmup_steps=min(50, recipe.steps // 10),
        min_lr=recipe.lr / 10,
    )
    config = TrainerConfig(max_steps=recipe.steps, device=device, seed=recipe.seed, progress=False)
    history = Trainer(model, phase, batch_fn, config).fit()
    tokens = recipe.steps * recipe.batch_size * recipe.block_size
    flops = model.flops_per_token(recipe.block_size) * tokens
    last = history[-1]
    metadata = {  # the last step's loss and metrics: final_loss, final_accuracy, ...
        "final_" + key.removeprefix("pretrain/"): value
        for key, value in last.items()
        if key.startswith("pretrain/") and key not in ("pretrain/lr", "pretrain/grad_norm")
    }
    body = row.encoder(model).cpu().eval()
    source = f"trained here on {corpus.name}"
    return PretrainedEncoder(
        objective, body, tokenizer, source, recipe.steps, row.passes * tokens, flops, metadata
    )


def describe(encoders: list[PretrainedEncoder]) -> str:
    """A markdown table: objective, where it came from, steps, tokens, FLOPs."""
    if not isinstance(encoders, list | tuple):
        raise invalid("type(encoders)", type(encoders), "a list of PretrainedEncoder")
    for i, encoder in enumerate(encoders):
        if not isinstance(encoder, PretrainedEncoder):
            raise invalid(f"type(encoders[{i}])", type(encoder), "a PretrainedEncoder")
    rows = ["| objective | source | steps | tokens | training FLOPs |", "|---|---|---|---|---|"]
    for e in encoders:
        rows.append(
            f"| {e.objective} | {e.source} | {e.steps:,} | {e.train_tokens:,} | {e.train_flops:.2e} |"
        )
    return "\n".join(rows) + "\n"
