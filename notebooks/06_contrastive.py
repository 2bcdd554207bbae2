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
# # 06 · Contrastive pretraining: tell the positive apart from the negatives
#
# Masked and autoregressive models learn by predicting the data itself. A contrastive
# model never reconstructs anything. It is shown two *views* of the same example (two
# random crops of a digit, two dropout masks over a line of verse) together with views of
# other examples, and it learns one thing: which of the candidates belongs with which. To
# do that reliably, it has to keep what the views share and may drop whatever the
# augmentation changed. Which augmentation you choose is therefore the real definition of
# "the same thing".
#
# This notebook:
#
# 1. derives **InfoNCE** as a classifier that must pick the positive among negatives, and
#    checks it, NT-Xent (SimCLR) and the symmetric form against `sslm_lab.contrastive`;
# 2. shows the **augmentations** of 8×8 digits in a gallery;
# 3. pretrains **SimCLR** on digits;
# 4. scores its representation by a **linear probe** with 1, 5, 10 and all labels per
#    class, against logistic regression on raw pixels and a supervised network of the
#    same size trained on the same labels;
# 5. measures **alignment and uniformity** (Wang & Isola 2020);
# 6. studies the **temperature** τ;
# 7. asks **how many negatives** help, with MoCo's **queue** and momentum encoder;
# 8. finds **which augmentation matters** by leaving each one out;
# 9. trains **SimCSE** on Shakespeare's lines, with dropout as the only augmentation, and
#    evaluates retrieval of a held-out line's neighbours from the same work and the same
#    speaker, beside the real all-MiniLM-L6-v2 and a random encoder of the same shape;
#    then gives you an **embedding explorer**;
# 10. runs **CPC** briefly: predict a character sequence's code k steps ahead;
# 11. saves the text encoder for the fine-tuning notebook.
#
# Three exercises (nbgrader's format) ask you to write NT-Xent, alignment and uniformity,
# and a queue update yourself; every later cell uses the package's versions.
#
# The cell below holds every knob. `profile` picks the run sizes from
# `sslm_lab.lab.profiles` (`None` reads `$SSLM_PROFILE`, else `laptop`). The other `None`s
# take the profile's value: `temperature` is SimCLR's τ in the main run, `max_steps` its
# number of steps, `simcse_steps` those of the text encoder. `query` is the line the
# embedding explorer starts on.

# %% tags=["parameters"]
profile = None
seed = 0
temperature = None
max_steps = None
simcse_steps = None
query = "Friends, Romans, countrymen, lend me your ears;"

# %%
import copy
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.testing import assert_close

from sslm_lab import data
from sslm_lab.contrastive import (
    KeyQueue,
    SimCSE,
    alignment,
    contrastive_logits,
    cpc_info_nce,
    info_nce,
    momentum_update,
    nt_xent,
    simcse_objective,
    symmetric_info_nce,
    uniformity,
)
from sslm_lab.data.augmentations import augment_views
from sslm_lab.data.speeches import speeches
from sslm_lab.data.windows import evenly_spaced_windows, random_windows
from sslm_lab.heads import MaskedLM, pool
from sslm_lab.interop import load_minilm
from sslm_lab.lab import profiles
from sslm_lab.lab.env import device_description
from sslm_lab.lab.results import record_results, run_dir
from sslm_lab.lab.viz.contrastive import (
    plot_accuracy_against,
    plot_augmentation_gallery,
    plot_embedding_maps,
    plot_probe_curves,
    plot_temperature_study,
)
from sslm_lab.lab.viz.training import plot_bars, plot_history
from sslm_lab.lab.widgets.contrastive import embedding_explorer, nearest_lines
from sslm_lab.pretrained import load_pretrained, save_pretrained
from sslm_lab.training.batches import sample_rows
from sslm_lab.training.hardware import device_name, resolve_device
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import Transformer, TransformerConfig

notebook_started = time.perf_counter()
P = profiles.get_profile(profile)
profiles.contrastive.PARAMETERS.validate(
    seed=seed,
    temperature=temperature,
    max_steps=max_steps,
    simcse_steps=simcse_steps,
    query=query,
)
C = P.contrastive
tau = C.temperature if temperature is None else temperature
simclr_steps = C.max_steps if max_steps is None else max_steps
text_steps = C.simcse_steps if simcse_steps is None else simcse_steps
strengths = dict(C.augmentations)
# The digit models are tiny MLPs on 64 pixels: they stay on the CPU, where the augmentations
# draw their random numbers. The text models go to the fastest device there is.
device = resolve_device("auto")
torch.manual_seed(seed)
print(f"profile: {P.name} — {P.description}")
print(f"text models on {device_name(device)}; digits on the CPU, {torch.get_num_threads()} threads")

# %% [markdown]
# ## 1 · InfoNCE: a classifier whose right answer is the positive
#
# Take a query vector $q$ and $N$ candidates $k_1 \dots k_N$, one of them, $k_+$, the
# positive: another view of the same example. The others are negatives. Score every
# candidate by its cosine similarity to $q$, divided by a **temperature** $\tau$, and read
# the scores as the logits of an $N$-way classifier:
#
# $$p(+ \mid q) = \frac{e^{s(q, k_+)/\tau}}{\sum_{j=1}^{N} e^{s(q, k_j)/\tau}}, \qquad
# \mathcal{L}_\text{InfoNCE} = -\log p(+ \mid q)$$
#
# That is an ordinary cross-entropy, with the positive as the label. It is zero only when
# the positive wins by a wide margin, and a model that has learned nothing pays
# $\log N$. Van den Oord et al. (2018) showed that $\log N - \mathcal{L}$ bounds the mutual
# information between the two views from below: more negatives, a tighter bound.
#
# In a batch the candidates come for free: row $i$ of the second view is the positive of
# row $i$ of the first, and every other row is one of its negatives. By hand, on a toy
# batch:

# %%
# NBVAL_CHECK_OUTPUT
generator = torch.Generator().manual_seed(0)
toy_first = torch.randn(4, 3, generator=generator)  # (batch, dim): four examples, view one
toy_second = toy_first + 0.3 * torch.randn(4, 3, generator=generator)  # view two: nearby
toy_tau = 0.5
similarity = F.normalize(toy_first, dim=1) @ F.normalize(toy_second, dim=1).T  # (4, 4)
probabilities = (similarity / toy_tau).softmax(dim=1)  # row i: which candidate is i's view?
loss_by_hand = -probabilities.diagonal().log().mean()
assert_close(loss_by_hand, F.cross_entropy(similarity / toy_tau, torch.arange(4)))
assert_close(loss_by_hand, info_nce(toy_first, toy_second, toy_tau))
assert_close(contrastive_logits(toy_first, toy_second, toy_tau), similarity / toy_tau)
print("cosine similarities (rows: view one, columns: view two):")
print(similarity.numpy().round(2))
print(f"p(positive) per row: {probabilities.diagonal().numpy().round(3)}")
print(
    f"InfoNCE by hand {loss_by_hand:.4f} = info_nce {info_nce(toy_first, toy_second, toy_tau):.4f}"
)
print(f"learned nothing: log N = {math.log(4):.4f}")

# %% [markdown]
# **A known value.** Suppose the model is perfect in the strongest sense: each query is
# identical to its positive (cosine 1) and orthogonal to all $N$ negatives (cosine 0).
# The loss is then $-\log \frac{e^{1/\tau}}{e^{1/\tau} + N} = \log(1 + N e^{-1/\tau})$, not
# zero: the temperature decides how far a perfect answer sits from certainty.

# %%
# NBVAL_CHECK_OUTPUT
for t in (1.0, 0.5, 0.1):
    basis = torch.eye(8, dtype=torch.float64)  # 8 orthogonal unit vectors: query i = key i
    known = math.log(1 + 7 * math.exp(-1 / t))
    assert math.isclose(info_nce(basis, basis, t).item(), known, rel_tol=1e-5)
    print(f"τ = {t}: perfect embeddings, 7 orthogonal negatives: loss {known:.5f}")

# %% [markdown]
# **Two ways to use a batch of pairs.** SimCLR (Chen et al. 2020) pools both views: its
# **NT-Xent** loss treats all $2N$ views as anchors, and each anchor's negatives are the
# other $2N - 2$ views, from either half. CLIP's **symmetric** form (Radford et al. 2021)
# keeps the halves apart and averages InfoNCE from the first view to the second and
# back. Both are one call in `sslm_lab.contrastive`:

# %%
# NBVAL_CHECK_OUTPUT
symmetric_by_hand = (
    info_nce(toy_first, toy_second, toy_tau) + info_nce(toy_second, toy_first, toy_tau)
) / 2
assert_close(symmetric_info_nce(toy_first, toy_second, toy_tau), symmetric_by_hand)
print(f"symmetric InfoNCE {symmetric_by_hand:.4f}")
print(f"NT-Xent           {nt_xent(toy_first, toy_second, toy_tau):.4f} (6 negatives per anchor)")

# %% [markdown]
# **Exercise 1 (1 point).** Write NT-Xent yourself. Stack the two views into $2N$
# normalised rows, take all cosine similarities divided by τ, make sure no view counts as
# its own candidate, and score each view's partner (row $i$ pairs with row $i + N$) with a
# cross-entropy averaged over all $2N$ anchors.


# %% nbgrader={"grade": false, "grade_id": "nt_xent", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nt_xent_by_hand(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss for two views (batch, dim) of the same batch: a scalar tensor."""
    ### BEGIN SOLUTION
    views = F.normalize(torch.cat([first, second]), dim=1)
    logits = views @ views.T / temperature
    logits = logits - 1e9 * torch.eye(len(views))
    partners = torch.arange(len(views)).roll(len(first))
    return F.cross_entropy(logits, partners)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "nt_xent_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert_close(nt_xent_by_hand(toy_first, toy_second, 0.5), nt_xent(toy_first, toy_second, 0.5))
### BEGIN HIDDEN TESTS
check_generator = torch.Generator().manual_seed(1)
for batch, dim, t in ((2, 3, 0.1), (16, 8, 0.5), (64, 32, 1.0)):
    a, b = torch.randn(2, batch, dim, generator=check_generator)
    assert_close(nt_xent_by_hand(a, b, t), nt_xent(a, b, t))
### END HIDDEN TESTS

# %% [markdown]
# ## 2 · Views of a digit
#
# An augmentation says what does *not* matter. Five of them, from
# `sslm_lab.data.augmentations`, applied in this order: a random **crop** (a square of a
# random share of the side, scaled back to 8×8), a **rotation** by a few degrees, a
# **shift** by whole pixels, a **cut-out** square blanked, and **noise**. Each draws from
# a generator, so a seed fixes the views. Each row shows one digit; each column one
# augmentation alone, at the strength printed below, then the two views the main run
# compares. Those use three of the five; section 8 shows why.

# %%
train_images, train_labels = data.load_digits_split("train")  # (1257, 8, 8), (1257,)
val_images, val_labels = data.load_digits_split("val")  # (270, 8, 8): for the studies
test_images, test_labels = data.load_digits_split("test")  # (270, 8, 8): for the final table
every_augmentation = dict(C.every_augmentation)
shown = train_images[:6]
gallery = {
    name: augment_views(shown, torch.Generator().manual_seed(seed), {name: value})
    for name, value in every_augmentation.items()
}
view_generator = torch.Generator().manual_seed(seed)
gallery["view 1"] = augment_views(shown, view_generator, strengths)
gallery["view 2"] = augment_views(shown, view_generator, strengths)
again = augment_views(shown, torch.Generator().manual_seed(seed), strengths)
assert torch.equal(again, gallery["view 1"]), "the same seed gives the same views"
print("each alone:", ", ".join(f"{name} {value:g}" for name, value in every_augmentation.items()))
print("the two views:", ", ".join(f"{name} {value:g}" for name, value in strengths.items()))
fig = plot_augmentation_gallery(shown.numpy(), {k: v.numpy() for k, v in gallery.items()})

# %% [markdown]
# ## 3 · SimCLR on digits
#
# The recipe of Chen et al. (2020): an **encoder** $f$ makes the representation we will
# keep; a small **projection head** $g$ maps it to the space where the loss is taken. Each
# step draws a batch of images, makes two views of each, and minimises NT-Xent between
# $g(f(\text{view}_1))$ and $g(f(\text{view}_2))$. Afterwards the head is thrown away:
# SimCLR found the representation *before* the head is the better one, since the head
# learns to discard whatever the augmentations change, colour, position, which a later
# task may need.
#
# Our encoder is a small MLP on the 64 pixels: the studies below train more than a dozen
# encoders, and an MLP keeps each run to seconds on a CPU. The loss function has the
# trainer's shape `(model, batch, step) -> (loss, metrics)`; the trainer does the rest.


# %%
def digit_encoder() -> nn.Module:
    """(batch, 8, 8) pixels -> (batch, C.width): the representation a probe reads."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, C.hidden),
        nn.ReLU(),
        nn.Linear(C.hidden, C.hidden),
        nn.ReLU(),
        nn.Linear(C.hidden, C.width),
    )


def simclr_model(init_seed: int) -> nn.Sequential:
    """Encoder, then projection head: model[0] is f, model(x) is g(f(x))."""
    torch.manual_seed(init_seed)
    head = nn.Sequential(nn.Linear(C.width, C.width), nn.ReLU(), nn.Linear(C.width, C.projection))
    return nn.Sequential(digit_encoder(), head)


def two_views(augmentations: dict, batch_size: int):
    """A batch_fn: random training images, each augmented twice with the step's generator."""

    def batch_fn(step: int, generator: torch.Generator):
        images = train_images[torch.randint(len(train_images), (batch_size,), generator=generator)]
        return augment_views(images, generator, augmentations), augment_views(
            images, generator, augmentations
        )

    return batch_fn


def simclr_objective(temperature: float):
    """NT-Xent between the projections of the two views; alignment logged beside it."""

    def loss_fn(model: nn.Module, batch, step: int):
        first, second = model(batch[0]), model(batch[1])  # (batch, projection) each
        return nt_xent(first, second, temperature), {"alignment": alignment(first, second).detach()}

    return loss_fn


def train(container: nn.Module, trained: nn.Module, loss_fn, batch_fn, steps: int, **settings):
    """Fit `trained` (a part of `container`) with AdamW, warmup and cosine decay; the trainer."""
    lr = settings.pop("lr", C.lr)
    warmup = min(C.warmup_steps, steps // 2)
    phase = Phase("contrastive", trained, loss_fn, lr=lr, warmup_steps=warmup, min_lr=lr / 10)
    config = TrainerConfig(
        max_steps=steps, device=settings.pop("device", "cpu"), seed=seed, **settings
    )
    trainer = Trainer(container, phase, batch_fn, config)
    trainer.fit()
    return trainer


started = time.perf_counter()
simclr = simclr_model(seed)
simclr_trainer = train(
    simclr, simclr, simclr_objective(tau), two_views(strengths, C.batch_size), simclr_steps
)
simclr_seconds = time.perf_counter() - started
encoder = simclr[0].eval()
losses = [row["contrastive/loss"] for row in simclr_trainer.history]
tenth = max(1, len(losses) // 10)
first_loss, last_loss = np.mean(losses[:tenth]), np.mean(losses[-tenth:])  # batches vary: average
candidates = 2 * C.batch_size - 1
parameters = sum(p.numel() for p in encoder.parameters())
print(f"{parameters:,} encoder parameters, {simclr_steps} steps in {simclr_seconds:.0f} s")
print(
    f"NT-Xent over the first tenth of the steps {first_loss:.3f}, over the last {last_loss:.3f}; "
    f"a guess among {candidates} candidates costs log {candidates} = {math.log(candidates):.3f}"
)
display(plot_history(simclr_trainer.history, keys=["contrastive/loss", "contrastive/alignment"]))

# %% [markdown]
# ## 4 · The linear probe: how good is the representation?
#
# Freeze the encoder, compute its representation of every image, and fit a logistic
# regression on a few labelled training images per class; score it on the test images.
# The probe is linear on purpose: it measures what the representation already makes
# easy, not what a new network could learn on top. The same logistic regression on the
# raw pixels is the baseline a representation must beat. A second baseline spends the
# labels differently: a network of the same size as encoder + probe, trained from
# scratch on the same labelled images (with the same augmentations).
#
# Each labelled subset is drawn `probe_seeds` times; every method sees the same draws.
# Features are standardised with the statistics of all the (unlabelled) training images.


# %%
def representation(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(images).numpy()


def labelled_subset(per_class: int | None, draw: int) -> np.ndarray:
    """Indices of `per_class` training images of each digit (None: all), drawn with `draw`."""
    if per_class is None:
        return np.arange(len(train_labels))
    rng = np.random.default_rng(draw)
    labels = train_labels.numpy()
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    )


def probe_accuracy(features, eval_features, eval_labels, subset, standardise=True) -> float:
    """Accuracy on (eval_features, eval_labels) of a logistic regression fitted on the
    labelled subset of the training features; standardised with all training images'
    statistics (they need no labels) unless standardise=False."""
    mean, std = (features.mean(axis=0), features.std(axis=0) + 1e-6) if standardise else (0, 1)
    probe = LogisticRegression(max_iter=3000)
    probe.fit((features[subset] - mean) / std, train_labels.numpy()[subset])
    return float(probe.score((eval_features - mean) / std, eval_labels.numpy()))


def mean_probe(model: nn.Module, per_class: int | None) -> float:
    """A study's score: the probe on the val images, averaged over the labelled draws."""
    features = representation(model, train_images), representation(model, val_images), val_labels
    draws = range(C.probe_seeds if per_class is not None else 1)
    return float(
        np.mean([probe_accuracy(*features, labelled_subset(per_class, seed + d)) for d in draws])
    )


def supervised_accuracy(subset: np.ndarray, init_seed: int) -> float:
    """Test accuracy of encoder + linear layer trained from scratch on the labelled subset."""
    torch.manual_seed(init_seed)
    network = nn.Sequential(digit_encoder(), nn.Linear(C.width, 10))
    images, labels = train_images[subset], train_labels[subset]

    def batch_fn(step: int, generator: torch.Generator):
        index = torch.randint(len(images), (min(128, len(images)),), generator=generator)
        return augment_views(images[index], generator, strengths), labels[index]

    def loss_fn(model: nn.Module, batch, step: int):
        return F.cross_entropy(model(batch[0]), batch[1]), {}

    train(network, network, loss_fn, batch_fn, C.supervised_steps, progress=False)
    with torch.no_grad():
        return float((network.eval()(test_images).argmax(1) == test_labels).float().mean())


# Pixels are already on one scale (0 to 1) and go in as they are; the representation's
# features have scales of their own and are standardised.
pixels = train_images.flatten(1).numpy(), test_images.flatten(1).numpy(), test_labels
simclr_features = representation(encoder, train_images), representation(encoder, test_images)
methods = ("SimCLR + linear probe", "raw pixels + logistic regression", "supervised, same network")
probe_table = {method: {} for method in methods}  # method -> per_class -> accuracies over draws
started = time.perf_counter()
for per_class in C.labels_per_class:
    draws = range(C.probe_seeds if per_class is not None else 1)  # all labels: one draw only
    subsets = [labelled_subset(per_class, seed + d) for d in draws]
    probe_table[methods[0]][per_class] = [
        probe_accuracy(*simclr_features, test_labels, subset) for subset in subsets
    ]
    probe_table[methods[1]][per_class] = [
        probe_accuracy(*pixels, subset, standardise=False) for subset in subsets
    ]
    probe_table[methods[2]][per_class] = [
        supervised_accuracy(subset, seed + d) for d, subset in zip(draws, subsets, strict=True)
    ]
probe_seconds = time.perf_counter() - started


def per_class_name(per_class: int | None) -> str:
    return "all" if per_class is None else str(per_class)


def labels_name(per_class: int | None) -> str:
    return "all labels" if per_class is None else f"{per_class} per class"


def mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def table_row(name: str, cells: list[str]) -> str:
    return f"| {name} | " + " | ".join(cells) + " |\n"


def table_head(name: str, cells: list[str]) -> str:
    """A Markdown table's header row and the rule under it."""
    return table_row(name, cells) + "|---" * (len(cells) + 1) + "|\n"


probe_markdown = table_head("labels per class", list(methods)) + "".join(
    table_row(per_class_name(k), [mean_std(probe_table[m][k]) for m in methods])
    for k in C.labels_per_class
)
display(
    Markdown(
        f"Test accuracy (%) on {len(test_labels)} digits, mean ± std over {C.probe_seeds} "
        f"labelled draws (all labels: one):\n\n" + probe_markdown
    )
)
print(f"probes and supervised baselines: {probe_seconds:.0f} s")
fig = plot_probe_curves(
    [per_class_name(k) for k in C.labels_per_class],
    {
        m: (
            [np.mean(probe_table[m][k]) for k in C.labels_per_class],
            [np.std(probe_table[m][k]) for k in C.labels_per_class],
        )
        for m in methods
    },
    title=f"Digits, test accuracy against labels ({P.name} profile)",
)

# %%
mean_accuracy = {
    m: {k: float(np.mean(probe_table[m][k])) for k in C.labels_per_class} for m in methods
}
display(
    Markdown(
        "\n".join(
            f"- {labels_name(k)}: SimCLR's probe "
            f"{100 * (mean_accuracy[methods[0]][k] - mean_accuracy[methods[1]][k]):+.1f} points "
            f"against raw pixels, "
            f"{100 * (mean_accuracy[methods[0]][k] - mean_accuracy[methods[2]][k]):+.1f} against "
            "the supervised network"
            for k in C.labels_per_class
        )
    )
)

# %% [markdown]
# With one or five labels per class, the representation learned without labels is worth
# more than the labels can teach on their own: the pixels of one example per digit say
# little about the next one's shifts and slants, while SimCLR has already learned to
# ignore them. The advantage is largest where the labels are scarcest. The supervised
# network has the hardest time with few labels: it has to learn from them alone what
# SimCLR learned from all the images, unlabelled.
#
# ## 5 · Alignment and uniformity
#
# Wang & Isola (2020) split what the contrastive loss asks for into two measurable
# properties of the normalised embeddings:
#
# - **alignment**: positive pairs map close together,
#   $\mathbb{E}\,\lVert f(x) - f(y) \rVert^2$ over pairs of views;
# - **uniformity**: everything else spreads over the sphere,
#   $\log \mathbb{E}\, e^{-2 \lVert f(x) - f(y) \rVert^2}$ over pairs of different images.
#
# Both are better when lower, and they pull against each other: mapping everything to one
# point aligns perfectly and is as far from uniform as it gets.
#
# **Exercise 2 (2 points).** Write both. Normalise the rows first.


# %% nbgrader={"grade": false, "grade_id": "alignment_uniformity", "locked": false, "schema_version": 3, "solution": true, "task": false}
def alignment_by_hand(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between normalised positive pairs (batch, dim)."""
    ### BEGIN SOLUTION
    return (F.normalize(first, dim=1) - F.normalize(second, dim=1)).pow(2).sum(dim=1).mean()
    ### END SOLUTION


def uniformity_by_hand(embeddings: torch.Tensor) -> torch.Tensor:
    """log mean exp(-2 · squared distance) over all pairs of different normalised rows."""
    ### BEGIN SOLUTION
    unit = F.normalize(embeddings, dim=1)
    squared = torch.cdist(unit, unit).pow(2)
    different = ~torch.eye(len(unit), dtype=torch.bool)
    return squared[different].mul(-2).exp().mean().log()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "alignment_uniformity_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert_close(alignment_by_hand(toy_first, toy_second), alignment(toy_first, toy_second))
assert_close(uniformity_by_hand(toy_first), uniformity(toy_first), atol=1e-5, rtol=1e-5)
### BEGIN HIDDEN TESTS
check_generator = torch.Generator().manual_seed(2)
for batch, dim in ((2, 2), (10, 5), (100, 16)):
    a, b = torch.randn(2, batch, dim, generator=check_generator, dtype=torch.float64)
    assert_close(alignment_by_hand(a, b), alignment(a, b))
    assert_close(uniformity_by_hand(a), uniformity(a))
### END HIDDEN TESTS

# %% [markdown]
# From here on the notebook uses `sslm_lab.contrastive`'s versions. Measured on the
# projections of two views of the val images (where the loss acts), before and after
# training:


# %%
def alignment_uniformity(model: nn.Module) -> tuple[float, float]:
    """(alignment, uniformity) of a model's projections of two views of the val images."""
    views = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.eval()
        first = model(augment_views(val_images, views, strengths))
        second = model(augment_views(val_images, views, strengths))
        return alignment(first, second).item(), uniformity(first).item()


untrained_measures = alignment_uniformity(simclr_model(seed))
trained_measures = alignment_uniformity(simclr)
for name, (a, u) in (("untrained", untrained_measures), ("SimCLR", trained_measures)):
    print(f"{name:>9}: alignment {a:.3f}, uniformity {u:.3f}")

# %% [markdown]
# The untrained network maps all images close together: nearly perfect alignment, for
# free, and poor uniformity. Training trades some alignment for a lot of uniformity.
#
# ## 6 · The temperature
#
# τ sets how sharply the softmax singles out the hardest negatives. A small τ
# concentrates the loss on the few negatives closest to the query and pushes them away
# hard; a large τ spreads it over all of them and cares less how close any one is. The
# study below trains shorter runs (`study_steps` steps, batches of `study_batch_size`)
# at each τ and scores each by the probe with `study_labels` labels per class, and by
# alignment and uniformity, all on the **val** images: the studies choose settings, so
# the test images stay for the final table.

# %%
study_probe = f"probe accuracy, {C.study_labels} labels per class"
study_runs = {}


def study_run(temperature: float, augmentations: dict) -> nn.Sequential:
    """A short SimCLR run; the same seed everywhere, so runs differ only in what is studied."""
    key = (temperature, tuple(sorted(augmentations.items())))
    if key not in study_runs:
        model = simclr_model(seed)
        batch_fn = two_views(augmentations, C.study_batch_size)
        train(model, model, simclr_objective(temperature), batch_fn, C.study_steps, progress=False)
        study_runs[key] = model
    return study_runs[key]


started = time.perf_counter()
temperature_study = []
for t in C.temperatures:
    model = study_run(t, strengths)
    temperature_study.append(
        (t, mean_probe(model[0], C.study_labels), *alignment_uniformity(model))
    )
temperature_seconds = time.perf_counter() - started
for t, accuracy, a, u in temperature_study:
    print(f"τ = {t:<5}: {study_probe} {accuracy:.1%}, alignment {a:.3f}, uniformity {u:.3f}")
taus, study_accuracy, study_alignment, study_uniformity = (
    list(column) for column in zip(*temperature_study, strict=True)
)
fig = plot_temperature_study(taus, study_accuracy, study_alignment, study_uniformity, study_probe)

# %%
best_index = int(np.argmax(study_accuracy))
best_tau, p_best = taus[best_index], study_accuracy[best_index]
interior_optimum = 0 < best_index < len(taus) - 1
if interior_optimum:
    finding = (
        f"The probe peaks inside the range, at τ = {best_tau:g} ({p_best:.1%}): τ = {taus[0]:g} "
        f"gives {study_accuracy[0]:.1%}, τ = {taus[-1]:g} {study_accuracy[-1]:.1%}."
    )
else:
    finding = (
        f"No interior optimum on this run: the probe is best at the edge of the range, "
        f"τ = {best_tau:g} ({p_best:.1%}); the range would have to grow to find the peak."
    )


def trend(values: list[float]) -> str:
    """How a measure moves from the smallest τ to the largest: its rank correlation sign."""
    ranks = np.argsort(np.argsort(values))
    rho = np.corrcoef(np.arange(len(values)), ranks)[0, 1]
    return "rises" if rho > 0.5 else "falls" if rho < -0.5 else "goes up and down"


# An accuracy p measured on n images has a standard error of about sqrt(p (1 - p) / n).
val_noise = 2 * math.sqrt(p_best * (1 - p_best) / len(val_labels))
spread_of_curve = max(study_accuracy) - min(study_accuracy)
finding += (
    f" The whole curve spans {100 * spread_of_curve:.1f} points, "
    + ("less" if spread_of_curve < val_noise else "more")
    + f" than two standard errors of one val accuracy (±{100 * val_noise:.1f})."
)
finding += (
    f" From the smallest τ to the largest, alignment {trend(study_alignment)} "
    f"and uniformity {trend(study_uniformity)} (for both, lower is better). The most aligned "
    f"run is τ = {taus[int(np.argmin(study_alignment))]:g}, the most uniform "
    f"τ = {taus[int(np.argmin(study_uniformity))]:g}, the probe's favourite τ = {best_tau:g}."
)
display(Markdown(finding))

# %% [markdown]
# Among the few negatives a small τ concentrates on are other images of the *same*
# digit, which the loss then pushes away, so the smallest τ is rarely the best for a
# probe. Alignment and uniformity say what each τ did to the geometry; the probe says what
# that was worth. Read the size of the differences against the noise printed above
# before calling a winner.
#
# ## 7 · How many negatives? MoCo's queue
#
# InfoNCE's bound grows with the number of candidates, but in-batch negatives cost memory:
# a batch of $B$ gives $B - 1$. MoCo (He et al. 2020) keeps the keys of earlier batches in
# a **queue** and uses them as extra negatives, thousands of them, at no extra compute.
# Keys computed many steps ago come from an older encoder, so MoCo computes keys with a
# **momentum encoder** that moves slowly, an exponential moving average of the trained
# one: $\theta_k \leftarrow m\,\theta_k + (1 - m)\,\theta_q$. The queue is
# `sslm_lab.contrastive.KeyQueue`, and the moving average is a trainer callback that runs
# after every step.
#
# **Exercise 3 (3 points).** A queue update by hand: given the queue as a tensor
# (oldest key first, at most `size` rows) and a batch of new keys, return the new queue,
# oldest first, keeping only the `size` most recent keys.


# %% nbgrader={"grade": false, "grade_id": "queue_update", "locked": false, "schema_version": 3, "solution": true, "task": false}
def enqueue_by_hand(queue: torch.Tensor, keys: torch.Tensor, size: int) -> torch.Tensor:
    """(m, dim) queue, m <= size, oldest first; (batch, dim) new keys -> the new queue."""
    ### BEGIN SOLUTION
    return torch.cat([queue, keys])[max(0, len(queue) + len(keys) - size) :]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "queue_update_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check_queue, by_hand_queue = KeyQueue(size=5, dim=2), torch.zeros(0, 2)
for batch in torch.arange(24.0).reshape(12, 2).split([2, 3, 1, 4, 2]):
    check_queue.enqueue(batch)
    by_hand_queue = enqueue_by_hand(by_hand_queue, batch, 5)
    assert torch.equal(by_hand_queue, check_queue.keys)
### BEGIN HIDDEN TESTS
check_generator = torch.Generator().manual_seed(3)
for size in (0, 1, 7, 64):
    check_queue, by_hand_queue = KeyQueue(size=size, dim=3), torch.zeros(0, 3)
    for _ in range(20):
        batch = torch.randn(
            int(torch.randint(1, 20, (1,), generator=check_generator)), 3, generator=check_generator
        )
        check_queue.enqueue(batch)
        by_hand_queue = enqueue_by_hand(by_hand_queue, batch, size)
        assert torch.equal(by_hand_queue, check_queue.keys)
### END HIDDEN TESTS

# %% [markdown]
# The MoCo loss: queries from the trained network on the first view, keys from the
# momentum network on the second (no gradient), InfoNCE against the batch's keys and the
# queue, then the keys join the queue. Queue size 0 is the same recipe with in-batch
# negatives only, so every run below differs only in the number of negatives.


# %%
def moco_objective(momentum_model: nn.Module, queue: KeyQueue, temperature: float):
    """InfoNCE of the trained network's queries against the slow network's keys and the
    queue; the step's keys then join the queue."""

    def loss_fn(model: nn.Module, batch, step: int):
        queries = model(batch[0])  # (batch, projection)
        with torch.no_grad():
            keys = momentum_model(batch[1])  # (batch, projection), from the slow encoder
        negatives = len(queries) - 1 + len(queue.keys)
        loss = info_nce(queries, keys, temperature, negatives=queue.keys)
        queue.enqueue(F.normalize(keys, dim=1))
        return loss, {"negatives": torch.tensor(float(negatives))}

    return loss_fn


def moco_run(queue_size: int) -> nn.Sequential:
    """A short MoCo run with a queue of `queue_size` keys; returns the trained network."""
    model = simclr_model(seed)
    momentum_model = copy.deepcopy(model).requires_grad_(False)
    queue = KeyQueue(queue_size, C.projection)
    container = nn.ModuleDict({"model": model, "momentum_model": momentum_model, "queue": queue})

    def follow(trainer: Trainer, row: dict) -> None:  # after every step: the moving average
        momentum_update(model, momentum_model, C.momentum)

    loss_fn = moco_objective(momentum_model, queue, tau)
    batch_fn = two_views(strengths, C.study_batch_size)
    train(container, model, loss_fn, batch_fn, C.study_steps, progress=False, callbacks=[follow])
    return model


# The momentum encoder is an exponential moving average: check one update by hand.
online, slow = simclr_model(seed), simclr_model(seed + 1)
expected = {
    name: C.momentum * p + (1 - C.momentum) * dict(online.named_parameters())[name]
    for name, p in slow.named_parameters()
}
momentum_update(online, slow, C.momentum)
for name, parameter in slow.named_parameters():
    assert_close(parameter, expected[name])

started = time.perf_counter()
negatives_study = []
for size in C.queue_sizes:
    model = moco_run(size)
    negatives_study.append(
        (size, C.study_batch_size - 1 + size, mean_probe(model[0], C.study_labels))
    )
negatives_seconds = time.perf_counter() - started
for size, negatives, accuracy in negatives_study:
    print(f"queue {size:>5}: {negatives:>5} negatives per query, {study_probe} {accuracy:.1%}")
fig = plot_accuracy_against(
    [n for _, n, _ in negatives_study],
    [a for _, _, a in negatives_study],
    xlabel=f"negatives per query (batch {C.study_batch_size} - 1 + queue size)",
    ylabel=study_probe,
    title="More negatives from MoCo's queue, at a fixed batch",
)

# %%
queue_gain = negatives_study[-1][2] - negatives_study[0][2]
largest = C.queue_sizes[-1]
# Keys are images drawn at random: the chance that the query's own image is among them.
own_image_queued = 1 - (1 - 1 / len(train_images)) ** largest
display(
    Markdown(
        f"From in-batch negatives only ({negatives_study[0][1]}) to the largest queue "
        f"({negatives_study[-1][1]} negatives) the probe moves by {100 * queue_gain:+.1f} "
        f"points. The training set holds only {len(train_images):,} images: with {largest:,} "
        f"keys in the queue, an older view of the query's *own* image is among its negatives "
        f"{own_image_queued:.0%} of the time, and about a tenth of all keys show the same digit."
    )
)

# %% [markdown]
# A queue pays off when the data are many and the queue holds mostly *other* examples,
# as for ImageNet in the MoCo paper. On a small set it also fills with near-copies of the
# positive, which the loss then pushes away: false negatives.
#
# ## 8 · Which augmentation matters?
#
# Start from all five augmentations, leave one out at a time and train again (the same
# short runs as the τ study, at this run's τ). Where the probe drops, the augmentation
# was teaching the encoder something it needs to ignore; where it rises, the
# augmentation destroyed more than it taught. An 8×8 digit has little to spare.

# %%
started = time.perf_counter()
ablation = {"none left out": mean_probe(study_run(tau, every_augmentation)[0], C.study_labels)}
for name in every_augmentation:
    kept = {other: value for other, value in every_augmentation.items() if other != name}
    ablation[f"without {name}"] = mean_probe(study_run(tau, kept)[0], C.study_labels)
ablation_seconds = time.perf_counter() - started
for name, accuracy in ablation.items():
    print(f"{name:>16}: {study_probe} {accuracy:.1%}")
fig = plot_bars(
    ablation,
    ylabel=study_probe,
    title="Each augmentation left out in turn",
    reference=ablation["none left out"],
    reference_label="all augmentations",
)

# %%
drops = {
    name.removeprefix("without "): ablation["none left out"] - value
    for name, value in ablation.items()
    if name != "none left out"
}
display(
    Markdown(
        "Leaving each out, against all five: "
        + ", ".join(f"{name} {-100 * drop:+.1f} points" for name, drop in drops.items())
        + f". The main run's views use {', '.join(strengths)}."
    )
)

# %% [markdown]
# ## 9 · SimCSE: one line, two dropout masks
#
# Text has no crops. SimCSE (Gao et al. 2021) found that the simplest augmentation works:
# feed the same sentence through the encoder twice. Dropout is on during training, so the
# two passes drop different units and give two slightly different embeddings of the same
# line: a positive pair. The other lines of the batch are the negatives, and the loss is
# InfoNCE, with SimCSE's τ. Written out below, then checked against
# `sslm_lab.contrastive.SimCSE`, which trains the encoder (and 07's recipes use).
#
# The lines are Shakespeare's, taken from the speeches of the training plays with
# `sslm_lab.data.speeches`, which reads the speaker headings (`FIRST CITIZEN.`, `Ber.`)
# and gives each speech as (speaker, text). Every line of a speech with at least
# `min_line_chars` characters counts; poems have no speakers and are left out. Each line
# becomes `[CLS]` + its BPE pieces, padded to `line_tokens` tokens, so every batch has
# the same shape.


# %%
def play_lines(works: list) -> list[tuple[str, str, str]]:
    """(line, work title, speaker) for every line of every speech in `works`."""
    rows = []
    for work in works:
        for speech in speeches(data.read_work(work)):
            rows += [
                (line, work.title, speech.speaker)
                for line in speech.text.splitlines()
                if len(line) >= C.min_line_chars
            ]
    return rows


tokenizer = data.bpe_tokenizer(C.bpe_vocab_size)


def encode_lines(lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask), each (len(lines), line_tokens): [CLS] + pieces, padded."""
    rows = [
        [tokenizer.cls_id, *pieces][: C.line_tokens] for pieces in tokenizer.encode_batch(lines)
    ]
    ids = torch.tensor([row + [tokenizer.pad_id] * (C.line_tokens - len(row)) for row in rows])
    return ids, (ids != tokenizer.pad_id).long()  # padding is the only [PAD] a line has


train_works = [work for work in data.works_in_split("train") if work.genre != "poetry"]
held_out_works = [
    work
    for split in ("val", "test")
    for work in data.works_in_split(split)
    if work.genre != "poetry"
]
train_lines = play_lines(train_works)
train_ids, train_mask = encode_lines([line for line, _, _ in train_lines])
print(f"{len(train_lines):,} training lines from {len(train_works)} plays, e.g. {train_lines[0]}")
print(f"held out: {', '.join(work.title for work in held_out_works)}")

# %%
text_config = TransformerConfig(
    vocab_size=tokenizer.vocab_size,
    block_size=C.line_tokens,
    n_layer=C.text_layers,
    n_head=C.text_heads,
    n_embd=C.text_width,
    dropout=C.text_dropout,
    attention_dropout=C.text_dropout,
    causal=False,
    norm_position="pre",
    gelu="exact",
)


def sentence_embeddings(model: MaskedLM, lines: list[str]) -> torch.Tensor:
    """(len(lines), n_embd): the mean of the final hidden states over each line's tokens."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(lines), 256):
            ids, mask = (t.to(device) for t in encode_lines(lines[start : start + 256]))
            rows.append(pool(model.eval().hidden_states(ids, mask), mask, "mean").cpu())
    return torch.cat(rows)


def simcse_by_hand(model: MaskedLM, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """InfoNCE between two passes of the same lines; only dropout makes them differ."""
    first = pool(model.hidden_states(ids, mask), mask, "mean")  # (batch, n_embd), dropout mask 1
    second = pool(model.hidden_states(ids, mask), mask, "mean")  # the same lines, dropout mask 2
    return info_nce(first, second, C.simcse_temperature)


# A MaskedLM, so save_pretrained can store it; SimCSE reads it through its body alone.
torch.manual_seed(seed)
text_encoder = MaskedLM(text_config)
simcse = SimCSE(text_encoder, C.simcse_temperature)
torch.manual_seed(seed)
random_encoder = MaskedLM(text_config).to(device)  # the same shape and start, never trained
# The package's SimCSE is the loss written above: the same dropout masks give the same value.
check_ids, check_mask = train_ids[:8], train_mask[:8]
simcse.train()
torch.manual_seed(seed)
by_hand = simcse_by_hand(text_encoder, check_ids, check_mask)
torch.manual_seed(seed)
assert_close(simcse(check_ids, check_mask), by_hand)
print(f"SimCSE loss on 8 lines: by hand {by_hand:.4f} = sslm_lab.contrastive.SimCSE")
started = time.perf_counter()
simcse_trainer = train(
    simcse,
    simcse,
    simcse_objective,
    sample_rows(train_ids.to(device), train_mask.to(device), batch_size=C.simcse_batch_size),
    text_steps,
    lr=C.simcse_lr,
    device=str(device),
)
simcse_seconds = time.perf_counter() - started
text_encoder.eval()
simcse_losses = [row["contrastive/loss"] for row in simcse_trainer.history]
print(
    f"{text_encoder.transformer.num_parameters():,} parameters, {text_steps} steps in "
    f"{simcse_seconds:.0f} s; InfoNCE {simcse_losses[0]:.3f} -> {simcse_losses[-1]:.3f} "
    f"(a guess among {C.simcse_batch_size} candidates: {math.log(C.simcse_batch_size):.3f})"
)

# %% [markdown]
# ### Retrieval: does a line's neighbourhood know where it came from?
#
# The test needs no labels at training time. From each held-out play, `lines_per_work`
# random lines form a pool. For every line of the pool we find its nearest other lines by
# cosine similarity and ask: is one of the $k$ nearest from the **same work**? From the
# **same speaker** (same work and same character)? The share of lines for which the answer
# is yes is **recall@k**. Three encoders take the test: SimCSE; the **random encoder**,
# the same network at its initial weights (a fair floor: averaging even random token
# vectors keeps which tokens a line has, and names repeat within a play); and the real
# **all-MiniLM-L6-v2**, a six-layer model trained contrastively on over a billion
# sentence pairs (its model card), shown for scale, not as a target. The last column is
# the uniformity of each encoder's embeddings of the pool.

# %%
held_out_lines = play_lines(held_out_works)
line_rng = random.Random(seed)
retrieval_pool = []
for work in held_out_works:
    of_work = [row for row in held_out_lines if row[1] == work.title]
    retrieval_pool += line_rng.sample(of_work, C.lines_per_work)
pool_lines = [line for line, _, _ in retrieval_pool]
pool_works = [title for _, title, _ in retrieval_pool]
genre_of = {work.title: work.genre for work in held_out_works}
pool_genres = [genre_of[title] for title in pool_works]
titles = [work.title for work in held_out_works]
work_groups = torch.tensor([titles.index(title) for title in pool_works])
speaker_names = sorted({(title, speaker) for _, title, speaker in retrieval_pool})
speaker_groups = torch.tensor(
    [speaker_names.index((title, speaker)) for _, title, speaker in retrieval_pool]
)

minilm_tokenizer, minilm = load_minilm()
minilm_parameters = sum(p.numel() for p in minilm.parameters())
print(
    f"all-MiniLM-L6-v2: {minilm_parameters / 1e6:.1f} M parameters; SimCSE's encoder: "
    f"{text_encoder.transformer.num_parameters() / 1e6:.2f} M"
)


def minilm_embeddings(lines: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2's sentence embedding: its last hidden states averaged (its recipe)."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(lines), 128):
            batch = minilm_tokenizer(
                lines[start : start + 128],
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            rows.append(pool(minilm(**batch).last_hidden_state, batch["attention_mask"], "mean"))
    return torch.cat(rows)


def recall_at(embeddings: torch.Tensor, groups: torch.Tensor) -> dict[int, float]:
    """Share of pool lines with a line of the same group among their k nearest others."""
    unit = F.normalize(embeddings, dim=1)
    similarity = (unit @ unit.T).fill_diagonal_(-math.inf)  # a line is not its own neighbour
    nearest = similarity.topk(max(C.recall_at), dim=1).indices  # (pool, max k)
    same = groups[nearest] == groups[:, None]
    return {k: same[:, :k].any(dim=1).float().mean().item() for k in C.recall_at}


encoders = {
    "SimCSE": lambda lines: sentence_embeddings(text_encoder, lines),
    "random encoder": lambda lines: sentence_embeddings(random_encoder, lines),
    "all-MiniLM-L6-v2": minilm_embeddings,
}
pool_embeddings = {name: embed(pool_lines) for name, embed in encoders.items()}
retrieval = {
    name: {"work": recall_at(e, work_groups), "speaker": recall_at(e, speaker_groups)}
    for name, e in pool_embeddings.items()
}


def chance(groups: torch.Tensor, k: int) -> float:
    """recall@k of neighbours drawn at random: 1 - P(none of k others is in the group)."""
    sizes = torch.bincount(groups)[groups].double() - 1  # others in each line's group
    others = len(groups) - 1
    miss = torch.ones(len(groups), dtype=torch.float64)
    for i in range(k):
        miss *= (others - sizes - i).clamp(min=0) / (others - i)
    return float(1 - miss.mean())


columns = [(kind, k) for kind in ("work", "speaker") for k in C.recall_at]
groups = {"work": work_groups, "speaker": speaker_groups}
pool_uniformity = {name: uniformity(e).item() for name, e in pool_embeddings.items()}


retrieval_markdown = (
    table_head("encoder", [f"same {kind}, recall@{k}" for kind, k in columns] + ["uniformity"])
    + "".join(
        table_row(
            name,
            [f"{100 * retrieval[name][kind][k]:.1f}" for kind, k in columns]
            + [f"{pool_uniformity[name]:.2f}"],
        )
        for name in encoders
    )
    + table_row("chance", [f"{100 * chance(groups[kind], k):.1f}" for kind, k in columns] + [""])
)
display(
    Markdown(
        f"Recall (%) over a pool of {len(pool_lines):,} held-out lines "
        f"({C.lines_per_work} per play):\n\n" + retrieval_markdown
    )
)

# %%
top_k = max(C.recall_at)
simcse_gain = {
    kind: retrieval["SimCSE"][kind][top_k] - retrieval["random encoder"][kind][top_k]
    for kind in ("work", "speaker")
}
start_recall = retrieval["random encoder"]["work"][top_k]
noise = 2 * math.sqrt(start_recall * (1 - start_recall) / len(pool_lines))  # two std errors
display(
    Markdown(
        f"Recall@{top_k}, SimCSE minus its random start: same work "
        f"{100 * simcse_gain['work']:+.1f} points "
        f"({'within' if abs(simcse_gain['work']) < noise else 'beyond'} two standard errors, "
        f"±{100 * noise:.1f}), same speaker {100 * simcse_gain['speaker']:+.1f} points. "
        f"Uniformity of the pool's embeddings: {pool_uniformity['random encoder']:.2f} at the "
        f"start, {pool_uniformity['SimCSE']:.2f} after SimCSE."
    )
)

# %% [markdown]
# SimCSE did what its loss asks: the lines no longer crowd together. Whether that also
# put the lines of one play closer together is what the first number says; at laptop size
# it does not get clear of the noise, and neither did the other settings we tried while
# writing this notebook (listed in the comment on `simcse_steps` in the profile table).
# Why can training leave an encoder no better than its random start? The next cell asks
# what the test itself rewards.

# %% [markdown]
# ### What the test rewards
#
# Three ways to embed a line with no neural network at all, over the same BPE pieces the
# encoders read:
#
# - **counts**: how often each piece of the vocabulary occurs in the line;
# - **TF-IDF**: the same counts, each piece weighted by how rare it is among the training
#   lines (its inverse document frequency), so `the` weighs little and a name a lot;
# - **LSA**: the TF-IDF vectors squeezed by a truncated SVD, fitted on the training lines,
#   into as many directions as the encoders have (`text_width`). Pieces that occur in the
#   same lines end up sharing directions: the simplest representation *learned* from the
#   training plays' text.
#
# Counts and TF-IDF know nothing but which pieces two lines share. The random encoder is
# close kin: each piece keeps its own random vector, which mean pooling adds up, so lines
# that share pieces stay close (the position vectors and the random mixing of the
# attention blur this). Wieting & Kiela (2019) found random sentence encoders hard to beat
# on classification for the same reason.


# %%
def as_pieces(pieces: list[int]) -> list[int]:
    """The analyzer for scikit-learn's vectorizers: the lines arrive already in BPE pieces."""
    return pieces


train_pieces = tokenizer.encode_batch([line for line, _, _ in train_lines])
pool_pieces = tokenizer.encode_batch(pool_lines)
counter = CountVectorizer(analyzer=as_pieces).fit(train_pieces)
tf_idf = TfidfVectorizer(analyzer=as_pieces).fit(train_pieces)  # IDF from the training lines
lsa = TruncatedSVD(C.text_width, random_state=seed).fit(tf_idf.transform(train_pieces))
lsa_name = f"LSA, {C.text_width} directions"
lexical_embeddings = {
    "counts": counter.transform(pool_pieces).toarray(),
    "TF-IDF": tf_idf.transform(pool_pieces).toarray(),
    lsa_name: lsa.transform(tf_idf.transform(pool_pieces)),
}
lexical_retrieval = {
    name: {
        kind: recall_at(torch.tensor(e, dtype=torch.float32), groups[kind])
        for kind in ("work", "speaker")
    }
    for name, e in lexical_embeddings.items()
}
first_k = min(C.recall_at)


def work_recall(name: str) -> float:
    """Same-work recall@first_k of any encoder above, neural or not."""
    return {**retrieval, **lexical_retrieval}[name]["work"][first_k]


display(
    Markdown(
        "Recall (%) over the same pool:\n\n"
        + table_head("embedding", [f"same {kind}, recall@{k}" for kind, k in columns])
        + "".join(
            table_row(name, [f"{100 * r[kind][k]:.1f}" for kind, k in columns])
            for name, r in [
                *lexical_retrieval.items(),
                ("random encoder", retrieval["random encoder"]),
            ]
        )
        + f"\nSame work, recall@{first_k}: TF-IDF {100 * work_recall('TF-IDF'):.1f} against "
        f"all-MiniLM-L6-v2's {100 * work_recall('all-MiniLM-L6-v2'):.1f}; LSA minus TF-IDF "
        f"{100 * (work_recall(lsa_name) - work_recall('TF-IDF')):+.1f} points; the random "
        f"encoder minus counts {100 * (work_recall('random encoder') - work_recall('counts')):+.1f}."
    )
)

# %% [markdown]
# On lines of plays no encoder has seen, the pieces two lines share (a name, a place, a
# word the play keeps returning to) say most of what this test can find, and weighting
# them by rarity is what TF-IDF adds (the closing cell asserts that it beats the random
# encoder and LSA). LSA shows what happens to a representation learned from other plays:
# merging pieces into shared directions costs more of the overlap than the shared
# directions win back. SimCSE from random weights faces the same trade with less to go
# on: its loss asks only that each line be told apart from the others in the batch, and
# nothing asks it to keep the identity of rare pieces. The SimCSE paper starts from BERT,
# whose geometry already knows what sentences mean; dropout then only keeps that geometry
# while the loss spreads it out. MiniLM's row shows what such a start is worth.

# %% [markdown]
# ### The embedding map
#
# Each encoder's embeddings of the pool, flattened to two dimensions by PCA (the two
# directions along which the embeddings vary most) and coloured by the play's genre.

# %%
maps = {
    name: PCA(n_components=2, random_state=seed).fit_transform(F.normalize(e, dim=1).numpy())
    for name, e in pool_embeddings.items()
}
fig = plot_embedding_maps(maps, pool_genres)

# %% [markdown]
# A single line says little about its play's genre: in none of the maps do the colours
# part much, MiniLM's included. Genre is a property of whole scenes and plots, which is
# why `sslm_lab.data.LabelledPassages` gives passages, not lines, their genre as a label.

# %% [markdown]
# ### Try it: the embedding explorer
#
# Pick one of the suggested held-out lines or type your own (press Enter), choose an
# encoder, and read the nearest lines of the pool with their plays. The widget is a view
# over `sslm_lab.lab.widgets.contrastive.nearest_lines(query, embed, lines, embeddings,
# works, k)`, which you can call yourself:

# %%
for line, work, similarity in nearest_lines(
    query, encoders["SimCSE"], pool_lines, pool_embeddings["SimCSE"], pool_works, k=3
):
    print(f"{similarity:.3f}  {work:<28} {line}")
embedding_explorer(
    {name: (encoders[name], pool_embeddings[name]) for name in encoders},
    pool_lines,
    pool_works,
    query,
    suggestions=pool_lines[:: max(1, len(pool_lines) // 30)],
)

# %% [markdown]
# ## 10 · CPC: predict what comes k steps ahead
#
# Contrastive predictive coding (van den Oord et al. 2018) turns a sequence into its own
# contrastive task. A **context network** reads the sequence up to position $t$ and sums
# it up as $c_t$; an **encoder** turns the data at each position into a code $z_t$. For
# each horizon $k$ a linear map $W_k$ predicts the code $k$ steps ahead, and InfoNCE
# asks the prediction $W_k c_t$ to pick the true $z_{t+k}$ among the codes at the other
# positions of all sequences in the batch, scored by the dot product
# $z^\top W_k c_t$. Nothing is ever reconstructed.
#
# Here the sequence is Shakespeare's characters: the context network is a small causal
# sslm_lab Transformer over characters, the code $z_t$ describes the `cpc_chunk`
# characters starting at $t$. The further ahead, the less the context determines what
# comes, and the accuracy of picking the right code should fall with $k$.


# %%
class CharacterCPC(nn.Module):
    """c_t from a causal Transformer over characters; z_t a code of the characters t..t+chunk-1."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        config = TransformerConfig(
            vocab_size=vocab_size, block_size=C.cpc_block, n_layer=2, n_head=4, n_embd=C.cpc_width
        )
        self.context = Transformer(config)
        self.chunk_embedding = nn.Embedding(vocab_size, C.cpc_width)
        self.code = nn.Linear(C.cpc_chunk * C.cpc_width, C.cpc_width)
        self.predictors = nn.ModuleList(nn.Linear(C.cpc_width, C.cpc_width) for _ in C.cpc_horizons)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (batch, cpc_block + chunk - 1) -> contexts, codes: (batch, cpc_block, width)."""
        contexts = self.context(ids[:, : C.cpc_block])  # c_t has read characters 0..t
        chunks = ids.unfold(1, C.cpc_chunk, 1)  # (batch, cpc_block, chunk): characters t..t+chunk-1
        return contexts, self.code(self.chunk_embedding(chunks).flatten(2))

    def losses(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(InfoNCE loss, accuracy) for every horizon k in cpc_horizons."""
        contexts, codes = self(ids)
        return [
            cpc_info_nce(predict(contexts), codes, k)
            for predict, k in zip(self.predictors, C.cpc_horizons, strict=True)
        ]


def cpc_objective(model: CharacterCPC, batch: torch.Tensor, step: int):
    results = model.losses(batch)
    metrics = {
        f"accuracy k={k}": accuracy.detach()
        for k, (_, accuracy) in zip(C.cpc_horizons, results, strict=True)
    }
    return torch.stack([loss for loss, _ in results]).mean(), metrics


chars = data.char_tokenizer()
window = C.cpc_block + C.cpc_chunk - 1
cpc_train = torch.tensor(chars.encode(data.lm_text("train")[:2_000_000]), device=device)
cpc_val = torch.tensor(chars.encode(data.lm_text("val")), device=device)
torch.manual_seed(seed)
cpc = CharacterCPC(chars.vocab_size)
started = time.perf_counter()
train(
    cpc,
    cpc,
    cpc_objective,
    random_windows(cpc_train, C.cpc_batch_size, window),
    C.cpc_steps,
    device=str(device),
)
cpc_seconds = time.perf_counter() - started
# Validation: evenly spaced windows, cut into batches of the training size, so each
# prediction has as many candidates as in training; the accuracies are averaged.
val_windows = evenly_spaced_windows(cpc_val, C.cpc_batch_size * C.cpc_eval_batches, window)
with torch.no_grad():
    by_batch = [
        [accuracy.item() for _, accuracy in cpc.eval().losses(batch)]
        for batch in val_windows.split(C.cpc_batch_size)
    ]  # (eval batches, horizons)
cpc_accuracy = np.mean(by_batch, axis=0).tolist()
candidates_at = [C.cpc_batch_size * (C.cpc_block - k) for k in C.cpc_horizons]
cpc_chance = [1 / n for n in candidates_at]
print(f"{C.cpc_steps} steps in {cpc_seconds:.0f} s")
for k, accuracy, n in zip(C.cpc_horizons, cpc_accuracy, candidates_at, strict=True):
    print(
        f"k = {k:>2}: the right code among {n} candidates in {accuracy:.1%} of "
        f"{len(val_windows) * (C.cpc_block - k):,} val predictions (chance {1 / n:.2%})"
    )
fig = plot_accuracy_against(
    list(C.cpc_horizons),
    cpc_accuracy,
    xlabel="steps ahead k",
    ylabel="val InfoNCE accuracy",
    title="CPC on characters: the further ahead, the harder to tell",
    reference=cpc_chance[0],
    reference_label="chance (k = 1)",
)

# %% [markdown]
# One step ahead, the context often narrows the next few characters down to a handful:
# the end of a word, the space after it. Several words ahead it knows little more than
# what kind of text this is. The task is hard even where the context is clear: a frequent
# chunk such as " the " appears at other positions of the batch with the very same code,
# and picking one of those counts as wrong. A short run on a CPU stays far from what CPC
# reaches with hours of training, but the shape, falling with k, is already there.
#
# ## 11 · Save the text encoder
#
# The fine-tuning notebook starts from it. `save_pretrained` writes the weights
# (safetensors), the config and the BPE tokenizer into this profile's run folder. The
# model is stored as a `MaskedLM`, the class `sslm_lab.pretrained` knows; SimCSE trained
# only its body, so its MLM head is still at its initial weights and the metadata says
# so. Reloaded, it must give the same sentence embeddings.

# %%
folder = run_dir("06_contrastive", P.name) / "simcse_encoder"
save_pretrained(
    text_encoder.cpu(),
    tokenizer,
    folder,
    {
        "notebook": "06_contrastive",
        "profile": P.name,
        "objective": "SimCSE (unsupervised, dropout views)",
        "trained": "transformer only; the MLM head is untrained",
        "pooling": "mean over real tokens of the final hidden states",
        "line_tokens": C.line_tokens,
        "steps": text_steps,
        "work_recall_at_10": retrieval["SimCSE"]["work"][max(C.recall_at)],
        # What the pretraining cost (two passes per line), for comparing objectives (07)
        "train_tokens": 2 * text_steps * C.simcse_batch_size * C.line_tokens,
        "train_flops": simcse.flops_per_token(C.line_tokens)
        * (text_steps * C.simcse_batch_size * C.line_tokens),
    },
)
text_encoder.to(device)
loaded, loaded_tokenizer, loaded_metadata = load_pretrained(folder, device=str(device))
reloaded_same = torch.equal(
    sentence_embeddings(loaded, pool_lines[:32]), sentence_embeddings(text_encoder, pool_lines[:32])
)
print(
    f"saved to {folder.parent.name}/{folder.name}: "
    + ", ".join(sorted(path.name for path in folder.iterdir()))
)
print(f"reloaded encoder gives identical embeddings: {reloaded_same}")
assert reloaded_same and loaded_metadata["objective"].startswith("SimCSE")

# %% [markdown]
# ## What this notebook established

# %% tags=["asserts-learning"]
wall_seconds = time.perf_counter() - notebook_started
simclr_mean, pixel_mean, supervised_mean = (mean_accuracy[m] for m in methods)
assert reloaded_same, "the saved text encoder does not reload exactly"
assert all(len(probe_table[m]) == len(C.labels_per_class) for m in methods)
if C.learns:
    assert last_loss < first_loss, "SimCLR's loss did not fall"
    assert trained_measures[1] < untrained_measures[1], "training did not spread the embeddings"
    assert simclr_mean[1] > pixel_mean[1] + C.min_gain_1_label, (
        "the probe lost to raw pixels at 1 label per class"
    )
    assert simclr_mean[5] > pixel_mean[5] + C.min_gain_5_labels, (
        "the probe lost to raw pixels at 5 labels per class"
    )
    spread = pool_uniformity["random encoder"] - pool_uniformity["SimCSE"]
    assert spread > C.min_simcse_spread, "SimCSE did not spread the lines out"
    tf_idf_recall = work_recall("TF-IDF")
    assert tf_idf_recall > work_recall("random encoder") + C.min_tf_idf_over_random, (
        "TF-IDF did not beat the random encoder: is word overlap not what the test rewards?"
    )
    assert tf_idf_recall > work_recall(lsa_name) + C.min_tf_idf_over_lsa, (
        "LSA kept as much of the word overlap as TF-IDF"
    )
    assert cpc_accuracy[0] > cpc_accuracy[-1] + C.min_cpc_drop, "CPC accuracy did not fall with k"
    assert cpc_accuracy[0] > C.min_cpc_over_chance * cpc_chance[0], "CPC: no better than chance"

# %%
machine = f"{device_description(torch.device('cpu'))}, {os.cpu_count()} cores"
temperatures_line = ", ".join(
    f"τ = {t:g}: {100 * a:.1f} % (alignment {al:.2f}, uniformity {u:.2f})"
    for t, a, al, u in temperature_study
)
negatives_line = ", ".join(f"{n} negatives {100 * a:.1f} %" for _, n, a in negatives_study)
ablation_line = ", ".join(f"{name} {100 * value:.1f} %" for name, value in ablation.items())
cpc_line = ", ".join(
    f"k = {k}: {100 * a:.1f} %" for k, a in zip(C.cpc_horizons, cpc_accuracy, strict=True)
)
closing = "\n\n".join(
    [
        f"**Closing note.** {P.name} profile, seed {seed}, on {machine}; text models on "
        f"{device_name(device)}. The whole notebook ran {wall_seconds:.0f} s.",
        f"Probe table, test accuracy (%) on {len(test_labels)} digits, mean ± std over "
        f"{C.probe_seeds} labelled draws (all labels: one):",
        probe_markdown,
        f"Temperature study ({C.study_steps} steps, {study_probe} on val): {temperatures_line}. "
        + finding,
        f"Negatives ({study_probe} on val): {negatives_line}. Augmentations left out of all "
        f"five: {ablation_line}.",
        f"Retrieval over {len(pool_lines):,} held-out lines (%):",
        retrieval_markdown,
        f"CPC, val accuracy by horizon: {cpc_line}.",
    ]
)
display(Markdown(closing))
short_names = {
    "SimCSE": "simcse",
    "random encoder": "random",
    "all-MiniLM-L6-v2": "minilm",
}
results_file = record_results(
    "06_contrastive",
    {
        "seed": seed,
        "device": device_name(device),
        "temperature": tau,
        "simclr_steps": simclr_steps,
        "simcse_steps": text_steps,
        **{f"probe_simclr_{per_class_name(k)}": simclr_mean[k] for k in C.labels_per_class},
        **{f"probe_pixels_{per_class_name(k)}": pixel_mean[k] for k in C.labels_per_class},
        **{f"supervised_{per_class_name(k)}": supervised_mean[k] for k in C.labels_per_class},
        **{f"tau_{t:g}_probe": a for t, a, _, _ in temperature_study},
        **{f"tau_{t:g}_alignment": al for t, _, al, _ in temperature_study},
        **{f"tau_{t:g}_uniformity": u for t, _, _, u in temperature_study},
        "best_tau": best_tau,
        "interior_tau_optimum": interior_optimum,
        **{f"negatives_{n}_probe": a for _, n, a in negatives_study},
        **{f"ablation_{name.replace(' ', '_')}": value for name, value in ablation.items()},
        **{
            f"{short}_{kind}_recall_at_{k}": retrieval[name][kind][k]
            for name, short in short_names.items()
            for kind, k in columns
        },
        **{f"{short}_uniformity": pool_uniformity[name] for name, short in short_names.items()},
        "simcse_work_recall_gain": simcse_gain["work"],
        **{
            f"{name.split(',')[0].lower().replace('-', '_')}_{kind}_recall_at_{k}": r[kind][k]
            for name, r in lexical_retrieval.items()
            for kind, k in columns
        },
        **{f"cpc_accuracy_k{k}": a for k, a in zip(C.cpc_horizons, cpc_accuracy, strict=True)},
        "simclr_seconds": simclr_seconds,
        "simcse_seconds": simcse_seconds,
        "wall_seconds": wall_seconds,
    },
    profile=P.name,
)
print(f"recorded in {results_file.name}; notebook ran {wall_seconds:.0f} s")
