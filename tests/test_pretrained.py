"""sslm_lab.pretrained: a saved model loads back with identical logits and its tokenizer."""

from __future__ import annotations

import json

import pytest
import torch

from sslm_lab.data import CharTokenizer, bpe_tokenizer
from sslm_lab.files import CheckpointError
from sslm_lab.heads import CausalLM, MaskedLM, SequenceClassifier
from sslm_lab.pretrained import load_pretrained, save_pretrained
from sslm_lab.transformer import TransformerConfig

TEXT = "Now is the winter of our discontent"


def test_save_then_load_gives_identical_logits_and_tokenizer(tmp_path) -> None:
    tokenizer = CharTokenizer.from_text(TEXT)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, block_size=40, n_layer=2, n_embd=16)
    model = CausalLM(config).eval()
    folder = save_pretrained(model, tokenizer, tmp_path / "decoder", {"val_bpc": 2.5})
    loaded, loaded_tokenizer, metadata = load_pretrained(folder)
    ids = torch.tensor([tokenizer.encode(TEXT)])
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    assert loaded.head.weight is loaded.transformer.token_embedding.weight, "tie kept"
    assert loaded.config == model.config and not loaded.training
    assert loaded_tokenizer.encode(TEXT) == tokenizer.encode(TEXT)
    assert metadata == {"val_bpc": 2.5}
    description = json.loads((folder / "config.json").read_text())
    assert (description["model"], description["tokenizer"]) == ("CausalLM", "char")


def test_bpe_encoder_round_trip_and_overwrite(tmp_path) -> None:
    tokenizer = bpe_tokenizer(512)
    torch.manual_seed(1)
    config = TransformerConfig(
        vocab_size=tokenizer.vocab_size, causal=False, norm_position="post", n_layer=1, n_embd=16
    )
    model = MaskedLM(config).eval()
    folder = tmp_path / "encoder"
    save_pretrained(CausalLM(TransformerConfig(vocab_size=600, n_layer=1)), tokenizer, folder)
    save_pretrained(model, tokenizer, folder)  # replaces the first one as a whole
    loaded, loaded_tokenizer, metadata = load_pretrained(folder)
    ids = torch.tensor([tokenizer.encode(TEXT)])
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    assert type(loaded) is MaskedLM and metadata == {}
    assert loaded_tokenizer.encode(TEXT) == tokenizer.encode(TEXT)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder"], "no staging folders left"


def test_refusals(tmp_path) -> None:
    tokenizer = CharTokenizer.from_text(TEXT)
    small = CausalLM(TransformerConfig(vocab_size=5, n_layer=1))
    with pytest.raises(ValueError, match="tokenizer has 20 ids but the model only vocab_size=5"):
        save_pretrained(small, tokenizer, tmp_path / "x")
    classifier = SequenceClassifier(TransformerConfig(causal=False, n_layer=1), num_labels=2)
    with pytest.raises(ValueError, match="can save CausalLM, MaskedLM; got SequenceClassifier"):
        save_pretrained(classifier, tokenizer, tmp_path / "x")
    with pytest.raises(CheckpointError, match="not a saved model: config.json, model.safe"):
        load_pretrained(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("config.json", r"config.json cannot be read as a saved model's description"),
        ("model.safetensors", r"model.safetensors is corrupt or truncated"),
        ("tokenizer.json", r"tokenizer.json cannot be read"),
    ],
)
def test_a_damaged_saved_model_says_what_to_delete_and_rerun(tmp_path, damage, message) -> None:
    tokenizer = CharTokenizer.from_text(TEXT)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, block_size=40, n_layer=1, n_embd=16)
    folder = save_pretrained(CausalLM(config), tokenizer, tmp_path / "decoder")
    path = folder / damage
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated mid-write
    with pytest.raises(CheckpointError, match=message) as caught:
        load_pretrained(folder)
    assert "delete the folder and rerun the notebook that saved it" in str(caught.value)
