"""Checkpoints, exact resume (also after SIGKILL), corrupt checkpoints, and torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch.utils.data import DataLoader, TensorDataset
from trainer_worker import TinyLM, block_sampler, clean_lm_loss, lm_trainer, losses, make_tokens

from sslm_lab.training.checkpoint import CheckpointError, latest_checkpoint, list_checkpoints
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig

WORKER = Path(__file__).with_name("trainer_worker.py")
REPO = Path(__file__).resolve().parents[1]


def test_checkpoint_folders_latest_pointer_and_keep_last_n(tmp_path):
    trainer = lm_trainer(tmp_path, 10, checkpoint_every=3, keep_last_n=2)
    trainer.fit()
    # steps 3, 6, 9 and the final 10; only the newest two are kept
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000009", "step_0000010"]
    assert (tmp_path / "latest").read_text().strip() == "step_0000010"
    assert latest_checkpoint(tmp_path) == trainer.last_checkpoint == tmp_path / "step_0000010"
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # half-written folders
    assert leftovers == []

    folder = tmp_path / "step_0000010"
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        names = set(handle.keys())
    assert ("embedding.weight" in names) != ("head.weight" in names)  # the tied weight, once
    state = torch.load(folder / "state.pt", weights_only=True)  # no pickled code inside
    assert state["step"] == 10 and len(state["history"]) == 10
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"}
    assert set(state["phases"]["lm"]) == {"optimizer", "scheduler", "scaler", "updates"}


def test_exact_resume_after_sigkill(tmp_path):
    """N steps in one go == k steps, SIGKILL, resume, train to N: identical at every step."""
    killed = subprocess.run(
        [
            sys.executable,
            str(WORKER),
            "kill",
            "--dir",
            str(tmp_path),
            "--steps",
            "12",
            "--every",
            "4",
            "--kill-at",
            "6",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The process died in step 6, after the step-4 checkpoint and before any other.
    assert latest_checkpoint(tmp_path).name == "step_0000004"

    resumed = lm_trainer(tmp_path, 12, checkpoint_every=4, resume="latest")
    assert resumed.fit() and resumed.step == 12
    reference = lm_trainer(None, 12)
    reference.fit()
    assert losses(resumed.history) == losses(reference.history)  # exactly, not approximately
    for a, b in zip(resumed.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_exact_resume_with_a_shuffling_dataloader_across_epochs(tmp_path, precision):
    windows = make_tokens(400).unfold(0, 17, 17)  # (23, 17) non-overlapping windows
    loader = DataLoader(TensorDataset(windows[:, :-1], windows[:, 1:]), batch_size=5, shuffle=True)

    def run(steps: int, directory: Path | None = None, **overrides) -> Trainer:
        torch.manual_seed(0)
        model = TinyLM()
        config = TrainerConfig(
            max_steps=steps,
            device="cpu",
            progress=False,
            checkpoint_dir=directory,
            precision=precision,
            **overrides,
        )
        trainer = Trainer(model, Phase("lm", model, clean_lm_loss, lr=1e-2), loader, config)
        trainer.fit()
        return trainer

    def stop_at_7(trainer, row):
        if trainer.step == 7:
            trainer.stop_reason = "interrupted"  # the final checkpoint is still written

    reference = run(13)  # 5 batches per epoch: crosses two epoch boundaries
    run(13, tmp_path, callbacks=[stop_at_7])
    assert latest_checkpoint(tmp_path).name == "step_0000007"
    resumed = run(13, tmp_path, resume="latest")
    assert resumed.stream.epoch == reference.stream.epoch == 2
    assert losses(resumed.history) == losses(reference.history)


def test_resume_latest_with_no_checkpoint_yet_starts_at_step_zero(tmp_path):
    trainer = lm_trainer(tmp_path / "new", 2, resume="latest")
    trainer.fit()
    assert trainer.history[0]["step"] == 1


def test_a_checkpoint_whose_shapes_do_not_fit_fails_before_any_step(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    calls = []

    def counting_loss(model, batch, step):
        calls.append(step)
        return clean_lm_loss(model, batch, step)

    wider = TinyLM(width=12)
    config = TrainerConfig(device="cpu", progress=False, checkpoint_dir=tmp_path, resume="latest")
    trainer = Trainer(
        wider, Phase("lm", wider, counting_loss), block_sampler(make_tokens(), 4), config
    )
    with pytest.raises(CheckpointError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "does not fit the model" in message and "step_0000002" in message
    shapes = "embedding.weight has shape (16, 8) in the checkpoint but (16, 12) in the model"
    assert shapes in message
    assert calls == []


@pytest.mark.parametrize("damaged", ["model.safetensors", "state.pt"])
def test_a_truncated_checkpoint_is_reported_not_ignored(tmp_path, damaged):
    lm_trainer(tmp_path, 2).fit()
    path = tmp_path / "step_0000002" / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{path}.* is corrupt or truncated"):
        lm_trainer(tmp_path, 4, resume="latest").fit()


def test_missing_files_and_dangling_pointers_are_reported(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    (tmp_path / "step_0000002" / "state.pt").unlink()
    with pytest.raises(CheckpointError, match="incomplete: state.pt is missing"):
        lm_trainer(tmp_path, 4, resume="latest").fit()
    (tmp_path / "latest").write_text("step_0000099\n")
    with pytest.raises(CheckpointError, match="points to 'step_0000099', which does not exist"):
        lm_trainer(tmp_path, 4, resume="latest").fit()
    with pytest.raises(CheckpointError, match="is not a checkpoint folder"):
        lm_trainer(tmp_path, 4, resume=tmp_path / "nowhere").fit()


def test_resuming_with_different_phases_is_refused(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    model = TinyLM()
    config = TrainerConfig(device="cpu", progress=False, checkpoint_dir=tmp_path, resume="latest")
    trainer = Trainer(model, Phase("other", model, clean_lm_loss), [], config)
    with pytest.raises(CheckpointError, match=r"holds phases \['lm'\], but this trainer has"):
        trainer.fit()


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    out = tmp_path / "losses.json"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(WORKER),
            "ddp",
            "--dir",
            str(tmp_path / "run"),
            "--steps",
            "8",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["world_size"] == 2
    single = lm_trainer(None, 8, batch_size=8, dropout=0.0, noisy=False)
    torch.testing.assert_close(record["losses"], losses(single.fit()), rtol=1e-4, atol=1e-5)
    seen = [json.loads(Path(f"{out}.rank{rank}.json").read_text()) for rank in (0, 1)]
    # Each rank trained on its own half of every global batch (not the whole batch twice).
    assert all(step["rows"] == 4 for rank in seen for step in rank["batches"])
    pairs = zip(seen[0]["batches"], seen[1]["batches"], strict=True)
    assert all(a["first_window"] != b["first_window"] for a, b in pairs)
    # Every rank received rank 0's evaluation numbers, so early stopping cannot diverge.
    assert seen[0]["val_rank"] == seen[1]["val_rank"] == [0.0, 0.0]
    # A GAN, two DDP-wrapped phases with different noise per rank, keeps its replicas equal.
    assert seen[0]["gan_checksums"] == seen[1]["gan_checksums"]
    # rank 0 alone wrote the final checkpoint, and it loads into a single-process run
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_0000008"]
    assert len(torch.load(tmp_path / "run" / "step_0000008" / "state.pt")["rng"]) == 2


def test_an_incomplete_checkpoint_says_what_to_delete(tmp_path):
    lm_trainer(tmp_path, 2).fit()
    (tmp_path / "step_0000002" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model.safetensors is missing\. Delete this folder"):
        lm_trainer(tmp_path, 4, resume="latest").fit()
