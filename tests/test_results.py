import json

import numpy as np
import pytest
import torch

from sslm_lab.lab.results import read_results, record_results, run_dir


def test_record_merges_notebooks_and_converts_scalars(tmp_path) -> None:
    record_results(
        "00_tour", {"bpc": np.float64(2.5), "works": 42}, profile="smoke", directory=tmp_path
    )
    path = record_results(
        "01_x", {"loss": torch.tensor(1.25)}, profile="laptop", directory=tmp_path
    )
    records = json.loads(path.read_text())
    assert records["00_tour"]["metrics"] == {"bpc": 2.5, "works": 42}
    assert records["01_x"]["metrics"]["loss"] == 1.25
    assert records["01_x"]["profile"] == "laptop"
    assert read_results(tmp_path) == records
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "a temporary file was left"


def test_rerun_replaces_only_its_own_record(tmp_path) -> None:
    record_results("a", {"x": 1}, profile="smoke", directory=tmp_path)
    record_results("b", {"x": 2}, profile="smoke", directory=tmp_path)
    record_results("a", {"x": 3}, profile="smoke", directory=tmp_path)
    records = read_results(tmp_path)
    assert records["a"]["metrics"] == {"x": 3} and records["b"]["metrics"] == {"x": 2}


def test_environment_variable_chooses_the_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SSLM_RESULTS_DIR", str(tmp_path))
    assert record_results("a", {"x": 1}, profile="smoke") == tmp_path / "results.json"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (float("nan"), ValueError, "must be finite"),
        ([1, 2], TypeError, "allowed are numbers"),
    ],
)
def test_bad_metric_is_refused_and_keeps_earlier_records(tmp_path, value, error, message) -> None:
    record_results("a", {"x": 1}, profile="smoke", directory=tmp_path)
    with pytest.raises(error, match=message):
        record_results("b", {"bad": value}, profile="smoke", directory=tmp_path)
    assert read_results(tmp_path)["a"]["metrics"] == {"x": 1}


def test_missing_results_file_says_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="has the notebook run to the end"):
        read_results(tmp_path)


def test_run_dir_is_per_notebook_and_profile(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SSLM_RUNS_DIR", str(tmp_path))
    smoke = run_dir("02_masked_lm", "smoke")
    laptop = run_dir("02_masked_lm", "laptop")
    assert smoke == tmp_path / "02_masked_lm" / "smoke" and smoke.is_dir()
    assert smoke != laptop
