"""sslm_lab.files: atomic writes, the staged-folder swap, and the weights check."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_model
from torch import nn

from sslm_lab.files import atomic_write_text, staged_folder, weight_mismatches


def test_atomic_write_leaves_no_temporary_files_and_keeps_newlines(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "text.txt", "a\r\nb\n")
    atomic_write_text(path, "line one\nline two\r\n")
    assert path.read_bytes() == b"line one\nline two\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["text.txt"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path: Path) -> None:
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with staged_folder(final) as staging:
        (staging / "new.txt").write_text("new")
        assert not (final / "new.txt").exists()  # nothing visible until the block ends
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left


def test_a_failed_staged_folder_leaves_the_old_one_untouched(tmp_path: Path) -> None:
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), staged_folder(final) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_weight_mismatches_names_shapes_and_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_model(nn.Linear(3, 2), str(path))
    assert weight_mismatches(path, nn.Linear(3, 2)) == []
    problems = weight_mismatches(path, nn.Linear(4, 2, bias=False))
    assert problems == [
        "weight has shape (2, 3) in the checkpoint but (2, 4) in the model",
        "bias is in the checkpoint but not in the model",
    ]
