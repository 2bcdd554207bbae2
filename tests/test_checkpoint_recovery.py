"""Recovery messages are safe to follow: they name the newest checkpoint that verifies,
never the one that failed, and never advise deleting more than one checkpoint's folder."""

from __future__ import annotations

import pytest
from trainer_worker import TinyLM, block_sampler, clean_lm_loss, lm_trainer, make_tokens

from sslm_lab.training.checkpoint import CheckpointError
from sslm_lab.training.trainer import NonFiniteLossError, Phase, Trainer, TrainerConfig


def refusal(directory, **overrides) -> str:
    with pytest.raises(CheckpointError) as caught:
        lm_trainer(directory, 10, **overrides).fit()
    return str(caught.value)


def test_a_nonfinite_loss_names_the_newest_checkpoint_that_verifies(tmp_path):
    """The last checkpoint written is damaged before the loss turns NaN: the message
    names the one before it, with the path to resume from, since `latest` names the other."""

    def damage_step_6(trainer, row):
        if trainer.step == 7:
            weights = tmp_path / "step_0000006" / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\xc0\x7f")

    def nan_at_step_8(model, batch, step):
        loss, metrics = clean_lm_loss(model, batch, step)
        return (loss * float("nan") if step == 7 else loss), metrics

    model = TinyLM()
    config = TrainerConfig(
        max_steps=10,
        device="cpu",
        progress=False,
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        callbacks=[damage_step_6],
    )
    trainer = Trainer(
        model, Phase("lm", model, nan_at_step_8), block_sampler(make_tokens(), 4), config
    )
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert trainer.last_checkpoint == tmp_path / "step_0000006"
    good = tmp_path / "step_0000004"
    assert f"the last good checkpoint is {good}, the newest that verifies" in message
    assert f"(resume with resume='{good}')" in message
    assert "step_0000006" not in message


def test_a_nonfinite_loss_with_no_verifying_checkpoint_says_so(tmp_path):
    def damage_step_2(trainer, row):
        if trainer.step == 3:
            (tmp_path / "step_0000002" / "state.pt").write_bytes(b"damaged")

    def nan_at_step_4(model, batch, step):
        loss, metrics = clean_lm_loss(model, batch, step)
        return (loss * float("nan") if step == 3 else loss), metrics

    model = TinyLM()
    config = TrainerConfig(
        max_steps=6,
        device="cpu",
        progress=False,
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        callbacks=[damage_step_2],
    )
    trainer = Trainer(
        model, Phase("lm", model, nan_at_step_4), block_sampler(make_tokens(), 4), config
    )
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert f"no checkpoint in {tmp_path} verifies, so none is safe to resume from" in message
    assert "last good" not in message


def test_an_empty_latest_is_reported_as_empty(tmp_path):
    """Before, it resolved to the checkpoint directory itself, and the message advised
    deleting that folder, which holds every checkpoint."""
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    (tmp_path / "latest").write_text("")
    message = refusal(tmp_path, resume="latest")
    assert f"{tmp_path / 'latest'} is empty, so it names no checkpoint" in message
    assert f"The newest checkpoint that verifies is {tmp_path / 'step_0000004'}" in message
    assert "Delete" not in message and "incomplete" not in message


@pytest.mark.parametrize("garbage", [b"\x00\xff\xfe", b"../../elsewhere", b"step_0000004/.."])
def test_a_garbage_latest_is_reported_as_such(tmp_path, garbage):
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    (tmp_path / "latest").write_bytes(garbage)
    message = refusal(tmp_path, resume="latest")
    assert "does not hold a checkpoint folder's name" in message
    assert f"resume with resume='{tmp_path / 'step_0000004'}'" in message
    assert "Delete" not in message


def test_a_dangling_latest_names_the_newest_checkpoint_that_verifies(tmp_path):
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    (tmp_path / "latest").write_text("step_0000099\n")
    message = refusal(tmp_path, resume="latest")
    assert "points to 'step_0000099', which does not exist" in message
    assert f"resume with resume='{tmp_path / 'step_0000004'}'" in message


def test_the_checkpoint_directory_as_resume_is_refused_without_advice_to_delete_it(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    message = refusal(tmp_path, resume=tmp_path)
    assert "is not a checkpoint folder but a folder of checkpoints" in message
    assert "resume='latest'" in message and "Delete" not in message


def test_an_incomplete_folder_of_another_name_is_never_called_deletable(tmp_path):
    lm_trainer(tmp_path / "run", 2).fit()
    best = tmp_path / "best"
    (tmp_path / "run" / "step_0000002").rename(best)
    (best / "state.pt").unlink()
    message = refusal(tmp_path / "run", resume=best)
    assert "incomplete: state.pt is missing" in message
    assert "is not a folder the trainer names" in message and "Delete" not in message


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing"])
def test_a_damaged_checkpoint_names_only_its_own_folder_for_deletion(tmp_path, damage):
    lm_trainer(tmp_path, 6, checkpoint_every=2).fit()
    folder = tmp_path / "step_0000006"
    state = folder / "state.pt"
    if damage == "truncate":
        state.write_bytes(state.read_bytes()[:100])
    elif damage == "flip":
        raw = state.read_bytes()
        state.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0x01]))
    else:
        state.unlink()
    message = refusal(tmp_path, resume="latest")
    assert message.startswith((str(folder), f"checkpoint {folder}"))
    assert message.count("Delete") == 1 and f"Delete this folder ({folder}) and resume" in message
    assert f"resume with resume='{tmp_path / 'step_0000004'}'" in message


def test_with_no_other_good_checkpoint_the_advice_is_to_start_afresh(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    (tmp_path / "step_0000002" / "state.pt").write_bytes(b"not a state")
    message = refusal(tmp_path, resume="latest")
    assert "no other checkpoint beside it verifies, so start without resume" in message


def test_a_copy_hidden_by_an_older_killed_swap_is_pointed_out_and_kept(tmp_path):
    """sslm_lab before manifests, killed between the two renames of a re-save, left
    `latest` naming a missing folder and the good copy hidden in `.step_N-old-*`."""
    lm_trainer(tmp_path, 4, checkpoint_every=2).fit()
    hidden = tmp_path / ".step_0000004-old-0a1b2c3d"
    hidden.mkdir()
    (tmp_path / "step_0000004").rename(hidden / "step_0000004")
    message = refusal(tmp_path, resume="latest")
    assert "points to 'step_0000004', which does not exist" in message
    assert f"A complete copy of step_0000004 was left at {hidden / 'step_0000004'}" in message
    assert f"move it back to {tmp_path / 'step_0000004'}" in message
    lm_trainer(tmp_path, 2, resume=tmp_path / "step_0000002").fit()  # a resume cleans up...
    assert hidden.is_dir()  # ...but not the only copy of what `latest` names...
    (hidden / "step_0000004").rename(tmp_path / "step_0000004")  # ...so the advice works
    resumed = lm_trainer(tmp_path, 4, resume="latest")
    resumed.fit()
    assert resumed.last_checkpoint == tmp_path / "step_0000004" and resumed.step == 4
