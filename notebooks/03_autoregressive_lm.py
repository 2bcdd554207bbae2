# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,nbgrader,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Autoregressive language models: predict the next token, then write
#
# A GPT learns from raw text with one question asked at every position: *what comes
# next?* No labels are needed; the text is its own answer key. Then, asked the same
# question over and over about its own output, the model writes.
#
# This notebook:
#
# 1. shows **teacher forcing under the causal mask**: how one pass over a text trains
#    every position at once, and why no position can peek at its answer;
# 2. recalls the **n-gram baselines** from 00_tour, the numbers to beat;
# 3. **pretrains a character-level decoder and a BPE decoder** with `sslm_lab.training.trainer`
#    and compares them in **bits per character**, the one scale both share;
# 4. looks at the **gap between training and validation loss**, and what **dropout**
#    does to it;
# 5. **generates**: greedy, temperature, top-k and top-p sampling, with a KV cache,
#    and gives you a **sampling widget**;
# 6. measures how **temperature** changes the entropy of what the model writes;
# 7. **saves the decoder** for the fine-tuning notebook;
# 8. leaves four **exercises** (teacher forcing, top-k, top-p, cached greedy decoding).
#
# The cell below holds every knob. `profile` picks the run sizes from
# `sslm_lab.lab.profiles` (`None` reads `$SSLM_PROFILE`, else `laptop`). The other `None`s
# take the profile's value: `bpe_vocab_size` for the BPE model, `max_steps` for both
# main training runs, `dropout_rate` for the run with dropout in section 4.
# `prompt` starts the samples. The cell after it checks every parameter before any
# training starts.

# %% tags=["parameters"]
profile = None
seed = 0
bpe_vocab_size = None
max_steps = None
dropout_rate = None
prompt = "KING."

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from sslm_lab import data
from sslm_lab.data.windows import evenly_spaced_windows, random_windows
from sslm_lab.generation import (
    encode_prompt,
    entropy_bits,
    generate,
    generate_text,
    greedy,
    sampling,
    top_k_filter,
    top_p_filter,
)
from sslm_lab.heads import CausalLM
from sslm_lab.lab import profiles
from sslm_lab.lab.results import record_results, run_dir
from sslm_lab.lab.viz.causal_lm import (
    plot_learning_curves,
    plot_teacher_forcing,
    plot_temperature_effect,
)
from sslm_lab.lab.widgets.causal_lm import sample_continuation, sampling_explorer
from sslm_lab.ngrams import ngram_baselines
from sslm_lab.objectives import bits_per_character, causal_lm_loss, causal_lm_objective
from sslm_lab.pretrained import load_pretrained, save_pretrained
from sslm_lab.training.hardware import device_name, resolve_device, resolve_precision
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import KVCache, TransformerConfig

notebook_started = time.perf_counter()
P = profiles.get_profile(profile)
profiles.causal_lm.PARAMETERS.validate(
    seed=seed,
    bpe_vocab_size=bpe_vocab_size,
    max_steps=max_steps,
    dropout_rate=dropout_rate,
    prompt=prompt,
)
encode_prompt(data.char_tokenizer(), prompt)  # a prompt the models can't read fails now
C = P.causal_lm
vocab_size = C.bpe_vocab_size if bpe_vocab_size is None else bpe_vocab_size
char_steps = C.max_steps if max_steps is None else max_steps
bpe_steps = C.bpe_max_steps if max_steps is None else max_steps
with_dropout = C.dropout_rate if dropout_rate is None else dropout_rate
device = resolve_device("auto")  # CUDA, then MPS, then the CPU
# bf16 autocast where the hardware multiplies bf16 natively ("auto"), else fp32; the gpu
# profile's bf16 is meant for a GPU, so on any other device it becomes "auto" too
wanted = C.precision if device.type == "cuda" or C.precision != "bf16" else "auto"
precision = resolve_precision(wanted, device)
compile_model = C.compile and device.type == "cuda"  # compiling pays off only on a GPU
# Evaluation in big batches (tens of MB of activations here) where nothing is compiled; a
# compiled model keeps the training batch, as a new shape would make it compile again.
eval_batch_size = C.batch_size if compile_model else 512
torch.manual_seed(seed)
print(f"profile: {P.name} — {P.description}")
print(f"device: {device_name(device)}, precision {precision}, {torch.get_num_threads()} threads")

# %% [markdown]
# ## 1 · Teacher forcing under the causal mask
#
# Take a line of text as tokens $x_0, x_1, \dots, x_n$. A language model factors its
# probability one token at a time, each given everything before it:
#
# $$p(x_0 \dots x_n) = p(x_0)\, \prod_{t=1}^{n} p(x_t \mid x_0 \dots x_{t-1})$$
#
# Training maximises this, which is the same as minimising the cross-entropy of every
# next token. The trick that makes it cheap is **teacher forcing**: feed the true text
# shifted by one. The inputs are $x_0 \dots x_{n-1}$, the targets $x_1 \dots x_n$, and
# position $t$ must predict $x_{t+1}$. A Transformer computes all positions in one pass,
# so a line of $n + 1$ characters gives $n$ training examples at once.
#
# That only works if position $t$ cannot see $x_{t+1}$, or it would simply copy it. The
# **causal mask** hides every later token from every query. In the picture, each row is
# one prediction: it reads the blue tokens and is scored on the orange one.

# %%
chars = data.char_tokenizer()
line = "To be, or not to be"
fig = plot_teacher_forcing(list(line[:13]))

# %% [markdown]
# Now in code, on a small untrained decoder. The targets are the inputs moved one place
# to the left; the loss is an ordinary cross-entropy over all positions.
# `sslm_lab.objectives.causal_lm_loss` takes the logits of the *whole* line and does the
# shift itself, dropping the last position's logits. Because of the mask those are
# exactly the logits of the shorter input, so both must agree.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(seed)
tiny = CausalLM(
    TransformerConfig(vocab_size=chars.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32)
).eval()
ids = torch.tensor([chars.encode(line)])  # (1, seq)
inputs, targets = ids[:, :-1], ids[:, 1:]  # teacher forcing: shift by one
with torch.no_grad():
    logits = tiny(inputs)  # (1, seq - 1, vocab): one prediction per position
    loss_by_hand = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss_package = causal_lm_loss(tiny(ids), ids)
assert_close(loss_by_hand, loss_package)
print(f"inputs : {chars.decode(inputs[0])!r}")
print(f"targets: {chars.decode(targets[0])!r}")
print(
    f"loss by hand {loss_by_hand:.4f} nats, causal_lm_loss {loss_package:.4f}; "
    f"an untrained model guesses ~uniformly: ln V = {math.log(chars.vocab_size):.4f}"
)

# %% [markdown]
# The mask is a promise we can test: change every token after position $t$ and the
# predictions at positions $0 \dots t$ must not move at all, while later ones do.

# %%
# NBVAL_CHECK_OUTPUT
t = 5
future_changed = ids.clone()
future_changed[0, t + 1 :] = chars.encode("!")[0]  # overwrite everything after position t
with torch.no_grad():
    original, changed = tiny(ids)[0], tiny(future_changed)[0]  # (seq, vocab) each
past_shift = (original[: t + 1] - changed[: t + 1]).abs().max().item()
future_shift = (original[t + 1 :] - changed[t + 1 :]).abs().max().item()
print(f"{chars.decode(ids[0])!r} -> {chars.decode(future_changed[0])!r}")
print(f"largest change of a logit at positions 0..{t}: {past_shift:.1e}")
print(f"largest change of a logit after position {t}:  {future_shift:.1e}")
assert past_shift == 0.0 and future_shift > 1e-3

# %% [markdown]
# ## 2 · The baselines to beat
#
# 00_tour counted characters: an n-gram model predicts from the previous n − 1
# characters, with add-k smoothing. Here are the same numbers on the same split (the
# works joined in order, the first 90 % of the characters for training, the last 10 %
# for validation), with the same k.

# %%
# NBVAL_CHECK_OUTPUT
full_train, val_text = data.lm_text("train"), data.lm_text("val")
alphabet = chars.characters
orders = ngram_baselines(full_train, val_text, alphabet, (1, 2, 3), k=P.tour.ngram_smoothing)
baselines = {"unigram": orders[1], "bigram": orders[2], "trigram": orders[3]}
uniform_bpc = math.log2(len(alphabet))
for name, value in baselines.items():
    print(f"{name:>8}: {value:.3f} bits per character")
print(f"{'uniform':>8}: {uniform_bpc:.3f} (a guess among the {len(alphabet)} characters)")

# %% [markdown]
# ## 3 · Pretraining: characters and BPE, in bits per character
#
# Two decoders of the same size, one reading characters, one reading byte-level BPE
# tokens. Their losses are not comparable as they stand: a BPE token stands for several
# characters, so predicting one is harder and its loss per token is larger. What *is*
# comparable is the information needed per character of text. If the model spends
# $L$ nats per token on a text of $T$ tokens and $N$ characters, the whole text costs
# $L \cdot T$ nats, so
#
# $$\text{bits per character} = \frac{L \cdot T}{N \ln 2}$$
#
# For the character model $T = N$, and this is just the loss in bits. The ratio $T/N$
# comes from the validation text itself:

# %%
train_text = full_train[: C.train_chars] if C.train_chars else full_train
bpe = data.bpe_tokenizer(vocab_size)
tokenizers = {"char": chars, "BPE": bpe}
train_ids, val_ids, tokens_per_char = {}, {}, {}
for name, tokenizer in tokenizers.items():
    train_ids[name] = torch.tensor(tokenizer.encode(train_text), device=device)
    val_ids[name] = torch.tensor(tokenizer.encode(val_text), device=device)
    tokens_per_char[name] = len(val_ids[name]) / len(val_text)
    print(
        f"{name:>4}: vocabulary {tokenizer.vocab_size:>5}, {len(train_ids[name]):>9,} training "
        f"tokens, {tokens_per_char[name]:.3f} tokens per character of val"
    )
example_loss = 4.0  # nats per BPE token
by_hand = example_loss * tokens_per_char["BPE"] / math.log(2)
assert math.isclose(by_hand, bits_per_character(example_loss, len(val_ids["BPE"]), len(val_text)))
print(f"a BPE loss of {example_loss} nats per token = {by_hand:.3f} bits per character")
print(f"one BPE token covers {1 / tokens_per_char['BPE']:.2f} characters of val on average")
bpe_counts = torch.bincount(train_ids["BPE"].cpu(), minlength=bpe.vocab_size)
rare_tokens = int((bpe_counts < 100).sum())
print(f"{rare_tokens} of the {bpe.vocab_size} BPE tokens occur fewer than 100 times in training")

# %% [markdown]
# Training draws random windows of `block_size + 1` tokens (`sslm_lab.data.windows`):
# the model reads the first `block_size` and is scored on the last `block_size`, the
# by-hand form of section 1, written once more below as `next_token_loss` and checked
# against the trainer-shaped `sslm_lab.objectives.causal_lm_objective` that training
# uses. That one hands the targets to the model, so that a large model on a CPU need
# never hold all its logits at once: `sslm_lab.kernels.projected_cross_entropy` projects a
# slice of rows onto the vocabulary, takes its loss and its gradient, and drops it
# before the next slice, the same sums in another order (this notebook's logits are
# small enough to be computed whole). The extra token matters. Run on `block_size`
# tokens, `causal_lm_loss` would never give the last position a target, and that untrained position is the one every token
# is generated from once the context is full. Evaluation uses the same evenly spaced
# windows every time, from the validation text and (to measure the gap in section 4)
# from the training text, with dropout off. Everything else (AdamW, warmup then cosine
# decay, clipping, bf16 where the hardware has it) is the trainer's job. The cell below is
# all the training code of this notebook.


# %%
def next_token_loss(model: CausalLM, windows: torch.Tensor, temperature: float = 1.0):
    """Teacher forcing on (batch, block_size + 1) windows: mean nats per predicted token."""
    logits = model(windows[:, :-1]).float() / temperature  # (batch, block_size, vocab)
    return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())


def mean_loss(model: CausalLM, windows: torch.Tensor, temperature: float = 1.0) -> float:
    """`next_token_loss` over many windows, in large batches, read back once."""
    total = torch.zeros((), device=windows.device)
    for chunk in windows.split(eval_batch_size):
        total += next_token_loss(model, chunk, temperature) * len(chunk)
    return total.item() / len(windows)


def train_decoder(train_tokens, val_tokens, vocab, steps, dropout, eval_every):
    """Pretrain a fresh decoder; return (model, trainer, wall seconds)."""
    torch.manual_seed(seed)
    config = TransformerConfig(
        vocab_size=vocab,
        block_size=C.block_size,
        n_layer=C.n_layer,
        n_head=C.n_head,
        n_embd=C.n_embd,
        dropout=dropout,
        bias=C.bias,
    )
    model = CausalLM(config)
    train_windows = evenly_spaced_windows(train_tokens, C.eval_blocks, C.block_size + 1)
    val_windows = evenly_spaced_windows(val_tokens, C.eval_blocks, C.block_size + 1)

    def evaluate(step: int) -> dict[str, float]:
        return {"train": mean_loss(model, train_windows), "val": mean_loss(model, val_windows)}

    phase = Phase(
        "lm",
        model,
        causal_lm_objective,
        lr=C.lr,
        betas=(0.9, C.beta2),
        weight_decay=C.weight_decay,
        warmup_steps=C.warmup_steps,
        min_lr=C.min_lr,
    )
    trainer_config = TrainerConfig(
        max_steps=steps,
        device=str(device),
        precision=precision,
        compile=compile_model,
        eval_every=min(eval_every, steps),
        seed=seed,
    )
    batches = random_windows(train_tokens, C.batch_size, C.block_size + 1)
    trainer = Trainer(model, phase, batches, trainer_config, eval_fn=evaluate)
    started = time.perf_counter()
    trainer.fit()
    return model.eval(), trainer, time.perf_counter() - started


def learning_curve(trainer: Trainer, name: str, train_ratio: float):
    """(steps, train bits/char, val bits/char) from the evaluations in trainer.history."""
    rows = [row for row in trainer.history if "val" in row]
    to_bits = {"train": train_ratio / math.log(2), "val": tokens_per_char[name] / math.log(2)}
    return (
        [row["step"] for row in rows],
        [row["train"] * to_bits["train"] for row in rows],
        [row["val"] * to_bits["val"] for row in rows],
    )


# %% [markdown]
# ### The character-level decoder

# %%
char_model, char_trainer, char_seconds = train_decoder(
    train_ids["char"], val_ids["char"], chars.vocab_size, char_steps, C.dropout, C.eval_every
)
char_speed = char_trainer.summary()
char_curve = learning_curve(char_trainer, "char", 1.0)
char_val_loss = char_trainer.history[-1]["val"]  # nats per character
char_val_bpc = char_curve[2][-1]
# The loss the trainer minimised is the by-hand next_token_loss above, to float rounding.
check_windows = evenly_spaced_windows(val_ids["char"], 4, C.block_size + 1)
with torch.no_grad():
    by_hand = next_token_loss(char_model, check_windows)
    assert_close(by_hand, causal_lm_objective(char_model, check_windows, step=0)[0])
print(
    f"{char_model.num_parameters():,} parameters, {char_steps} steps in {char_seconds:.0f} s "
    f"({char_speed['tokens_per_s']:,.0f} tokens/s on {device_name(device)})"
)
print(f"val loss {char_val_loss:.3f} nats/char = {char_val_bpc:.3f} bits/char")
print(repr(generate_text(char_model, chars, prompt, 100)))

# %% [markdown]
# ### The BPE decoder
#
# The same architecture, the same number of tokens per step; only the vocabulary
# differs. Each BPE token covers about $1/(T/N)$ characters, so the same context length
# sees several times more text.

# %%
bpe_train_ratio = len(train_ids["BPE"]) / len(train_text)
bpe_model, bpe_trainer, bpe_seconds = train_decoder(
    train_ids["BPE"], val_ids["BPE"], bpe.vocab_size, bpe_steps, C.dropout, C.eval_every
)
bpe_speed = bpe_trainer.summary()
bpe_curve = learning_curve(bpe_trainer, "BPE", bpe_train_ratio)
bpe_val_loss = bpe_trainer.history[-1]["val"]  # nats per BPE token
bpe_val_bpc = bits_per_character(bpe_val_loss, len(val_ids["BPE"]), len(val_text))
assert math.isclose(bpe_val_bpc, bpe_curve[2][-1])
print(
    f"{bpe_model.num_parameters():,} parameters, {bpe_steps} steps in {bpe_seconds:.0f} s "
    f"({bpe_speed['tokens_per_s']:,.0f} tokens/s)"
)
print(f"val loss {bpe_val_loss:.3f} nats/token = {bpe_val_bpc:.3f} bits/char")
print(repr(generate_text(bpe_model, bpe, prompt, 30)))

# %%
for name, curve in (("char", char_curve), ("BPE", bpe_curve)):
    print(
        f"{name:>4}: final train {curve[1][-1]:.3f}, val {curve[2][-1]:.3f} bits/char "
        f"(gap {curve[2][-1] - curve[1][-1]:+.3f}); trigram {baselines['trigram']:.3f}"
    )
windows_drawn = char_steps * C.batch_size
print(
    f"the char run drew {windows_drawn:,} windows from {len(train_ids['char']):,} start "
    f"positions: at most {windows_drawn / len(train_ids['char']):.1%} of them"
)
fig = plot_learning_curves(
    {"char": char_curve, f"BPE {bpe.vocab_size}": bpe_curve},
    baselines,
    title=f"Bits per character on Shakespeare ({P.name} profile)",
)

# %% [markdown]
# At the `laptop` size, both decoders pass the trigram in about a minute of training
# each (the times are printed above; at `smoke` size they only have to beat the unigram).
# The trigram sees two characters of context; a decoder sees `block_size` tokens and
# learns which of them matter. Per step the BPE model reads as many tokens, and so
# (characters per token, printed above) several times as much text as the character
# model, which is how it gets ahead in a shorter run. Its price is a vocabulary of
# thousands of tokens, many of them rare (the count is printed above), each needing its
# own embedding.
#
# ## 4 · The gap between training and validation loss
#
# The dashed lines above (loss on training text) and the solid ones (on unseen text)
# stay close (the final gaps are printed above). With millions of characters and a short
# run the model sees only a small share of all windows (printed above), so there is
# little to memorise: every training batch is almost as good as new data. A gap opens when the data is small next to the model. To see it,
# train the same decoder on only a few thousand characters, twice: without dropout, and
# with dropout, which zeroes a random fraction of the activations at every training
# step. A network that cannot count on any single unit being there cannot store a
# passage unit by unit; it has to learn patterns that survive the noise.

# %%
small_ids = train_ids["char"][: C.dropout_train_chars]
dropout_eval_every = max(1, C.dropout_steps // 6)
dropout_runs = {}
for rate in (0.0, with_dropout):
    model, trainer, seconds = train_decoder(
        small_ids, val_ids["char"], chars.vocab_size, C.dropout_steps, rate, dropout_eval_every
    )
    dropout_runs[f"dropout {rate:g}"] = learning_curve(trainer, "char", 1.0)
gaps = {name: curve[2][-1] - curve[1][-1] for name, curve in dropout_runs.items()}
for name, (_, train, val) in dropout_runs.items():
    print(f"{name}: train {train[-1]:.3f}, val {val[-1]:.3f} bits/char, gap {gaps[name]:.3f}")
steps_0, _, val_0 = dropout_runs["dropout 0"]
best_index = min(range(len(val_0)), key=val_0.__getitem__)
best_step, best_val = steps_0[best_index], val_0[best_index]
with_val = dropout_runs[f"dropout {with_dropout:g}"][2][-1]
print(
    f"dropout 0: lowest val {best_val:.3f} bits/char at step {best_step} of {C.dropout_steps} "
    f"(evaluated every {dropout_eval_every}); dropout {with_dropout:g} ends at {with_val:.3f}"
)
print(f"early stopping at step {best_step} beats dropout's final val by {with_val - best_val:.3f}")
print(f"bigram {baselines['bigram']:.3f} bits/char; {C.dropout_train_chars:,} training characters")
gpu_sizes = profiles.get_profile("gpu").causal_lm
gpu_model = CausalLM(
    TransformerConfig(
        vocab_size=chars.vocab_size,
        block_size=gpu_sizes.block_size,
        n_layer=gpu_sizes.n_layer,
        n_head=gpu_sizes.n_head,
        n_embd=gpu_sizes.n_embd,
        bias=gpu_sizes.bias,
    )
)
gpu_passes = gpu_sizes.max_steps * gpu_sizes.batch_size * gpu_sizes.block_size / len(full_train)
print(
    f"gpu profile: {gpu_model.num_parameters():,} parameters "
    f"({gpu_model.num_parameters() / char_model.num_parameters():.0f}× this profile's), "
    f"{gpu_passes:.0f} passes over the training text, dropout {gpu_sizes.dropout}"
)
del gpu_model
fig = plot_learning_curves(
    dropout_runs,
    {"trigram": baselines["trigram"]},
    title=f"{C.dropout_train_chars:,} training characters: memorising, and dropout against it",
)

# %% [markdown]
# At `laptop` size (the figures are printed above): without dropout the training loss
# plunges while the validation loss reaches its lowest early and then climbs: the model is
# memorising its few thousand characters, and what it memorises is useless on other text.
# Dropout holds the training loss up, keeps the two curves closer (a smaller gap) and ends
# with the better *final* validation loss. But it is not the best model here: simply
# stopping the no-dropout run at its validation minimum (early stopping; the step and
# value are printed above) would have done better than dropout's last step. Look at the
# level, though: both runs end above the bigram baseline. Dropout slows the memorising
# down; it cannot make a few thousand characters teach what millions do. The small
# profiles train their main runs without it; the `gpu` profile, with a model many times
# larger that makes many passes over the data (both printed above), uses it.
#
# ## 5 · Generation
#
# To write, the model predicts a distribution for the next token, one token is chosen
# and appended, and the longer text goes back in. The choice is the *strategy*:
#
# - **greedy** takes the most likely token. It is deterministic and tends to loop.
# - **temperature** $T$ divides the logits before the softmax, $p_i \propto e^{z_i / T}$:
#   $T < 1$ sharpens the distribution, $T > 1$ flattens it.
# - **top-k** keeps only the $k$ most likely tokens; **top-p** (nucleus) keeps the
#   smallest set whose probabilities add up to at least $p$. Both cut the long tail of
#   unlikely tokens, where a sample's nonsense mostly comes from.
#
# Both filters are defined on the probabilities sorted from the largest down,
# $p_{(1)} \ge p_{(2)} \ge \dots \ge p_{(V)}$. **Top-k** keeps every token with
# $p_i \ge p_{(k)}$ (so ties with the $k$-th are kept too). **Top-p** keeps the token of
# rank $r$ when the tokens ranked above it hold less than $p$ together,
# $\sum_{j<r} p_{(j)} < p$: the first token is always kept, and the set stops as soon as
# its mass reaches $p$. A dropped token's logit becomes $-\infty$, so the softmax
# renormalises over the survivors. Top-k keeps a fixed number of tokens; top-p keeps as
# many as the distribution needs. Below, two real next-token distributions of the trained
# character model: after "Exeun" (one continuation is all but certain) and at the start of
# a line (many are plausible).

# %%
contexts = {"after 'Exeun'": "[Exeun", "start of a line": "KING.\n"}
with torch.no_grad():
    context_logits = torch.cat(
        [
            char_model(torch.tensor([chars.encode(text)], device=device))[:, -1].float().cpu()
            for text in contexts.values()
        ]
    )  # (2, vocab)


def kept_by_rank(probabilities: list[float], top_p: float) -> set[int]:
    """Top-p, one row, in plain Python: walk down the ranks until the mass reaches p."""
    kept, mass = set(), 0.0
    for index in sorted(range(len(probabilities)), key=lambda i: -probabilities[i]):
        if mass >= top_p:
            break
        kept.add(index)
        mass += probabilities[index]
    return kept


filter_ps = (0.1, 0.5, 0.8, 0.9, 0.95, 0.99)
for row, name in enumerate(contexts):
    probabilities = context_logits[row].softmax(-1).tolist()
    for k in (1, 3, 10, 40):
        kth = sorted(probabilities, reverse=True)[k - 1]
        direct = {i for i, value in enumerate(probabilities) if value >= kth}
        package = set(
            torch.isfinite(top_k_filter(context_logits[row : row + 1], k))[0]
            .nonzero()
            .flatten()
            .tolist()
        )
        assert package == direct, f"top-k {k} differs {name}"
    for p_value in filter_ps:
        package = set(
            torch.isfinite(top_p_filter(context_logits[row : row + 1], p_value))[0]
            .nonzero()
            .flatten()
            .tolist()
        )
        assert package == kept_by_rank(probabilities, p_value), f"top-p {p_value} differs {name}"
print("top_k_filter and top_p_filter keep the same tokens as the direct definitions")
for row, name in enumerate(contexts):
    probabilities = context_logits[row].softmax(-1)
    sizes = [
        int(torch.isfinite(top_p_filter(context_logits[row : row + 1], v)).sum()) for v in filter_ps
    ]
    top = probabilities.max().item()
    print(
        f"{name:>16}: most likely token {top:.3f}; tokens kept by top-p "
        + ", ".join(f"{v}: {n}" for v, n in zip(filter_ps, sizes, strict=True))
    )

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
ks = range(1, chars.vocab_size + 1)
p_grid = torch.linspace(0.01, 1.0, 100)
for row, name in enumerate(contexts):
    sorted_probabilities = context_logits[row].softmax(-1).sort(descending=True).values
    left.plot(list(ks), sorted_probabilities.cumsum(0).tolist(), label=name)
    sizes = [
        int(torch.isfinite(top_p_filter(context_logits[row : row + 1], v.item())).sum())
        for v in p_grid
    ]
    right.plot(p_grid.tolist(), sizes, label=name)
left.set(
    xscale="log",
    xlabel="k (tokens kept by top-k)",
    ylabel="probability mass kept",
    title="top-k: the mass k tokens hold",
)
right.set(
    yscale="log", xlabel="p", ylabel="tokens kept by top-p", title="top-p: tokens needed for mass p"
)
for axis in (left, right):
    axis.legend()
fig.tight_layout()

# %% [markdown]
# Top-p adapts where top-k cannot (the counts are printed above): after "Exeun" the
# most likely token holds nearly all the mass and the nucleus stays tiny even at
# $p = 0.9$, while at the start of a line many tokens stay in play. A fixed $k$ is too
# generous for the first and may be too strict for the second. Now the four strategies
# on the same prompt:

# %%
strategies = {
    "greedy": {},
    "temperature 0.8": {"temperature": 0.8},
    "top-k 10": {"top_k": 10},
    "top-p 0.9": {"top_p": 0.9},
}
for name, settings in strategies.items():
    text = generate_text(char_model, chars, prompt, C.sample_tokens, seed=seed, **settings)
    print(f"--- {name}\n{prompt}{text}\n")

# %% [markdown]
# ### The KV cache
#
# Recomputing the whole sequence for every new token wastes work: under the causal mask
# the keys and values of earlier tokens never change. `generate` keeps them in a
# `KVCache` and runs only the newest token through the model, attending over the stored
# keys. It must not change a single token; it must only be faster. Past `block_size` the
# window slides, every learned position shifts, and `generate` recomputes the window as
# it would without a cache.

# %%
prompt_ids = torch.tensor([chars.encode(prompt)], device=device)
inside = C.block_size - prompt_ids.size(1)  # new tokens that fit in the context
cache_checks, cache_table = [], []
# Several context lengths, each the best of 3 runs (a shared machine makes single runs noisy)
for new_tokens in sorted({max(1, inside // 4), inside // 2, 3 * inside // 4, inside}):
    seconds = {}
    for use_cache in (True, False):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            generate(char_model, prompt_ids, new_tokens, use_cache=use_cache)
            runs.append(time.perf_counter() - started)
        seconds[use_cache] = min(runs)
    # positions run through the model: the cache runs each once; without it step t reruns t
    start = prompt_ids.size(1)
    positions = {True: start + new_tokens - 1, False: sum(range(start, start + new_tokens))}
    cache_table.append((start + new_tokens, seconds, positions))
cache_seconds = cache_table[-1][1]
for settings in ({}, {"temperature": 1.0, "top_p": 0.9}):
    outputs = [
        generate(
            char_model,
            prompt_ids,
            2 * C.block_size,  # well past the context
            generator=torch.Generator().manual_seed(seed) if settings else None,
            use_cache=use_cache,
            **settings,
        )
        for use_cache in (True, False)
    ]
    cache_checks.append(torch.equal(outputs[0], outputs[1]))
cache_speedup = cache_seconds[False] / cache_seconds[True]
print(f"same tokens with and without the cache (greedy, sampled): {cache_checks}")
print(
    "| context at the end | with cache (ms) | without (ms) | speed-up | positions computed, "
    "without / with |"
)
print("| --- | --- | --- | --- | --- |")
for length, seconds, positions in cache_table:
    print(
        f"| {length} | {seconds[True] * 1e3:.0f} | {seconds[False] * 1e3:.0f} | "
        f"{seconds[False] / seconds[True]:.1f}× | {positions[False] / positions[True]:.1f}× |"
    )
print(
    f"greedy decoding from {prompt!r}, batch 1, on {device_name(device)}; block_size {C.block_size}"
)
assert all(cache_checks)

# %% [markdown]
# The table times greedy decoding from the prompt up to several context lengths, each
# the best of three runs. At step $t$ the uncached model recomputes $t$ positions through
# every layer, the cached one only one, so the work saved (last column, a count) grows
# with the context. The measured speed-up does not follow that count: it stays small
# and need not rise with every length (see the table). With a small
# model and short contexts most of each step is fixed per-call overhead (Python, kernel
# launches) that the cache does not remove. Read the timings as indicative: they come
# from one shared machine.
#
# ### Try it
#
# The widget is a view over `sslm_lab.lab.widgets.sample_continuation(model, tokenizer,
# prompt, temperature, top_k, top_p, length, seed)`: the same arguments always give the
# same text (checked below). Try temperature 0.2 and 2.0, then top-p 0.5 at temperature 1.5.

# %%
twice = [sample_continuation(char_model, chars, prompt, 0.8, 0, 1.0, 40, seed) for _ in range(2)]
assert twice[0] == twice[1], "the same settings gave different text"
sampling_explorer(char_model, chars, prompt, temperature=0.8, length=C.sample_tokens, seed=seed)

# %% [markdown]
# ## 6 · Temperature and entropy
#
# How random is a sample? At each step the model draws from a distribution; its entropy
# (in bits) says how many equally likely options it amounts to, $2^H$. Below, for each
# temperature, several samples start from evenly spaced snippets of the validation text,
# and a strategy records the entropy of every distribution it draws from. On the right,
# the same model scores the validation text with its probabilities taken at that
# temperature.

# %%
snippets = evenly_spaced_windows(val_ids["char"], C.samples_per_temperature, 16)
val_windows = evenly_spaced_windows(val_ids["char"], C.eval_blocks, C.block_size + 1)
sample_entropy, val_bits_at = [], []
with torch.no_grad():
    for temperature in C.temperatures:
        draw = sampling(temperature, generator=torch.Generator().manual_seed(seed))
        entropies = []

        def recording(logits, draw=draw, temperature=temperature, entropies=entropies):
            entropies.append(entropy_bits(logits.float() / temperature))  # (batch,)
            return draw(logits)  # the strategy itself: sample at this temperature

        generate(char_model, snippets, C.sample_tokens, recording)
        sample_entropy.append(torch.cat(entropies).mean().item())
        val_bits_at.append(mean_loss(char_model, val_windows, temperature) / math.log(2))
for temperature, entropy, bits in zip(C.temperatures, sample_entropy, val_bits_at, strict=True):
    print(f"T = {temperature:<4}: sampling entropy {entropy:.2f} bits, val {bits:.3f} bits/char")
lowest_at = C.temperatures[min(range(len(val_bits_at)), key=val_bits_at.__getitem__)]
print(f"val bits/char lowest at T = {lowest_at}")
fig = plot_temperature_effect(C.temperatures, sample_entropy, val_bits_at)
for temperature in (C.temperatures[0], 1.0, C.temperatures[-1]):
    text = generate_text(char_model, chars, prompt, 80, temperature=temperature, seed=seed)
    print(f"--- T = {temperature}\n{prompt}{text}\n")

# %% [markdown]
# Low temperature makes each draw nearly certain (the entropy is lowest): the text is safe, repetitive, and
# soon loops. High temperature spreads the choice over more characters and the text
# dissolves into letter soup. Neither improves the model as a model of Shakespeare:
# its validation bits per character are lowest near $T = 1$ (printed above), the distribution it was
# trained to match. Temperature is a dial for the *reader*, trading surprise against
# coherence; it adds no knowledge.
#
# ## 7 · Save the decoders
#
# The fine-tuning notebook starts from these weights. `sslm_lab.pretrained` writes the
# weights (safetensors), the `TransformerConfig` and the tokenizer into this profile's
# run folder, and loads them back; the reloaded model must give the same logits.

# %%
folder = run_dir("03_autoregressive_lm", P.name)
saved = {}
for name, model, tokenizer, val_bpc in (
    ("char", char_model, chars, char_val_bpc),
    ("bpe", bpe_model, bpe, bpe_val_bpc),
):
    metadata = {"notebook": "03_autoregressive_lm", "profile": P.name, "val_bpc": val_bpc}
    saved[name] = save_pretrained(model, tokenizer, folder / f"{name}_decoder", metadata)
loaded, loaded_chars, loaded_metadata = load_pretrained(saved["char"], device=str(device))
with torch.no_grad():
    check_ids = val_windows[:4, :-1]  # (4, block_size)
    reload_identical = torch.equal(loaded(check_ids), char_model(check_ids))
print(f"saved in {folder.name}/: {', '.join(sorted(path.name for path in saved.values()))}")
print(f"reloaded char decoder gives identical logits: {reload_identical}")
assert reload_identical and loaded_chars.characters == chars.characters

# %% [markdown]
# ## 8 · Exercises
#
# Four pieces of what this notebook derived, easiest first. Write each function between
# its two SOLUTION comment lines; the cell below it checks your answer against
# `sslm_lab` on the inputs shown (and, when an instructor grades, on more). Nothing after
# these cells uses your functions, so an unfinished exercise breaks nothing else.
#
# **Exercise 1 (1 point).** Teacher forcing (section 1): from a `(batch, seq)` tensor of
# token ids, return the model's inputs and its targets, each `(batch, seq - 1)`.


# %% nbgrader={"grade": false, "grade_id": "shift", "locked": false, "schema_version": 3, "solution": true, "task": false}
def teacher_forcing_by_hand(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, seq) -> (inputs, targets), both (batch, seq - 1)."""
    ### BEGIN SOLUTION
    return ids[:, :-1], ids[:, 1:]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "shift_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
def loss_from_shift(model, ids):
    inputs_, targets_ = teacher_forcing_by_hand(ids)
    with torch.no_grad():
        return F.cross_entropy(model(inputs_).flatten(0, 1), targets_.flatten())


with torch.no_grad():
    assert_close(loss_from_shift(tiny, ids), causal_lm_loss(tiny(ids), ids))
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(1)
for batch, length in ((1, 2), (3, 17), (2, 32)):
    sample_ids = torch.randint(0, chars.vocab_size, (batch, length), generator=generator)
    with torch.no_grad():
        assert_close(
            loss_from_shift(tiny, sample_ids), causal_lm_loss(tiny(sample_ids), sample_ids)
        )
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (2 points).** Top-k (section 5): keep the logits that are at least the
# $k$-th largest of their row (ties kept), set the others to `-math.inf`. `logits` is
# `(batch, vocab)`; a `k` above the vocabulary keeps everything.


# %% nbgrader={"grade": false, "grade_id": "top_k", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_k_by_hand(logits: torch.Tensor, k: int) -> torch.Tensor:
    """(batch, vocab) -> (batch, vocab), all but the k largest of each row -inf."""
    ### BEGIN SOLUTION
    k = min(k, logits.size(-1))
    threshold = logits.sort(dim=-1, descending=True).values[:, k - 1 : k]  # (batch, 1)
    return torch.where(logits >= threshold, logits, -math.inf)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "top_k_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
for k in (1, 3, 10):
    assert torch.equal(top_k_by_hand(context_logits, k), top_k_filter(context_logits, k))
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(2)
random_logits = torch.randn(5, 50, generator=generator)
for k in (1, 7, 50, 80):
    assert torch.equal(top_k_by_hand(random_logits, k), top_k_filter(random_logits, k))
ties = torch.tensor([[2.0, 1.0, 2.0, 0.5]])
assert torch.equal(top_k_by_hand(ties, 1), top_k_filter(ties, 1))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** Top-p (section 5), vectorised: sort each row, and keep the
# token of rank $r$ when the tokens ranked above it hold less than $p$ of the
# probability; set the others to `-math.inf`, in the original vocabulary order.


# %% nbgrader={"grade": false, "grade_id": "top_p", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_p_by_hand(logits: torch.Tensor, p: float) -> torch.Tensor:
    """(batch, vocab) -> (batch, vocab), tokens outside the nucleus -inf."""
    ### BEGIN SOLUTION
    values, order = logits.sort(dim=-1, descending=True)
    probabilities = values.softmax(dim=-1)
    above = probabilities.cumsum(dim=-1) - probabilities  # mass of the higher-ranked tokens
    keep_sorted = above < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return torch.where(keep, logits, -math.inf)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "top_p_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
for p_value in (0.5, 0.9):
    assert torch.equal(
        top_p_by_hand(context_logits, p_value), top_p_filter(context_logits, p_value)
    )
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(3)
random_logits = 3 * torch.randn(6, 40, generator=generator)
for p_value in (0.05, 0.3, 0.75, 0.99):
    assert torch.equal(top_p_by_hand(random_logits, p_value), top_p_filter(random_logits, p_value))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (3 points).** Greedy decoding with a KV cache (section 5): run the whole
# prompt once with `cache=KVCache(model.config.n_layer)`, then feed only the newest token
# each step, appending the argmax of the last position's logits. Stay inside the context
# (`prompt + new_tokens <= block_size`); the tokens must equal `generate(...,
# use_cache=False)`.


# %% nbgrader={"grade": false, "grade_id": "cached_greedy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cached_greedy_by_hand(model: CausalLM, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """(batch, seq) prompt -> (batch, seq + new_tokens), greedy, with a KV cache."""
    ### BEGIN SOLUTION
    cache = KVCache(model.config.n_layer)
    with torch.no_grad():
        fresh = ids
        for _ in range(new_tokens):
            next_ids = model(fresh, cache=cache)[:, -1].argmax(dim=-1, keepdim=True)
            ids = torch.cat([ids, next_ids], dim=1)
            fresh = next_ids
    return ids
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "cached_greedy_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
expected = generate(char_model, prompt_ids, 20, greedy, use_cache=False)
assert torch.equal(cached_greedy_by_hand(char_model, prompt_ids, 20), expected)
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(4)
starts = torch.randint(0, chars.vocab_size, (3, 5), generator=generator).to(device)
room = C.block_size - starts.size(1)
expected = generate(char_model, starts, room, greedy, use_cache=False)
assert torch.equal(cached_greedy_by_hand(char_model, starts, room), expected)
assert torch.equal(
    cached_greedy_by_hand(tiny, ids[:, :4], 10), generate(tiny, ids[:, :4], 10, use_cache=False)
)
### END HIDDEN TESTS

# %% [markdown]
# ## What this notebook established

# %% tags=["asserts-learning"]
initial_loss = math.log(chars.vocab_size)  # nats: an untrained model's uniform guess
assert past_shift == 0.0, "a prediction changed when only later tokens did"
assert char_val_loss < initial_loss, "the character model learned nothing"
# The BPE model's own "learned nothing" line: a uniform guess over its pieces, which costs
# log2(vocab) bits per piece, about 4 to 5 bits per character (not the 6.4 of characters).
bpe_uniform_bpc = bits_per_character(math.log(bpe.vocab_size), len(val_ids["BPE"]), len(val_text))
assert char_val_bpc < uniform_bpc - 0.5, "the character model learned next to nothing"
assert bpe_val_bpc < bpe_uniform_bpc - 0.5, "the BPE model learned next to nothing"
assert all(cache_checks), "the KV cache changed the generated tokens"
# A sanity check more than a finding: dividing logits by a larger T flattens them.
assert sample_entropy[-1] > sample_entropy[0], "higher temperature, more random draws"
assert reload_identical, "the saved decoder does not reload exactly"
if not C.beats_trigram:
    # 150 steps of a tiny model: it must at least learn the character frequencies.
    assert char_val_bpc < baselines["unigram"], "the character model lost to the unigram"
else:
    assert char_val_bpc < baselines["trigram"], "the character model did not beat the trigram"
    assert bpe_val_bpc < baselines["trigram"], "the BPE model did not beat the trigram"
    with_name = f"dropout {with_dropout:g}"
    assert gaps[with_name] < gaps["dropout 0"], "dropout did not shrink the gap"
    final_val = {name: curve[2][-1] for name, curve in dropout_runs.items()}
    assert final_val[with_name] < final_val["dropout 0"], "dropout did not help val on small data"
    assert sample_entropy == sorted(sample_entropy), "entropy rises with temperature"
    best = C.temperatures[min(range(len(val_bits_at)), key=val_bits_at.__getitem__)]
    assert 0.75 <= best <= 1.25, f"val bits/char lowest at T = {best}, not near 1"
if C.max_val_loss is not None and char_steps == C.max_steps:
    # the headline number of a full-length run (a shortened run is not held to it)
    assert char_val_loss <= C.max_val_loss, f"val loss above {C.max_val_loss} nats/char"
notebook_seconds = time.perf_counter() - notebook_started
results_file = record_results(
    "03_autoregressive_lm",
    {
        "seed": seed,
        "device": device_name(device),
        "char_steps": char_steps,
        "bpe_steps": bpe_steps,
        "bpe_vocab_size": bpe.vocab_size,
        "char_val_loss_nats": char_val_loss,
        "char_val_bpc": char_val_bpc,
        "bpe_val_bpc": bpe_val_bpc,
        "unigram_bpc": baselines["unigram"],
        "trigram_bpc": baselines["trigram"],
        "char_train_seconds": char_seconds,
        "bpe_train_seconds": bpe_seconds,
        "char_tokens_per_s": char_speed["tokens_per_s"],
        "bpe_tokens_per_s": bpe_speed["tokens_per_s"],
        "dropout_rate": with_dropout,
        "gap_without_dropout_bpc": gaps["dropout 0"],
        "gap_with_dropout_bpc": gaps[f"dropout {with_dropout:g}"],
        "kv_cache_same_tokens": all(cache_checks),
        "kv_cache_speedup": cache_speedup,
        "entropy_lowest_temperature_bits": sample_entropy[0],
        "entropy_highest_temperature_bits": sample_entropy[-1],
        "notebook_seconds": notebook_seconds,
    },
    profile=P.name,
)
print(f"recorded in {results_file.name}; notebook ran {notebook_seconds:.0f} s")
