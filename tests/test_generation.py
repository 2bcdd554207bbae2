"""sslm_lab.generation: greedy decoding equals `transformers` generate for GPT-2; sampling
filters equal `transformers`' logits warpers; the KV cache changes no token."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from sslm_lab.checks import ArgumentError
from sslm_lab.data import CharTokenizer
from sslm_lab.generation import (
    entropy_bits,
    generate,
    generate_text,
    greedy,
    sample,
    sampling,
    top_k_filter,
    top_p_filter,
)
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.interop import gpt2_to_sslm
from sslm_lab.transformer import KVCache, TransformerConfig

SIZES = {
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 16, "vocab_size": 50, "n_positions": 32},
    "small": {"n_layer": 3, "n_head": 4, "n_embd": 64, "vocab_size": 97, "n_positions": 48},
}


def random_gpt2(size: str) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    # A wider init than GPT-2's 0.02 spreads the logits, so greedy output varies and
    # no near-tie can flip an argmax between two equally correct implementations.
    config = GPT2Config(**SIZES[size], initializer_range=0.3, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def hf_greedy(gpt2: GPT2LMHeadModel, prompts: torch.Tensor, new: int, eos: int | None, pad: int):
    return gpt2.generate(
        prompts,
        attention_mask=torch.ones_like(prompts),
        max_new_tokens=new,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def test_greedy_picks_the_argmax() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert greedy(logits).tolist() == [1, 0]


@pytest.mark.parametrize("size", list(SIZES))
def test_greedy_generation_equals_transformers_generate(size: str) -> None:
    gpt2 = random_gpt2(size)
    ours = gpt2_to_sslm(gpt2)
    prompts = torch.randint(1, SIZES[size]["vocab_size"], (3, 5))
    expected = hf_greedy(gpt2, prompts, new=16, eos=None, pad=0)
    got = generate(ours, prompts, max_new_tokens=16)
    print(f"\n[generation] GPT-2 {size}: {got.shape[1] - 5} new tokens, row 0: {got[0].tolist()}")
    assert torch.equal(got, expected)


def test_eos_stops_rows_and_pads_like_transformers() -> None:
    gpt2 = random_gpt2("tiny")
    ours = gpt2_to_sslm(gpt2)
    prompts = torch.randint(1, 50, (3, 5))
    free_run = generate(ours, prompts, max_new_tokens=12)
    eos = int(free_run[0, 5 + 3])  # a token row 0 really emits, so its row ends early
    expected = hf_greedy(gpt2, prompts, new=12, eos=eos, pad=1)
    got = generate(ours, prompts, max_new_tokens=12, eos_token_id=eos, pad_token_id=1)
    assert torch.equal(got, expected)
    assert (got[0, 5 + 4 :] == 1).all()


def test_generation_runs_past_the_context_and_restores_training_mode() -> None:
    model = CausalLM(TransformerConfig(vocab_size=20, block_size=8, n_layer=1, n_embd=16))
    model.train()
    out = generate(model, torch.zeros(2, 6, dtype=torch.long), max_new_tokens=10)
    assert out.shape == (2, 16)
    assert model.training


def test_bad_generation_input_is_refused() -> None:
    encoder = MaskedLM(TransformerConfig(causal=False, norm_position="post"))
    with pytest.raises(ValueError, match=r"causal \(decoder\) model.*causal=False"):
        generate(encoder, torch.zeros(1, 3, dtype=torch.long), max_new_tokens=2)
    decoder = CausalLM(TransformerConfig(n_layer=1))
    with pytest.raises(ValueError, match=r"shape \(batch, seq\).*got shape \(3,\)"):
        generate(decoder, torch.zeros(3, dtype=torch.long), max_new_tokens=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(decoder, torch.zeros(1, 3, dtype=torch.long), max_new_tokens=-1)


# ---------------------------------------------------------------------------- filters


def kept(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


def test_top_k_keeps_the_k_largest_and_ties() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, -2.0, 4.0]])
    assert kept(top_k_filter(logits, 1)) == [1]
    assert kept(top_k_filter(logits, 3)) == [1, 2, 4]
    assert kept(top_k_filter(logits, 50)) == [0, 1, 2, 3, 4]  # k above the vocabulary: all
    assert kept(top_k_filter(torch.tensor([[2.0, 1.0, 2.0]]), 1)) == [0, 2]
    assert top_k_filter(logits, 3)[0, 1] == 5.0, "kept logits are unchanged"


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p() -> None:
    # Probabilities 0.5, 0.25, 0.125, 0.125 in a shuffled vocabulary order.
    probabilities = torch.tensor([[0.125, 0.5, 0.125, 0.25]])
    logits = probabilities.log()
    assert kept(top_p_filter(logits, 0.3)) == [1]  # 0.5 >= 0.3 already
    assert kept(top_p_filter(logits, 0.6)) == [1, 3]  # 0.5 < 0.6 <= 0.75
    assert kept(top_p_filter(logits, 0.8)) in ([0, 1, 3], [1, 2, 3])  # a tie: either 0.125
    assert kept(top_p_filter(logits, 0.9)) == [0, 1, 2, 3]
    assert kept(top_p_filter(logits, 1.0)) == [0, 1, 2, 3]
    filtered = top_p_filter(logits, 0.6)
    assert_close(filtered.softmax(-1), torch.tensor([[0.0, 2 / 3, 0.0, 1 / 3]]))


def test_filters_equal_transformers_warpers() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(16, 100, generator=generator)
    ids = torch.zeros(16, 1, dtype=torch.long)
    for k in (1, 5, 40):
        assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(k)(ids, logits))
    for p in (0.1, 0.5, 0.9, 0.99):
        ours = torch.isfinite(top_p_filter(logits, p))
        theirs = torch.isfinite(TopPLogitsWarper(p)(ids, logits))
        assert torch.equal(ours, theirs), p
    assert_close(logits / 0.7, TemperatureLogitsWarper(0.7)(ids, logits))


def test_sampling_follows_the_filtered_distribution() -> None:
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().expand(20000, 4)
    generator = torch.Generator().manual_seed(0)
    draws = sampling(top_p=0.7, generator=generator)(logits)
    frequency = torch.bincount(draws, minlength=4) / len(draws)
    # top_p=0.7 keeps 0.5 and 0.3, renormalised to 0.625 and 0.375.
    assert_close(frequency, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.015, rtol=0)
    cold = sampling(temperature=0.05, generator=generator)(logits[:1000])
    assert (cold == 0).all(), "a temperature near 0 is greedy"
    assert torch.equal(sampling(top_k=1)(logits[:5]), greedy(logits[:5]))
    hot = sampling(temperature=100.0, generator=generator)(logits)
    assert_close(torch.bincount(hot) / len(hot), torch.full((4,), 0.25), atol=0.015, rtol=0)


def test_sample_draws_on_the_generator_device() -> None:
    logits = torch.randn(3, 10)
    first = sample(logits, torch.Generator().manual_seed(5))
    again = sample(logits, torch.Generator().manual_seed(5))
    assert torch.equal(first, again)


def test_entropy_bits() -> None:
    assert_close(entropy_bits(torch.zeros(4)), torch.tensor(2.0))
    assert_close(entropy_bits(torch.tensor([0.0, 0.0, -math.inf])), torch.tensor(1.0))
    assert entropy_bits(torch.tensor([100.0, 0.0])) < 1e-6


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 0}, r"temperature=0 \(int\) is not allowed; allowed: a finite number > 0"),
        ({"temperature": -1.5}, r"temperature=-1.5 \(float\) is not allowed"),
        ({"temperature": float("nan")}, r"temperature=nan \(float\) is not allowed"),
        (
            {"top_p": 0.0},
            r"top_p=0.0 \(float\) is not allowed; allowed: a finite number in \(0, 1\]",
        ),
        ({"top_p": 1.5}, r"top_p=1.5 \(float\) is not allowed"),
        ({"top_k": 0}, r"top_k=0 \(int\) is not allowed; allowed: an integer >= 1"),
        ({"top_k": 2.5}, r"top_k=2.5 \(float\) is not allowed"),
    ],
)
def test_bad_sampling_settings_name_the_value_and_what_is_allowed(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        sampling(**settings)
    model = CausalLM(TransformerConfig(vocab_size=10, n_layer=1, n_embd=8, n_head=2))
    with pytest.raises(ValueError, match=message):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, **settings)


def test_strategy_and_sampling_settings_together_are_refused() -> None:
    model = CausalLM(TransformerConfig(vocab_size=10, n_layer=1, n_embd=8, n_head=2))
    with pytest.raises(ValueError, match="either strategy= or the sampling settings.*top_k"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, greedy, top_k=3)


# ---------------------------------------------------------------------------- KV cache


@pytest.mark.parametrize("path", ["fast", "explicit"])
def test_cached_logits_equal_the_full_forward(path: str) -> None:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=30, block_size=16, n_layer=2, n_embd=32, n_head=4)
    config.attention_path = path
    model = CausalLM(config).eval()
    ids = torch.randint(0, 30, (2, 12))
    cache = KVCache(config.n_layer)
    # Any split works: a prompt of 5, one token, three at once, then one at a time.
    pieces = [ids[:, :5], ids[:, 5:6], ids[:, 6:9], *ids[:, 9:].split(1, dim=1)]
    with torch.no_grad():
        cached = torch.cat([model(piece, cache=cache) for piece in pieces], dim=1)
        assert_close(cached, model(ids))
    assert cache.length == 12
    assert cache.layers[0].key.shape == (2, 4, 12, 8)  # (batch, heads, cached, head_dim)


def test_cache_refuses_what_it_cannot_hold() -> None:
    model = CausalLM(TransformerConfig(vocab_size=30, block_size=8, n_layer=2, n_embd=16))
    cache = KVCache(2)
    model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="holds 6 positions and 3 new tokens.*block_size=8"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="KVCache has 3 layers but the model has n_layer=2"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=KVCache(3))
    encoder = MaskedLM(TransformerConfig(causal=False, norm_position="post", n_layer=1))
    with pytest.raises(ValueError, match="needs a causal model"):
        encoder.transformer(torch.zeros(1, 2, dtype=torch.long), cache=KVCache(1))


@pytest.mark.parametrize(
    "settings",
    [{}, {"temperature": 1.0}, {"temperature": 0.8, "top_k": 10}, {"top_p": 0.9}],
    ids=["greedy", "sample", "top_k", "top_p"],
)
def test_cached_and_uncached_generation_give_the_same_tokens(settings: dict) -> None:
    ours = gpt2_to_sslm(random_gpt2("tiny"))  # block_size 32
    prompts = torch.randint(1, SIZES["tiny"]["vocab_size"], (3, 6))
    outputs = []
    for use_cache in (True, False):
        generator = torch.Generator().manual_seed(7) if settings else None
        outputs.append(
            # 6 + 40 tokens: 27 steps inside the context, then 13 with a sliding window
            generate(ours, prompts, 40, generator=generator, use_cache=use_cache, **settings)
        )
    assert outputs[0].shape == (3, 46)
    assert torch.equal(outputs[0], outputs[1])


def test_seeded_sampling_is_reproducible() -> None:
    ours = gpt2_to_sslm(random_gpt2("tiny"))
    prompts = torch.randint(1, 50, (2, 4))

    def draw(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return generate(ours, prompts, 20, temperature=1.5, generator=generator)

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_generate_without_cache_needs_no_causal_lm() -> None:
    class Wrapped(torch.nn.Module):  # a decoder whose forward takes no cache=
        def __init__(self) -> None:
            super().__init__()
            self.inner = CausalLM(TransformerConfig(vocab_size=12, n_layer=1, n_embd=8, n_head=2))
            self.config = self.inner.config

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.inner(ids)

    model = Wrapped()
    prompt = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="use_cache=True needs an sslm_lab CausalLM"):
        generate(model, prompt, 4)
    assert torch.equal(
        generate(model, prompt, 4, use_cache=False), generate(model.inner, prompt, 4)
    )


# ---------------------------------------------------------------------------- text in, text out

TEXT = "To be, or not to be, that is the question."


@pytest.fixture(scope="module")
def char_model() -> tuple[CausalLM, CharTokenizer]:
    tokenizer = CharTokenizer.from_text(TEXT)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_embd=16)
    return CausalLM(config).eval(), tokenizer


def test_generate_text_returns_the_continuation(char_model) -> None:
    model, tokenizer = char_model
    greedy_text = generate_text(model, tokenizer, "To be", 20)
    assert len(greedy_text) == 20
    assert greedy_text == generate_text(model, tokenizer, "To be", 20, use_cache=False)
    first = generate_text(model, tokenizer, "To be", 20, temperature=2.0, seed=1)
    assert first == generate_text(model, tokenizer, "To be", 20, temperature=2.0, seed=1)
    assert first != generate_text(model, tokenizer, "To be", 20, temperature=2.0, seed=2)
    hot = generate_text(model, tokenizer, "To be", 200, temperature=5.0, seed=0)
    assert len(hot) == 200 and "[" not in hot, "special tokens are never generated"


def test_a_prompt_the_tokenizer_cannot_encode_names_the_character(char_model) -> None:
    model, tokenizer = char_model
    with pytest.raises(ValueError, match=r"prompt 'To bé' cannot be encoded: character 'é'"):
        generate_text(model, tokenizer, "To bé", 5)
    with pytest.raises(ValueError, match=r"prompt=.* allowed: a non-empty string"):
        generate_text(model, tokenizer, "", 5)
    with pytest.raises(ValueError, match=r"top_p=2 \(int\) is not allowed"):
        generate_text(model, tokenizer, "To", 5, top_p=2)


@settings(max_examples=80, deadline=None)
@given(
    temperature=st.floats(0.05, 5.0),
    top_k=st.one_of(st.none(), st.integers(1, 12)),
    top_p=st.one_of(st.none(), st.floats(0.01, 1.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_sampled_token_always_survives_the_filters(temperature, top_k, top_p, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(16, 12, generator=generator) * 3  # (batch, vocab)
    tokens = sampling(temperature, top_k, top_p, generator)(logits)
    assert tokens.shape == (16,) and bool(((tokens >= 0) & (tokens < 12)).all())
    scaled = logits / temperature
    for row, token in enumerate(tokens.tolist()):
        if top_k is not None:  # among the k largest logits (ties included)
            assert scaled[row, token] >= scaled[row].topk(min(top_k, 12)).values[-1]
        if top_p is not None:  # the tokens more likely than it hold less than top_p
            kept = scaled[row] if top_k is None else top_k_filter(scaled[row : row + 1], top_k)[0]
            probabilities = kept.softmax(-1)
            assert float(probabilities[probabilities > probabilities[token]].sum()) < top_p + 1e-6


@settings(max_examples=60, deadline=None)
@given(
    temperature=st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.just(True)),
    top_k=st.one_of(st.integers(max_value=0), st.floats(1.5, 3.5)),
    top_p=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0001, max_value=1e9)),
)
def test_bad_sampling_settings_are_refused_by_name(temperature, top_k, top_p) -> None:
    for settings_given, name in (
        ({"temperature": temperature}, "temperature"),
        ({"top_k": top_k}, "top_k"),
        ({"top_p": top_p}, "top_p"),
    ):
        with pytest.raises(ValueError, match=rf"^{name}="):
            sampling(**settings_given)


# ---------------------------------------------------------------------------- bad input to generate

PROMPT = torch.zeros(2, 3, dtype=torch.long)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"input_ids": PROMPT + 20}, r"max\(input_ids\)=20 \(int\) .*\[0, 19\]"),
        ({"input_ids": PROMPT - 1}, r"min\(input_ids\)=-1 "),
        ({"input_ids": PROMPT + 20, "use_cache": False}, r"max\(input_ids\)=20 "),
        ({"input_ids": [[1, 2]]}, r"type\(input_ids\)=<class 'list'>"),
        ({"input_ids": PROMPT.numpy()}, r"type\(input_ids\)=<class 'numpy.ndarray'>"),
        ({"input_ids": PROMPT.bool()}, r"integer tensor .*dtype torch.bool"),
        ({"input_ids": PROMPT[:0]}, r"batch, seq >= 1; got shape \(0, 3\)"),
        ({"eos_token_id": 20}, r"eos_token_id=20 \(int\) .*\[0, 19\]"),
        ({"eos_token_id": -1}, r"eos_token_id=-1 "),
        ({"eos_token_id": True}, r"eos_token_id=True \(bool\)"),
        ({"eos_token_id": 1.5}, r"eos_token_id=1.5 "),
        ({"eos_token_id": 3, "pad_token_id": 20}, r"pad_token_id=20 "),
        ({"eos_token_id": 3, "pad_token_id": "x"}, r"pad_token_id='x' "),
        ({"pad_token_id": 0}, r"pad_token_id=0 .*without an eos_token_id"),
        ({"generator": 0}, r"type\(generator\)=<class 'int'>"),
        ({"generator": 0, "temperature": 1.0}, r"type\(generator\)=<class 'int'>"),
        ({"use_cache": "no"}, r"use_cache='no' \(str\)"),
        ({"strategy": "greedy"}, r"strategy='greedy' \(str\)"),
        ({"input_ids": PROMPT.to("meta")}, r"input_ids.device='meta' .*the model's, cpu"),
    ],
)
def test_bad_generate_input_is_refused_before_the_loop(settings, message) -> None:
    model = CausalLM(TransformerConfig(vocab_size=20, block_size=8, n_layer=1, n_embd=16))
    arguments = {"input_ids": PROMPT, "max_new_tokens": 2} | settings
    with pytest.raises(ArgumentError, match=message):
        generate(model, **arguments)
