"""Pretrained encoders for fine-tuning: one call per pretraining objective.

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

FLOPs are counted as `TransformerModel.flops_per_token` (forward and backward, PaLM's
estimate) times the tokens each trained network processed: ELECTRA counts its
generator and its discriminator, SimCSE its two passes per line (its body only; no
output layer), the VAE its encoder and decoder, MLM its output layer at the masked
positions only (where it is computed). `random` costs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from sslm_lab import data
from sslm_lab.checks import check_choice, check_int, check_real
from sslm_lab.contrastive import info_nce
from sslm_lab.data.speeches import speeches
from sslm_lab.data.tokenizers import BPETokenizer
from sslm_lab.electra import Electra, electra_loss
from sslm_lab.heads import CausalLM, MaskedLM, pool
from sslm_lab.lab.profiles.table import PROFILE_NAMES
from sslm_lab.lab.results import run_dir
from sslm_lab.masking import mask_tokens
from sslm_lab.objectives import masked_lm_objective, next_token_targets
from sslm_lab.pretrained import CheckpointError, load_pretrained
from sslm_lab.training.batches import sample_rows
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import Transformer, TransformerConfig
from sslm_lab.vae import SentenceVAE, gaussian_kl

OBJECTIVES = ("random", "mlm", "clm", "simcse", "electra", "vae")
# Where each objective's notebook saves its network: (notebook, folder in its run_dir)
CHECKPOINTS = {
    "mlm": ("02_masked_lm", "encoder"),
    "clm": ("03_autoregressive_lm", "bpe_decoder"),
    "vae": ("04_vae", "sentence_vae_encoder"),
    "electra": ("05_gan", "electra_discriminator"),
    "simcse": ("06_contrastive", "simcse_encoder"),
}
MASK_RATE = 0.15  # mask_tokens' default, BERT's
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
    tokenizer: BPETokenizer
    source: str  # "checkpoint <notebook>/<profile>/<folder>", "trained here (<why>)", "random init"
    steps: int
    train_tokens: int  # tokens the trained networks read in pretraining
    train_flops: float
    metadata: dict[str, Any]


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
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    if profile is not None:
        check_choice("profile", profile, PROFILE_NAMES)
    recipe = recipe or EncoderRecipe()
    tokenizer = data.bpe_tokenizer(recipe.vocab_size)
    if objective == "random":
        torch.manual_seed(recipe.seed)
        body = Transformer(recipe.config()).eval()
        return PretrainedEncoder(objective, body, tokenizer, "random init", 0, 0, 0.0, {})
    why = "no profile given"
    if reuse and profile is not None:
        found, why = saved_encoder(objective, recipe, profile)
        if found is not None:
            return found
    elif not reuse:
        why = "reuse=False"
    trained = TRAINERS[objective](recipe, tokenizer, device)
    trained.source = f"trained here ({why})"
    trained.body.cpu().eval()
    return trained


# ------------------------------------------------------------------ FLOPs


def body_flops_per_token(body: Transformer, seq_len: int) -> float:
    """Training FLOPs per token of a body without an output layer: 6 N + attention.

    As `TransformerModel.flops_per_token` counts them (PaLM's estimate), less the
    vocabulary projection: SimCSE and the VAE's encoder never compute one.
    """
    config = body.config
    matmul = body.num_parameters(exclude_embeddings=True)
    return float(6 * matmul + 12 * config.n_layer * config.n_embd * seq_len)


def masked_lm_train_flops(
    model: MaskedLM, tokens: int, seq_len: int, mask_rate: float = 0.15
) -> float:
    """Training FLOPs of masked LM: the body at every token, the MLM head (with the tied
    vocabulary projection) at the masked ones only, where the gathered loss computes it.
    With mask_rate=1 it is `model.flops_per_token(seq_len) * tokens`."""
    body = model.transformer
    head = model.num_parameters(exclude_embeddings=True) - body.num_parameters(
        exclude_embeddings=True
    )
    if model.output_matmul_is_tied():
        head += model.config.vocab_size * model.config.n_embd
    return body_flops_per_token(body, seq_len) * tokens + 6 * head * mask_rate * tokens


def electra_train_flops(
    model: Electra, tokens: int, seq_len: int, mask_rate: float = 0.15
) -> float:
    """Training FLOPs of ELECTRA: the discriminator (body and RTD head) at every token, the
    generator as `masked_lm_train_flops` counts it. With mask_rate=1 it is
    `model.flops_per_token(seq_len) * tokens`."""
    discriminator = model.discriminator.flops_per_token(seq_len) * tokens
    return discriminator + masked_lm_train_flops(model.generator, tokens, seq_len, mask_rate)


def sentence_vae_train_flops(model: SentenceVAE, tokens: int, seq_len: int) -> float:
    """Training FLOPs of a sentence VAE: its encoder body, and its decoder with the
    vocabulary projection, at every token (the small posterior maps are left out)."""
    encoder = body_flops_per_token(model.encoder, seq_len)
    return (encoder + model.decoder.flops_per_token(seq_len)) * tokens


def _network(objective: str, recipe: EncoderRecipe, mask_id: int = 0) -> nn.Module:
    """The network `objective` trains, at the recipe's shape (mask_id: the VAE's word
    dropout token)."""
    if objective in ("mlm", "simcse"):  # SimCSE trains the body of a MaskedLM
        return MaskedLM(recipe.config())
    if objective == "clm":
        return CausalLM(recipe.config(causal=True))
    if objective == "electra":
        discriminator = recipe.config()
        # The generator a quarter of the discriminator's depth-width budget: ELECTRA's 1/4-1/2
        generator = replace(
            discriminator,
            n_layer=max(1, recipe.n_layer // 2),
            intermediate_size=max(1, recipe.intermediate_size // 2),
        )
        return Electra(generator, discriminator)
    return SentenceVAE(
        recipe.config(),
        recipe.config(causal=True),
        latent_size=32,
        word_dropout=0.25,
        word_dropout_id=mask_id,
    )


def _step_flops(objective: str, model: nn.Module, recipe: EncoderRecipe) -> float:
    """Training FLOPs of one step (a batch of the recipe's windows or lines)."""
    tokens, seq_len = recipe.batch_size * recipe.block_size, recipe.block_size
    if objective == "mlm":
        return masked_lm_train_flops(model, tokens, seq_len, MASK_RATE)
    if objective == "clm":
        return model.flops_per_token(seq_len) * tokens
    if objective == "simcse":  # two passes per line, the body only: no output layer
        return body_flops_per_token(model.transformer, seq_len) * 2 * tokens
    if objective == "electra":
        return electra_train_flops(model, tokens, seq_len, MASK_RATE)
    return sentence_vae_train_flops(model, tokens, seq_len)


def flops_per_step(objective: str, recipe: EncoderRecipe | None = None) -> float:
    """Training FLOPs of one step of `objective` at the recipe's batch and block, as the
    encoders trained here count them (random: 0). Nothing is allocated: the network is
    built on PyTorch's meta device, which has shapes but no storage."""
    objective = check_choice("objective", objective, OBJECTIVES)
    recipe = recipe or EncoderRecipe()
    if objective == "random":
        return 0.0
    with torch.device("meta"):
        model = _network(objective, recipe)
    return _step_flops(objective, model, recipe)


def steps_for_flops(objective: str, flops: float, recipe: EncoderRecipe | None = None) -> int:
    """The number of steps of `objective` (at the recipe's batch and block) whose training
    FLOPs come closest to `flops`, at least 1: to compare objectives at equal compute."""
    check_real("flops", flops, low=0, low_open=True)
    per_step = flops_per_step(objective, recipe)
    if per_step == 0:
        raise ValueError(f"objective: got {objective!r}, which costs nothing to train")
    return max(1, round(flops / per_step))


# ------------------------------------------------------------------ training here


def _fit(model: nn.Module, module: nn.Module, loss_fn, batch_fn, recipe: EncoderRecipe, device):
    phase = Phase(
        "pretrain",
        module,
        loss_fn,
        lr=recipe.lr,
        warmup_steps=min(50, recipe.steps // 10),
        min_lr=recipe.lr / 10,
    )
    config = TrainerConfig(max_steps=recipe.steps, device=device, seed=recipe.seed, progress=False)
    return Trainer(model, phase, batch_fn, config).fit()


@functools.lru_cache(maxsize=4)
def _encoded_training_text(vocab_size: int) -> Tensor:
    """The training plays' text as BPE ids, encoded once per vocabulary (it takes seconds)."""
    return torch.tensor(data.bpe_tokenizer(vocab_size).encode(data.corpus_text("train")))


@functools.lru_cache(maxsize=4)
def _encoded_training_lines(vocab_size: int) -> tuple[list[int], ...]:
    """Each spoken line of the training plays (>= 20 characters) as BPE ids."""
    lines = [
        line
        for work in data.works_in_split("train")
        if work.genre != "poetry"
        for speech in speeches(data.read_work(work))
        for line in speech.text.splitlines()
        if len(line) >= 20
    ]
    return tuple(data.bpe_tokenizer(vocab_size).encode_batch(lines))


def _training_tokens(tokenizer: BPETokenizer, device: str) -> Tensor:
    return _encoded_training_text(tokenizer.vocab_size).to(device)


def _training_lines(tokenizer: BPETokenizer, length: int, device: str) -> tuple[Tensor, Tensor]:
    """[CLS] + each spoken line of the training plays, cut or padded to `length`: ids, mask."""
    encoded = _encoded_training_lines(tokenizer.vocab_size)
    rows = [[tokenizer.cls_id, *pieces][:length] for pieces in encoded]
    ids = torch.tensor([row + [tokenizer.pad_id] * (length - len(row)) for row in rows])
    return ids.to(device), (ids != tokenizer.pad_id).long().to(device)


def _windows(tokens: Tensor, recipe: EncoderRecipe):
    high = len(tokens) - recipe.block_size

    def batch_fn(step: int, generator: torch.Generator) -> Tensor:
        starts = torch.randint(high, (recipe.batch_size,), generator=generator)
        return tokens[
            starts.to(tokens.device)[:, None]
            + torch.arange(recipe.block_size, device=tokens.device)
        ]

    return batch_fn


def _tokens_seen(recipe: EncoderRecipe) -> int:
    return recipe.steps * recipe.batch_size * recipe.block_size


def _mlm(recipe: EncoderRecipe, tokenizer: BPETokenizer, device: str) -> PretrainedEncoder:
    torch.manual_seed(recipe.seed)
    model = _network("mlm", recipe).to(device)
    windows = _windows(_training_tokens(tokenizer, device), recipe)
    special = sorted(tokenizer.special_ids.values())

    def batch_fn(step: int, generator: torch.Generator):
        return mask_tokens(
            windows(step, generator),
            mask_id=tokenizer.mask_id,
            vocab_size=tokenizer.vocab_size,
            special_ids=special,
            generator=generator,
        )

    history = _fit(model, model, masked_lm_objective, batch_fn, recipe, device)
    tokens = _tokens_seen(recipe)
    flops = _step_flops("mlm", model, recipe) * recipe.steps
    meta = {"final_loss": history[-1]["pretrain/loss"]}
    return PretrainedEncoder(
        "mlm", model.transformer, tokenizer, "", recipe.steps, tokens, flops, meta
    )


def _clm(recipe: EncoderRecipe, tokenizer: BPETokenizer, device: str) -> PretrainedEncoder:
    torch.manual_seed(recipe.seed)
    model = _network("clm", recipe).to(device)
    windows = _windows(_training_tokens(tokenizer, device), recipe)

    def loss_fn(module: nn.Module, batch: Tensor, step: int):
        # All of the window in, every token with a successor scored (`causal_lm_loss`).
        return module(batch, targets=next_token_targets(batch)), {}

    history = _fit(model, model, loss_fn, windows, recipe, device)
    tokens = _tokens_seen(recipe)
    flops = _step_flops("clm", model, recipe) * recipe.steps
    meta = {"final_loss": history[-1]["pretrain/loss"]}
    return PretrainedEncoder(
        "clm", model.transformer, tokenizer, "", recipe.steps, tokens, flops, meta
    )


def _simcse(recipe: EncoderRecipe, tokenizer: BPETokenizer, device: str) -> PretrainedEncoder:
    torch.manual_seed(recipe.seed)
    model = _network("simcse", recipe).to(device)
    ids, mask = _training_lines(tokenizer, recipe.block_size, device)

    def loss_fn(module: nn.Module, batch, step: int):
        lines, real = batch
        first = pool(module.hidden_states(lines, real), real, "mean")  # dropout mask 1
        second = pool(module.hidden_states(lines, real), real, "mean")  # dropout mask 2
        return info_nce(first, second, 0.05), {}

    history = _fit(
        model,
        model.transformer,
        loss_fn,
        sample_rows(ids, mask, batch_size=recipe.batch_size),
        recipe,
        device,
    )
    tokens = 2 * _tokens_seen(recipe)  # two passes per line
    flops = _step_flops("simcse", model, recipe) * recipe.steps  # the MLM head is never used
    meta = {"final_loss": history[-1]["pretrain/loss"]}
    return PretrainedEncoder(
        "simcse", model.transformer, tokenizer, "", recipe.steps, tokens, flops, meta
    )


def _electra(recipe: EncoderRecipe, tokenizer: BPETokenizer, device: str) -> PretrainedEncoder:
    torch.manual_seed(recipe.seed)
    model = _network("electra", recipe).to(device)
    windows = _windows(_training_tokens(tokenizer, device), recipe)
    special = sorted(tokenizer.special_ids.values())

    def loss_fn(module: nn.Module, batch: Tensor, step: int):
        return electra_loss(module, batch, mask_id=tokenizer.mask_id, special_ids=special)

    history = _fit(model, model, loss_fn, windows, recipe, device)
    tokens = _tokens_seen(recipe)
    flops = _step_flops("electra", model, recipe) * recipe.steps
    meta = {
        "final_loss": history[-1]["pretrain/loss"],
        "rtd_accuracy": history[-1].get("pretrain/rtd_accuracy"),
    }
    body = model.discriminator.transformer
    return PretrainedEncoder("electra", body, tokenizer, "", recipe.steps, tokens, flops, meta)


def _vae(recipe: EncoderRecipe, tokenizer: BPETokenizer, device: str) -> PretrainedEncoder:
    torch.manual_seed(recipe.seed)
    model = _network("vae", recipe, mask_id=tokenizer.mask_id).to(device)
    ids, mask = _training_lines(tokenizer, recipe.block_size, device)

    def loss_fn(module: nn.Module, batch, step: int):
        lines, real = batch
        mu, logvar = module.encode(lines, real)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        reconstruction = -module.log_likelihood(z, lines, real).mean()
        # KL annealed linearly over the first half of training (Bowman et al. 2016)
        weight = min(1.0, step / max(1, recipe.steps // 2))
        kl = gaussian_kl(mu, logvar).mean()
        return reconstruction + weight * kl, {"kl": kl.detach()}

    history = _fit(
        model, model, loss_fn, sample_rows(ids, mask, batch_size=recipe.batch_size), recipe, device
    )
    tokens = _tokens_seen(recipe)
    flops = _step_flops("vae", model, recipe) * recipe.steps
    meta = {"final_loss": history[-1]["pretrain/loss"], "final_kl": history[-1].get("pretrain/kl")}
    return PretrainedEncoder("vae", model.encoder, tokenizer, "", recipe.steps, tokens, flops, meta)


TRAINERS = {
    "mlm": _mlm,
    "clm": _clm,
    "simcse": _simcse,
    "electra": _electra,
    "vae": _vae,
}


def describe(encoders: list[PretrainedEncoder]) -> str:
    """A markdown table: objective, where it came from, steps, tokens, FLOPs."""
    rows = ["| objective | source | steps | tokens | training FLOPs |", "|---|---|---|---|---|"]
    for e in encoders:
        rows.append(
            f"| {e.objective} | {e.source} | {e.steps:,} | {e.train_tokens:,} | {e.train_flops:.2e} |"
        )
    return "\n".join(rows) + "\n"
