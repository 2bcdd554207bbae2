"""Checkpoints verify before they load: sha256 and size of every file, the step, the
model's configuration, and a one-line note for checkpoints from before manifests."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from trainer_worker import TinyLM, block_sampler, clean_lm_loss, lm_trainer, losses, make_tokens

from sslm_lab.files import file_digest
from sslm_lab.heads import CausalLM
from sslm_lab.training.checkpoint import (
    MANIFEST_FILE,
    CheckpointError,
    UnverifiedCheckpointWarning,
    load_checkpoint,
    verify_checkpoint,
)
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import TransformerConfig


def data_start(weights: Path) -> int:
    """Where a safetensors file's tensor bytes begin: after the 8-byte length and the header."""
    return 8 + struct.unpack("<Q", weights.read_bytes()[:8])[0]


def patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def make_legacy(folder: Path) -> None:
    """Turn a checkpoint into one written before manifests: no manifest, no marker."""
    weights = folder / "model.safetensors"
    save_file(load_file(weights), weights)  # the stored tensors again, with no metadata
    (folder / MANIFEST_FILE).unlink()


def wide_trainer(directory: Path, steps: int, **overrides) -> Trainer:
    """TinyLM with width 64: its weights file spans several 4 KiB pages."""
    torch.manual_seed(0)
    model = TinyLM(width=64)
    config = TrainerConfig(
        max_steps=steps, device="cpu", progress=False, checkpoint_dir=directory, **overrides
    )
    return Trainer(
        model, Phase("lm", model, clean_lm_loss, lr=1e-2), block_sampler(make_tokens(), 4), config
    )


def test_every_checkpoint_carries_a_manifest_of_its_files_step_and_model(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    folder = tmp_path / "step_0000002"
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["format"] == 1 and manifest["step"] == 2 and manifest["weights_finite"]
    for name in ("model.safetensors", "state.pt"):
        size, digest = file_digest(folder / name)
        assert manifest["files"][name] == {"size": size, "sha256": digest}
    assert manifest["model"] == {"class": "TinyLM", "configs": {}}  # no dataclass config
    assert verify_checkpoint(folder) is None


def test_sixty_four_flipped_low_bits_are_refused_naming_the_checkpoint_to_use(tmp_path):
    lm_trainer(tmp_path, 8, checkpoint_every=4).fit()
    weights = tmp_path / "step_0000008" / "model.safetensors"
    start = data_start(weights)
    raw = bytearray(weights.read_bytes())
    for index in range(64):
        raw[start + 4 * index] ^= 1  # the lowest mantissa bit of 64 little-endian floats
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as caught:
        lm_trainer(tmp_path, 10, resume="latest").fit()
    message = str(caught.value)
    assert f"{weights} is corrupt: its sha256 differs" in message
    good = tmp_path / "step_0000004"
    assert f"Delete this folder ({weights.parent}) and resume from the newest" in message
    assert f"checkpoint beside it that verifies, {good}" in message
    assert f"resume with resume='{good}'" in message


def test_a_zeroed_page_in_the_weights_is_refused(tmp_path):
    wide_trainer(tmp_path, 2).fit()
    weights = tmp_path / "step_0000002" / "model.safetensors"
    assert weights.stat().st_size > 3 * 4096
    patch(weights, 2 * 4096, bytes(4096))
    with pytest.raises(CheckpointError, match=rf"{weights} is corrupt: its sha256 differs"):
        wide_trainer(tmp_path, 4, resume="latest").fit()


def test_nan_bytes_in_the_newest_checkpoint_are_refused_before_training(tmp_path):
    """Before manifests these loaded, and the run stopped at a NaN loss naming this very
    checkpoint as the good one to go back to."""
    lm_trainer(tmp_path, 8, checkpoint_every=4).fit()
    weights = tmp_path / "step_0000008" / "model.safetensors"
    patch(weights, data_start(weights), struct.pack("<4f", *[float("nan")] * 4))
    resumed = lm_trainer(tmp_path, 10, resume="latest")
    with pytest.raises(CheckpointError) as caught:
        resumed.fit()
    message = str(caught.value)
    assert "is corrupt" in message and str(tmp_path / "step_0000004") in message
    assert resumed.history == []


def test_a_damaged_tensor_name_is_reported_as_damage_not_as_a_misfit(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    weights = tmp_path / "step_0000002" / "model.safetensors"
    raw = weights.read_bytes()
    at = raw.index(b'"hidden.bias"') + len('"hidden.bi')
    patch(weights, at, b"x")  # "hidden.bixs": one byte, the same length
    with pytest.raises(CheckpointError) as caught:
        lm_trainer(tmp_path, 4, resume="latest").fit()
    assert "is corrupt" in str(caught.value)
    assert "does not fit the model" not in str(caught.value)


def test_a_state_from_another_step_is_refused(tmp_path):
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    shutil.copyfile(tmp_path / "step_0000002" / "state.pt", tmp_path / "step_0000004" / "state.pt")
    with pytest.raises(CheckpointError, match=r"step_0000004/state.pt is corrupt"):
        lm_trainer(tmp_path, 6, resume="latest").fit()


def test_a_state_from_another_step_is_refused_in_a_checkpoint_from_before_manifests(tmp_path):
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    for step in (2, 4):
        make_legacy(tmp_path / f"step_000000{step}")
    shutil.copyfile(tmp_path / "step_0000002" / "state.pt", tmp_path / "step_0000004" / "state.pt")
    expected = r"holds the training state of step 2, but \S*step_0000004 is step 4"
    with pytest.warns(UnverifiedCheckpointWarning), pytest.raises(CheckpointError, match=expected):
        lm_trainer(tmp_path, 6, resume="latest").fit()


def test_a_renamed_checkpoint_folder_is_refused(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    copy = tmp_path / "step_0000006"
    shutil.copytree(tmp_path / "step_0000002", copy)
    with pytest.raises(CheckpointError, match=r"holds the files of step 2 .* not of step 6"):
        lm_trainer(tmp_path, 8, resume=copy).fit()


def small_lm(n_head: int) -> CausalLM:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=16, block_size=16, n_layer=1, n_head=n_head, n_embd=8)
    return CausalLM(config)


def transformer_loss(model, batch, step):
    inputs, targets = batch
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()), {}


def transformer_trainer(directory: Path, n_head: int, steps: int, **overrides) -> Trainer:
    model = small_lm(n_head)
    config = TrainerConfig(
        max_steps=steps, device="cpu", progress=False, checkpoint_dir=directory, **overrides
    )
    return Trainer(
        model, Phase("lm", model, transformer_loss), block_sampler(make_tokens(), 4), config
    )


def test_the_model_configuration_is_stored_and_a_different_one_refused(tmp_path):
    """n_head=2 and n_head=4 give the same tensor shapes: only the stored configuration
    tells them apart."""
    transformer_trainer(tmp_path, n_head=2, steps=2).fit()
    manifest = json.loads((tmp_path / "step_0000002" / MANIFEST_FILE).read_text())
    stored = manifest["model"]
    assert stored["class"] == "CausalLM"
    assert stored["configs"][""]["class"] == "TransformerConfig"
    assert stored["configs"][""]["fields"]["n_head"] == 2
    assert stored["configs"]["transformer"]["fields"]["n_embd"] == 8

    with pytest.raises(CheckpointError) as caught:
        transformer_trainer(tmp_path, n_head=4, steps=4, resume="latest").fit()
    message = str(caught.value)
    assert "does not fit the model" in message
    assert (
        "n_head is 2 in the checkpoint but 4 in the model (model.config, model.transformer.config)"
        in message
    )
    assert f"stored in {tmp_path / 'step_0000002' / MANIFEST_FILE}" in message

    resumed = transformer_trainer(tmp_path, n_head=2, steps=4, resume="latest")
    resumed.fit()
    assert resumed.step == 4


def test_a_checkpoint_from_before_manifests_resumes_exactly_with_a_note(tmp_path):
    lm_trainer(tmp_path, 3).fit()
    make_legacy(tmp_path / "step_0000003")
    assert verify_checkpoint(tmp_path / "step_0000003") is None  # nothing to compare
    resumed = lm_trainer(tmp_path, 6, resume="latest")
    with pytest.warns(UnverifiedCheckpointWarning, match="cannot be verified") as notes:
        resumed.fit()
    assert len([note for note in notes if note.category is UnverifiedCheckpointWarning]) == 1
    reference = lm_trainer(None, 6)
    reference.fit()
    assert losses(resumed.history) == losses(reference.history)
    assert (tmp_path / "step_0000006" / MANIFEST_FILE).is_file()  # new ones have a manifest


def test_a_new_checkpoint_without_its_manifest_is_incomplete_not_old(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    (tmp_path / "step_0000002" / MANIFEST_FILE).unlink()
    with pytest.raises(CheckpointError, match="incomplete: manifest.json is missing"):
        lm_trainer(tmp_path, 4, resume="latest").fit()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"format": 1, "step": 2', "manifest.json is corrupt or truncated"),
        (b'{"format": 1, "step": 2, "files": {}}', "manifest.json is corrupt or truncated"),
        (b'{"format": 9}', "has format 9, newer than this sslm_lab reads"),
    ],
)
def test_a_damaged_or_newer_manifest_is_refused(tmp_path, content, expected):
    lm_trainer(tmp_path, 2).fit()
    (tmp_path / "step_0000002" / MANIFEST_FILE).write_bytes(content)
    with pytest.raises(CheckpointError, match=expected):
        lm_trainer(tmp_path, 4, resume="latest").fit()


def test_weights_saved_non_finite_are_refused(tmp_path):
    trainer = lm_trainer(tmp_path, 2)
    trainer.fit()
    with torch.no_grad():
        trainer.model.hidden.weight[0, 0] = float("inf")
    trainer.save_checkpoint()  # writes step 2 again, the folder `latest` names
    assert "NaN or infinite weights" in verify_checkpoint(tmp_path / "step_0000002")
    with pytest.raises(CheckpointError, match="holds NaN or infinite weights"):
        load_checkpoint(tmp_path / "step_0000002", TinyLM())
