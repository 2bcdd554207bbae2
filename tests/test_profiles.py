import importlib.util
import sys
from pathlib import Path

import pytest

from sslm_lab.lab import profiles


def test_three_profiles_exist_in_order_of_size() -> None:
    assert profiles.PROFILE_NAMES == ("smoke", "laptop", "gpu")
    sizes = [profiles.get_profile(name).tour.bpe_vocab_size for name in profiles.PROFILE_NAMES]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_default_comes_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("SSLM_PROFILE", "gpu")
    assert profiles.get_profile().name == "gpu"
    assert profiles.get_profile(None).name == "gpu"
    assert profiles.get_profile("laptop").name == "laptop"  # an explicit name wins
    monkeypatch.delenv("SSLM_PROFILE")
    assert profiles.get_profile().name == "laptop"


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"profile='huge'.*smoke, laptop, gpu"):
        profiles.get_profile("huge")


def test_unknown_profile_from_environment_says_so(monkeypatch) -> None:
    monkeypatch.setenv("SSLM_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"profile='fast'.*came from \$SSLM_PROFILE"):
        profiles.get_profile()


def test_profiles_are_frozen() -> None:
    profile = profiles.get_profile("smoke")
    with pytest.raises(AttributeError):
        profile.tour.bpe_vocab_size = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", profiles.PROFILE_NAMES)
def test_every_model_size_splits_into_whole_heads(name) -> None:
    profile = profiles.get_profile(name)
    for section in (profile.causal_lm, profile.masked_lm):
        assert section.n_embd % section.n_head == 0, (name, section)
        assert section.precision in ("fp32", "bf16", "fp16", "auto")


def test_gpu_notebook_run_is_the_benchmarked_baby_gpt(monkeypatch) -> None:
    # 03_autoregressive_lm at the gpu profile and `bench_baby_gpt.py --preset gpu` must
    # train the same model the same way, or the notebook's headline number and the
    # benchmark's would be about different runs.
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_baby_gpt.py"
    spec = importlib.util.spec_from_file_location("bench_baby_gpt", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_baby_gpt", bench)  # dataclasses look it up
    spec.loader.exec_module(bench)
    preset, sizes = bench.PRESETS["gpu"], profiles.get_profile("gpu").causal_lm
    shared = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "dropout", "lr")
    shared += ("min_lr", "beta2", "warmup_steps", "weight_decay", "precision", "max_steps")
    assert {key: getattr(sizes, key) for key in shared} == {
        key: getattr(preset, key) for key in shared
    }
