"""sslm_lab.generation: greedy decoding equals `transformers` generate for GPT-2."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from sslm_lab.generation import generate, greedy
from sslm_lab.interop import gpt2_to_sslm
from sslm_lab.transformer import CausalLM, MaskedLM, TransformerConfig

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
