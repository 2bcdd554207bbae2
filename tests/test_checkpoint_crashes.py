"""Old or new after a kill at any disk operation of a save, the re-save included; what
killed saves leave behind is removed; folders and files follow the umask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_worker import lm_trainer

from sslm_lab.training.checkpoint import latest_checkpoint, list_checkpoints, verify_checkpoint

WORKER = Path(__file__).with_name("trainer_worker.py")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kill_report(tmp_path_factory) -> dict:
    """The worker's report: for each disk operation of two saves, a copy of the run killed
    right before it (about 60 kills in forked processes, a few seconds in all)."""
    root = tmp_path_factory.mktemp("kills")
    out = root / "report.json"
    finished = subprocess.run(
        [sys.executable, str(WORKER), "faults", "--dir", str(root), "--steps", "0"]
        + ["--out", str(out)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("scenario", ["new", "resave"])
def test_a_kill_at_any_disk_operation_of_a_save_leaves_latest_complete(kill_report, scenario):
    """ "new": step 8 is written beside step 4, which is then pruned. "resave": a run resumed
    from step 4 writes step 8 again while `latest` names the old step 8 (before, a kill
    between the two renames of the swap left `latest` naming a folder that did not exist)."""
    report = kill_report[scenario]
    operations = {operation for operation, _ in report["operations"]}
    assert {"fsync", "rename", "unlink", "rmdir", "write", "mkdir"} <= operations
    if scenario == "resave":
        assert "link" in operations
    trials = report["trials"]
    assert len(trials) == len(report["operations"]) >= 20
    for trial in trials:
        assert trial["killed"], trial
        assert trial["problem"] is None, trial  # `latest` names a folder that verifies
        assert trial["holds"] in ("old", "new"), trial
        assert trial["listed_verify"], trial  # every listed checkpoint is whole
        assert trial["after_resume"] == ["latest", "step_0000009"], trial  # nothing left over
    holds = [trial["holds"] for trial in trials]
    switch = holds.index("new")
    assert holds == ["old"] * switch + ["new"] * (len(holds) - switch)  # never back to old
    # `latest` moves on with its own rename, and not before the new folder is complete
    assert report["operations"][switch - 1][1] == "latest"


def make_leftovers(directory: Path) -> list[str]:
    """What killed saves and prunings of an older sslm_lab left: every kind of it."""
    staging = directory / ".step_0000004-1a2b3c4d"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half a file")
    (directory / ".latest-0badcafe.tmp").write_text("step_0000004")
    pruned = directory / ".step_0000001-pruned-00c0ffee" / "step_0000001"
    pruned.mkdir(parents=True)
    (pruned / "state.pt").write_bytes(b"what rmtree had not reached")
    swapped = directory / ".step_0000002-old-deadbeef"
    swapped.mkdir()
    half_pruned = directory / "step_0000001"  # shutil.rmtree stopped halfway, before
    half_pruned.mkdir()
    (half_pruned / "model.safetensors").write_bytes(b"orphan")
    return sorted(p.name for p in directory.iterdir())


def test_leftovers_are_never_listed_and_are_removed_at_the_next_resume(tmp_path, capsys):
    lm_trainer(tmp_path, 2).fit()
    assert make_leftovers(tmp_path)[0].startswith(".")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000002"]

    resumed = lm_trainer(tmp_path, 2, resume="latest", progress=True)
    resumed.fit()
    printed = capsys.readouterr().out
    assert "removed what interrupted saves left behind: .latest-0badcafe.tmp" in printed
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == []
    # The incomplete step_0000001 is no leftover by its name; pruning removes it.
    lm_trainer(tmp_path, 4, resume="latest", keep_last_n=2).fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_0000002", "step_0000004"]


def test_leftovers_are_removed_at_the_next_save_and_keep_last_n_counts_checkpoints(tmp_path):
    make_leftovers(tmp_path)
    lm_trainer(tmp_path, 6, checkpoint_every=2, keep_last_n=2).fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_0000004", "step_0000006"]


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    """A run resumed from an earlier step: the later folders of the abandoned run sort after
    the new ones, and pruning by name alone deleted the new folder that `latest` named."""
    lm_trainer(tmp_path, 8, checkpoint_every=2, keep_last_n=None).fit()
    lm_trainer(
        tmp_path, 4, checkpoint_every=2, keep_last_n=1, resume=tmp_path / "step_0000002"
    ).fit()
    assert latest_checkpoint(tmp_path) == tmp_path / "step_0000004"
    assert verify_checkpoint(tmp_path / "step_0000004") is None
    # step 2 is pruned; steps 6 and 8 wait until this line of training writes them again
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_0000004", "step_0000006", "step_0000008"]


def test_resaving_the_step_latest_names_keeps_it_whole_and_leaves_nothing(tmp_path):
    lm_trainer(tmp_path, 8, checkpoint_every=4, keep_last_n=None).fit()
    before = (tmp_path / "step_0000008" / "state.pt").read_bytes()
    resumed = lm_trainer(
        tmp_path, 8, dropout=0.0, keep_last_n=None, resume=tmp_path / "step_0000004"
    )
    resumed.fit()
    assert latest_checkpoint(tmp_path) == resumed.last_checkpoint == tmp_path / "step_0000008"
    assert verify_checkpoint(tmp_path / "step_0000008") is None
    assert (tmp_path / "step_0000008" / "state.pt").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_0000004", "step_0000008"]


def test_folders_and_files_follow_the_umask(tmp_path):
    """Before, checkpoint folders kept the temporary folder's 0700 (and `latest` was 0644
    whatever the umask)."""
    previous = os.umask(0o027)
    try:
        lm_trainer(tmp_path / "run", 2).fit()
    finally:
        os.umask(previous)
    directory = tmp_path / "run"
    folder = directory / "step_0000002"
    assert folder.stat().st_mode & 0o777 == 0o750
    for path in [*folder.iterdir(), directory / "latest"]:
        assert path.stat().st_mode & 0o777 == 0o640, path


def test_a_resave_without_hard_links_copies_instead(tmp_path, monkeypatch):
    """Some filesystems (FAT, some network mounts) have no hard links."""
    trainer = lm_trainer(tmp_path, 2)
    trainer.fit()

    def no_links(source, target):
        raise PermissionError("hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    trainer.save_checkpoint()  # step 2 again, the folder `latest` names
    assert verify_checkpoint(tmp_path / "step_0000002") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_0000002"]
