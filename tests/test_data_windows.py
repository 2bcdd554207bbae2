"""sslm_lab.data.windows: random training windows and fixed evaluation windows."""

from __future__ import annotations

import pytest
import torch

from sslm_lab.data.windows import evenly_spaced_windows, random_windows


def test_random_windows_are_consecutive_ids_and_repeat_under_a_seed() -> None:
    ids = torch.arange(100)
    batch_fn = random_windows(ids, batch_size=8, length=5)
    batch = batch_fn(0, torch.Generator().manual_seed(3))
    assert batch.shape == (8, 5)
    assert torch.equal(batch[:, 1:] - batch[:, :-1], torch.ones(8, 4, dtype=torch.long))
    assert torch.equal(batch, batch_fn(0, torch.Generator().manual_seed(3)))


def test_random_windows_reach_both_ends_of_the_text() -> None:
    ids = torch.arange(10)
    batch = random_windows(ids, batch_size=500, length=4)(0, torch.Generator().manual_seed(0))
    assert int(batch[:, 0].min()) == 0 and int(batch[:, -1].max()) == 9


def test_evenly_spaced_windows_start_at_the_first_and_end_at_the_last_id() -> None:
    windows = evenly_spaced_windows(torch.arange(50), count=5, length=10)
    assert windows.shape == (5, 10)
    assert windows[0, 0] == 0 and windows[-1, -1] == 49
    assert torch.equal(windows, evenly_spaced_windows(torch.arange(50), count=5, length=10))


@pytest.mark.parametrize(
    "make", [lambda ids: random_windows(ids, 2, 11), lambda ids: evenly_spaced_windows(ids, 2, 11)]
)
def test_windows_longer_than_the_text_are_refused(make) -> None:
    with pytest.raises(
        ValueError, match=r"length=11 \(int\) is not allowed; allowed: an integer in \[1, 10\]"
    ):
        make(torch.arange(10))
