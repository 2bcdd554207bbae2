"""Tests for sslm_lab.lab.recipes: one pretrained encoder per objective, reused or trained."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sslm_lab.checks import ArgumentError
from sslm_lab.heads import MaskedLM
from sslm_lab.lab import recipes
from sslm_lab.lab.recipes import EncoderRecipe, pretrained_encoder
from sslm_lab.lab.results import RUNS_ENV_VAR, run_dir
from sslm_lab.pretrained import save_pretrained
from sslm_lab.transformer import Transformer

TINY = EncoderRecipe(
    vocab_size=300, n_layer=2, n_head=2, n_embd=16, intermediate_size=32, block_size=16,
    steps=3, batch_size=4, lr=1e-3,
)  # fmt: skip


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV_VAR, str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.mark.parametrize("objective", ["mlm", "clm", "simcse", "electra", "vae"])
def test_each_objective_trains_an_encoder_of_the_recipes_shape(objective) -> None:
    random = pretrained_encoder("random", TINY)
    encoder = pretrained_encoder(objective, TINY)
    body = encoder.body
    assert isinstance(body, Transformer) and not body.training
    assert recipes.matches(body.config, TINY, causal=objective == "clm") == []
    assert encoder.source == "trained here (no profile given)"
    assert encoder.steps == 3
    tokens = 3 * 4 * 16 * (2 if objective == "simcse" else 1)
    assert encoder.train_tokens == tokens
    # at least the body's 6 N per token, at most a few times it (ELECTRA, the VAE: two nets)
    six_n = 6 * body.num_parameters(exclude_embeddings=True) * tokens
    assert six_n < encoder.train_flops < 4 * six_n + 6 * 300 * 16 * tokens
    # what a run will cost is known before it runs, from the recipe alone
    assert encoder.train_flops == pytest.approx(3 * recipes.flops_per_step(objective, TINY))
    moved = [
        name
        for name, weight in body.state_dict().items()
        if not torch.equal(weight, random.body.state_dict()[name])
    ]
    assert moved, "pretraining changed nothing"
    ids = torch.randint(5, 300, (2, 16))
    assert body(ids).shape == (2, 16, 16)


def test_random_init_costs_nothing_and_is_seeded() -> None:
    first, second = pretrained_encoder("random", TINY), pretrained_encoder("random", TINY)
    assert first.train_flops == 0 and first.source == "random init"
    for name, weight in first.body.state_dict().items():
        assert torch.equal(weight, second.body.state_dict()[name])
    other = pretrained_encoder("random", replace(TINY, seed=1))
    assert not torch.equal(other.body.token_embedding.weight, first.body.token_embedding.weight)


def saved_mlm(recipe: EncoderRecipe, metadata: dict) -> MaskedLM:
    torch.manual_seed(5)
    model = MaskedLM(recipe.config())
    from sslm_lab import data

    save_pretrained(
        model, data.bpe_tokenizer(300), run_dir("02_masked_lm", "smoke") / "encoder", metadata
    )
    return model


def test_a_matching_checkpoint_with_its_flops_is_reused() -> None:
    model = saved_mlm(TINY, {"steps": 60, "train_tokens": 1000, "train_flops": 1.5e9})
    encoder = pretrained_encoder("mlm", TINY, profile="smoke")
    assert encoder.source == "checkpoint 02_masked_lm/smoke/encoder"  # no machine's paths
    assert (encoder.steps, encoder.train_tokens, encoder.train_flops) == (60, 1000, 1.5e9)
    for name, weight in model.transformer.state_dict().items():
        assert torch.equal(weight, encoder.body.state_dict()[name]), name
    again = pretrained_encoder("mlm", TINY, profile="smoke", reuse=False)
    assert again.source == "trained here (reuse=False)"
    missing = pretrained_encoder("simcse", TINY, profile="smoke")
    assert "no checkpoint at" in missing.source and "06_contrastive" in missing.source


@pytest.mark.parametrize(
    ("saved", "metadata", "reason"),
    [
        (replace(TINY, n_embd=32, intermediate_size=64), {"train_flops": 1.0}, "another shape"),
        (replace(TINY, block_size=8), {"train_flops": 1.0}, "block_size 8 < 16"),
        (TINY, {"steps": 60}, "does not record its train_flops"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_trained_again_and_says_why(
    saved, metadata, reason
) -> None:
    saved_mlm(saved, metadata)
    encoder = pretrained_encoder("mlm", TINY, profile="smoke")
    assert encoder.source.startswith("trained here (") and reason in encoder.source


def test_steps_for_flops_matches_one_objectives_compute_to_anothers() -> None:
    electra = recipes.flops_per_step("electra", TINY) * 200
    steps = recipes.steps_for_flops("mlm", electra, TINY)
    per_step = recipes.flops_per_step("mlm", TINY)
    assert steps > 200, "ELECTRA also trains a generator: MLM gets more steps for its FLOPs"
    assert abs(steps * per_step - electra) <= per_step / 2  # the closest whole step
    assert recipes.steps_for_flops("mlm", per_step / 10, TINY) == 1  # never 0 steps
    # FLOPs grow with the batch: the same budget buys half the steps at twice the batch
    doubled = replace(TINY, batch_size=2 * TINY.batch_size)
    assert recipes.steps_for_flops("mlm", 1000 * per_step, doubled) == 500
    with pytest.raises(ValueError, match="flops=0"):
        recipes.steps_for_flops("mlm", 0, TINY)
    with pytest.raises(ValueError, match="'random', which costs nothing"):
        recipes.steps_for_flops("random", electra, TINY)
    with pytest.raises(ValueError, match="objective='bert'"):
        recipes.flops_per_step("bert", TINY)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="objective='bert'"):
        pretrained_encoder("bert", TINY)
    with pytest.raises(ValueError, match="profile='lapto'"):
        pretrained_encoder("mlm", TINY, profile="lapto")  # not silently trained instead
    with pytest.raises(ValueError, match="EncoderRecipe.batch_size=1"):
        replace(TINY, batch_size=1)
    with pytest.raises(ValueError, match="EncoderRecipe.dropout"):
        replace(TINY, dropout=1.0)


def test_describe_lists_every_encoder() -> None:
    table = recipes.describe([pretrained_encoder("random", TINY), pretrained_encoder("mlm", TINY)])
    assert table.count("\n") == 4 and "| random | random init | 0 | 0 | 0.00e+00 |" in table


def test_each_network_counts_its_own_flops_with_the_head_where_it_runs() -> None:
    from sslm_lab.electra import Electra

    model = MaskedLM(TINY.config())
    every_position = model.flops_per_token(16, head_share=1.0)
    body_only = model.transformer.flops_per_token(16)
    assert model.flops_per_token(16, head_share=0.0) == pytest.approx(body_only)
    # the tied projection, the dense layer, the biases and the norm, at 15 % of the positions
    output = 6 * (300 * 16 + 16 * 16 + 300 + 2 * 16 + 16) * 0.15
    assert model.flops_per_token(16) == pytest.approx(body_only + output, rel=0.01)
    assert body_only < model.flops_per_token(16) < every_position
    generator = replace(TINY, n_layer=1).config()
    electra = Electra(generator, TINY.config())
    both = electra.generator.flops_per_token(16) + electra.discriminator.flops_per_token(16)
    assert electra.flops_per_token(16) == pytest.approx(both)
    assert electra.flops_per_token(16) < (
        electra.generator.flops_per_token(16, head_share=1.0)
        + electra.discriminator.flops_per_token(16)
    )
    # what the trainer's MFU reads and what the equal-compute race counts are one number
    network = recipes.PRETRAINING["electra"].network(TINY, 0)
    assert recipes.flops_per_step("electra", TINY) == pytest.approx(
        network.flops_per_token(16) * TINY.batch_size * 16
    )


# ---------------------------------------------------------------------------- bad input


class StandIn:
    """What `pretrain` reads of a tokenizer: its vocabulary size and special ids."""

    vocab_size = 300
    special_ids = {"[PAD]": 0, "[MASK]": 1, "[CLS]": 2}
    pad_id, mask_id, cls_id = 0, 1, 2


LINES = ((5, 6, 7), (8, 9))


@pytest.mark.parametrize(
    ("name", "text", "lines", "message"),
    [
        ("x", torch.rand(50), LINES, r"Corpus.text.dtype=torch.float32"),
        ("x", torch.ones(50, dtype=torch.bool), LINES, r"Corpus.text.dtype=torch.bool"),
        ("x", torch.arange(50).numpy(), LINES, r"type\(Corpus.text\)=<class 'numpy.ndarray'>"),
        ("x", torch.ones(2, 2, 2, dtype=torch.long), LINES, r"Corpus.text.shape=\(2, 2, 2\)"),
        ("x", torch.ones(0, dtype=torch.long), LINES, r"Corpus.text.shape=\(0,\)"),
        ("x", torch.arange(50), [[5, 6]], r"type\(Corpus.lines\)=<class 'list'>.*tuple\(tuple"),
        ("x", torch.arange(50), (), r"Corpus.lines=\(\)"),
        ("x", torch.arange(50), ((5, 6), ()), r"Corpus.lines\[1\]=\(\)"),
        ("x", torch.arange(50), ((5, 6), [7]), r"Corpus.lines\[1\]=\[7\]"),
        (3, torch.arange(50), LINES, r"Corpus.name=3 \(int\)"),
    ],
)
def test_a_corpus_is_token_ids_in_its_two_forms(name, text, lines, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        recipes.Corpus(name, text, lines)


@pytest.mark.parametrize(
    ("objective", "text", "lines", "message"),
    [
        ("mlm", torch.full((50,), 300), LINES, r"corpus.text\[0\]=300 \(int\).*\[0, 300\)"),
        ("clm", torch.arange(5, 55).index_fill(0, torch.tensor([7]), -1), LINES, r"text\[7\]=-1"),
        (
            "electra",
            torch.full((4, 8), 5).index_fill(1, torch.tensor([3]), 301),
            LINES,
            r"\[0, 3\]",
        ),
        ("simcse", torch.arange(50), ((5, 6), (7, 999)), r"corpus.lines\[1\]\[1\]=999 \(int\)"),
        ("vae", torch.arange(50), ((5, 6.0),), r"corpus.lines\[0\]\[1\]=6.0 \(float\)"),
        ("vae", torch.arange(50), ((5, -2),), r"corpus.lines\[0\]\[1\]=-2"),
        ("mlm", torch.full((4, 20), 5), LINES, r"corpus.text.shape=\(4, 20\).*block_size=16"),
        ("electra", torch.full((10,), 5), LINES, r"corpus.text.shape=\(10,\).*one window"),
    ],
)
def test_pretrain_checks_the_corpus_ids_where_they_enter(objective, text, lines, message) -> None:
    corpus = recipes.Corpus("bad ids", text, lines)
    with pytest.raises(ArgumentError, match=message):
        recipes.pretrain(objective, TINY, corpus, StandIn())


def test_pretrain_refuses_what_is_not_a_recipe_a_corpus_or_a_tokenizer() -> None:
    corpus = recipes.Corpus("fine", torch.arange(5, 55), LINES)
    with pytest.raises(ArgumentError, match=r"type\(recipe\)=<class 'NoneType'>"):
        recipes.pretrain("mlm", None, corpus, StandIn())
    with pytest.raises(ArgumentError, match=r"type\(corpus\)=<class 'tuple'>"):
        recipes.pretrain("mlm", TINY, (corpus.text, corpus.lines), StandIn())
    with pytest.raises(ArgumentError, match=r"type\(tokenizer\)=<class 'NoneType'>.*mask_id"):
        recipes.pretrain("mlm", TINY, corpus, None)
    with pytest.raises(ArgumentError, match=r"tokenizer.vocab_size=300 \(int\).*2048, the recipe"):
        recipes.pretrain("mlm", replace(TINY, vocab_size=2048), corpus, StandIn())
    with pytest.raises(ArgumentError, match=r"device=3 \(int\)"):
        recipes.pretrain("mlm", TINY, corpus, StandIn(), device=3)
    with pytest.raises(ArgumentError, match="objective='random'"):
        recipes.pretrain("random", TINY, corpus, StandIn())


def test_a_text_of_exactly_one_window_trains() -> None:
    text = torch.arange(5, 5 + TINY.block_size)  # the windows end at the last token
    corpus = recipes.Corpus("one window", text, LINES)
    encoder = recipes.pretrain("clm", replace(TINY, steps=1, batch_size=2), corpus, StandIn())
    assert encoder.steps == 1 and encoder.train_tokens == 2 * TINY.block_size


def test_the_entry_points_name_their_bad_arguments() -> None:
    with pytest.raises(ArgumentError, match=r"reuse='no' \(str\).*True or False"):
        pretrained_encoder("random", TINY, reuse="no")
    with pytest.raises(ArgumentError, match=r"type\(recipe\)=<class 'dict'>"):
        pretrained_encoder("random", {"vocab_size": 300})
    with pytest.raises(ArgumentError, match=r"device='tpu'"):
        pretrained_encoder("random", TINY, device="tpu")
    with pytest.raises(ArgumentError, match=r"type\(recipe\)=<class 'dict'>"):
        recipes.flops_per_step("mlm", {"vocab_size": 300})
    with pytest.raises(ArgumentError, match=r"type\(encoders\)=<class 'NoneType'>"):
        recipes.describe(None)
    with pytest.raises(ArgumentError, match=r"type\(encoders\[0\]\)=<class 'int'>"):
        recipes.describe([1])
    with pytest.raises(ArgumentError, match=r"EncoderRecipe.n_head=3.*divisor of n_embd=16"):
        replace(TINY, n_head=3)
