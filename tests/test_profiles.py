import pytest

from sslm_lab import profiles


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
