"""Each contrastive loss against a direct loop over pairs; known values; the queue; the EMA."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from sslm_lab.checks import ArgumentError
from sslm_lab.contrastive import (
    KeyQueue,
    SimCSE,
    alignment,
    contrastive_logits,
    cpc_info_nce,
    info_nce,
    momentum_update,
    nt_xent,
    simcse_objective,
    symmetric_info_nce,
    uniformity,
)
from sslm_lab.heads import MaskedLM
from sslm_lab.transformer import TransformerConfig


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def loop_info_nce(queries, keys, temperature, negatives=()) -> float:
    """-log softmax of the positive, one query at a time, one candidate at a time."""
    total = 0.0
    for i, query in enumerate(queries):
        candidates = [*keys, *negatives]
        scores = [math.exp(cosine(query, c) / temperature) for c in candidates]
        total += -math.log(scores[i] / sum(scores))
    return total / len(queries)


def loop_nt_xent(first, second, temperature) -> float:
    views = [*first, *second]
    n = len(first)
    total = 0.0
    for i, anchor in enumerate(views):
        partner = (i + n) % (2 * n)
        scores = {
            j: math.exp(cosine(anchor, other) / temperature)
            for j, other in enumerate(views)
            if j != i
        }
        total += -math.log(scores[partner] / sum(scores.values()))
    return total / (2 * n)


@pytest.fixture
def views() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    second = first + 0.5 * torch.randn(6, 5, generator=generator, dtype=torch.float64)
    queue = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    return first, second, queue


def test_info_nce_matches_the_loop_with_and_without_a_queue(views) -> None:
    first, second, queue = views
    for temperature in (0.07, 0.5, 2.0):
        expected = loop_info_nce(first, second, temperature)
        assert math.isclose(info_nce(first, second, temperature).item(), expected, rel_tol=1e-9)
        expected = loop_info_nce(first, second, temperature, queue)
        found = info_nce(first, second, temperature, negatives=queue).item()
        assert math.isclose(found, expected, rel_tol=1e-9)


def test_logits_put_the_positives_on_the_diagonal(views) -> None:
    first, second, queue = views
    logits = contrastive_logits(first, second, 0.5, queue)
    assert logits.shape == (6, 6 + 4)
    assert_close(logits[2, 2], torch.tensor(cosine(first[2], second[2]) / 0.5, dtype=logits.dtype))
    assert_close(logits[1, 7], torch.tensor(cosine(first[1], queue[1]) / 0.5, dtype=logits.dtype))


def test_symmetric_info_nce_averages_both_directions(views) -> None:
    first, second, _ = views
    expected = (loop_info_nce(first, second, 0.2) + loop_info_nce(second, first, 0.2)) / 2
    assert math.isclose(symmetric_info_nce(first, second, 0.2).item(), expected, rel_tol=1e-9)


def test_nt_xent_matches_the_loop(views) -> None:
    first, second, _ = views
    for temperature in (0.1, 0.5, 1.0):
        expected = loop_nt_xent(first, second, temperature)
        assert math.isclose(nt_xent(first, second, temperature).item(), expected, rel_tol=1e-9)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_perfectly_aligned_with_orthogonal_negatives_has_the_known_loss(temperature) -> None:
    # Query i equals key i (cosine 1) and is orthogonal to every other candidate (cosine
    # 0): the loss is -log(e^{1/τ} / (e^{1/τ} + N)) = log(1 + N e^{-1/τ}), N negatives.
    batch, extra = 5, 3
    basis = torch.eye(batch + extra, dtype=torch.float64)
    queries = basis[:batch]
    negatives = basis[batch:]
    close = {"rel": 1e-6, "abs": 1e-12}  # at τ = 0.05 the loss is 8e-9, 20 - (20 - 8e-9)
    known = math.log(1 + (batch - 1) * math.exp(-1 / temperature))
    assert info_nce(queries, queries.clone(), temperature).item() == pytest.approx(known, **close)
    known = math.log(1 + (batch - 1 + extra) * math.exp(-1 / temperature))
    found = info_nce(queries, queries, temperature, negatives).item()
    assert found == pytest.approx(known, **close)
    known = math.log(1 + (2 * batch - 2) * math.exp(-1 / temperature))  # both views negative
    assert nt_xent(queries, queries, temperature).item() == pytest.approx(known, **close)
    assert alignment(queries, queries).item() == 0.0


def test_alignment_and_uniformity_match_the_loops(views) -> None:
    first, second, _ = views
    unit = [row / row.norm() for row in first]
    partners = [row / row.norm() for row in second]
    for alpha in (1.0, 2.0):
        expected = sum(float((a - b).norm() ** alpha) for a, b in zip(unit, partners, strict=True))
        assert math.isclose(alignment(first, second, alpha).item(), expected / len(unit))
    for t in (1.0, 2.0):
        pairs = [(i, j) for i in range(len(unit)) for j in range(i + 1, len(unit))]
        mean = sum(math.exp(-t * float((unit[i] - unit[j]).norm() ** 2)) for i, j in pairs)
        assert math.isclose(uniformity(first, t).item(), math.log(mean / len(pairs)))


def test_uniformity_is_zero_for_a_collapse_and_lowest_for_antipodes() -> None:
    collapsed = torch.ones(4, 3)
    assert uniformity(collapsed).item() == pytest.approx(0.0, abs=1e-6)
    antipodes = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(antipodes).item() == pytest.approx(-8.0)  # distance² 4, t = 2


def test_gradient_pulls_positives_together() -> None:
    generator = torch.Generator().manual_seed(1)
    first = torch.randn(8, 4, generator=generator, requires_grad=True)
    second = torch.randn(8, 4, generator=generator)
    before = alignment(first, second).item()
    optimizer = torch.optim.SGD([first], lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        nt_xent(first, second, 0.5).backward()
        optimizer.step()
    assert alignment(first, second).item() < before


def test_queue_is_first_in_first_out() -> None:
    queue = KeyQueue(size=5, dim=2)
    assert queue.keys.shape == (0, 2)
    rows = torch.arange(16, dtype=torch.float32).reshape(8, 2)  # key i is (2i, 2i + 1)
    queue.enqueue(rows[:3])
    assert torch.equal(queue.keys, rows[:3])  # not yet full: everything, oldest first
    queue.enqueue(rows[3:7])
    assert torch.equal(queue.keys, rows[2:7])  # full: key 0 and 1 dropped out first
    queue.enqueue(rows[7:])
    assert torch.equal(queue.keys, rows[3:8])
    queue.enqueue(torch.arange(14, dtype=torch.float32).reshape(7, 2) + 100)
    assert torch.equal(queue.keys, torch.arange(4, 14, dtype=torch.float32).reshape(5, 2) + 100)
    assert "buffer" in queue.state_dict()  # a checkpoint keeps the keys


def test_queue_of_size_zero_holds_nothing_and_stops_gradients() -> None:
    empty = KeyQueue(size=0, dim=3)
    empty.enqueue(torch.ones(4, 3))
    assert empty.keys.shape == (0, 3)
    queue = KeyQueue(size=4, dim=3)
    keys = torch.ones(2, 3, requires_grad=True)
    queue.enqueue(keys * 2)
    assert not queue.keys.requires_grad


def test_momentum_update_is_an_exponential_moving_average() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(1.0)
        online[1].running_mean.fill_(7.0)
    before = {name: p.clone() for name, p in target.named_parameters()}
    momentum_update(online, target, 0.9)
    for name, parameter in target.named_parameters():
        expected = 0.9 * before[name] + 0.1 * dict(online.named_parameters())[name]
        assert_close(parameter, expected)
    assert torch.equal(target[1].running_mean, online[1].running_mean)
    momentum_update(online, target, 0.0)  # momentum 0 copies
    for (_, a), (_, b) in zip(online.named_parameters(), target.named_parameters(), strict=True):
        assert torch.equal(a, b)


def loop_cpc(predictions, latents, k) -> tuple[float, float]:
    batch, seq, _ = latents.shape
    candidates = [(b, s) for b in range(batch) for s in range(k, seq)]
    total, right = 0.0, 0
    for b in range(batch):
        for t in range(seq - k):
            scores = {c: float(predictions[b, t] @ latents[c]) for c in candidates}
            normaliser = sum(math.exp(score) for score in scores.values())
            total += -math.log(math.exp(scores[(b, t + k)]) / normaliser)
            right += max(scores, key=scores.get) == (b, t + k)
    count = batch * (seq - k)
    return total / count, right / count


def test_cpc_matches_the_loop_over_positions_and_sequences() -> None:
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    predictions = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    predictions[:, :-2] += 2 * latents[:, 2:]  # make horizon 2 partly predictable
    for k in (1, 2, 5):
        loss, accuracy = cpc_info_nce(predictions, latents, k)
        expected_loss, expected_accuracy = loop_cpc(predictions, latents, k)
        assert math.isclose(loss.item(), expected_loss, rel_tol=1e-9)
        assert accuracy.item() == pytest.approx(expected_accuracy)
    assert cpc_info_nce(predictions, latents, 2)[1] > cpc_info_nce(predictions, latents, 1)[1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, b: info_nce(a, b, temperature=0), r"temperature=0 .*> 0"),
        (lambda a, b: info_nce(a, b, temperature=-0.1), r"temperature=-0.1 .*> 0"),
        (lambda a, b: nt_xent(a, b, temperature=0.0), r"temperature=0.0 .*> 0"),
        (lambda a, b: symmetric_info_nce(a, b, 0), r"temperature=0 "),
        (lambda a, b: info_nce(a[:1], b[:1]), r"batch size=1 .*>= 2"),
        (lambda a, b: nt_xent(a[:1], b[:1]), r"batch size=1 .*>= 2"),
        (lambda a, b: info_nce(a, b[:3]), r"queries.shape, keys.shape=\(\(4, 8\), \(3, 8\)\)"),
        (lambda a, b: nt_xent(a, b[:, :5]), r"first.shape, second.shape=\(\(4, 8\), \(4, 5\)\)"),
        (lambda a, b: alignment(a, b[:2]), r"first.shape, second.shape"),
        (lambda a, b: info_nce(a, b, 0.1, torch.ones(3, 5)), r"negatives.shape=\(3, 5\)"),
        (lambda a, b: uniformity(a[:1]), r"batch size=1 "),
        (lambda a, b: uniformity(a, t=0), r"t=0 "),
        (lambda a, b: alignment(a, b, alpha=-1), r"alpha=-1 "),
        (lambda a, b: KeyQueue(-1, 8), r"size=-1 .*>= 0"),
        (lambda a, b: KeyQueue(4, 8).enqueue(torch.ones(2, 3)), r"keys.shape=\(2, 3\)"),
        (lambda a, b: momentum_update(nn.Linear(2, 2), nn.Linear(2, 2), 1.0), r"momentum=1.0 "),
        (lambda a, b: momentum_update(nn.Linear(2, 2), nn.Linear(2, 2), -0.1), r"in \[0, 1\)"),
        (lambda a, b: momentum_update(nn.Linear(2, 2), nn.Linear(3, 2), 0.5), r"target='weight'"),
        (lambda a, b: cpc_info_nce(a[None], b[None], 8), r"steps_ahead=8 .*\[1, 3\]"),
        (lambda a, b: cpc_info_nce(a[None], b[None], 0), r"steps_ahead=0 "),
        (lambda a, b: cpc_info_nce(a, b, 1), r"predictions.shape, latents.shape"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(call, message) -> None:
    first, second = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(ArgumentError, match=message):
        call(first, second)


# ---------------------------------------------------------------------------- more bad input

A, B = torch.randn(4, 8), torch.randn(4, 8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: info_nce(A.numpy(), B.numpy()), r"type\(queries\)=<class 'numpy.ndarray'>"),
        (lambda: info_nce(A.tolist(), B.tolist()), r"type\(queries\)=<class 'list'>"),
        (lambda: info_nce(A, B.double()), r"queries.dtype, keys.dtype=\(torch.float32, torch.f"),
        (lambda: info_nce(A.long(), B.long()), r"queries.dtype=torch.int64 .*floating"),
        (lambda: info_nce(A[:, :0], B[:, :0]), r"queries.shape=\(4, 0\) .*dim >= 1"),
        (lambda: info_nce(A, B, 1e-40), r"temperature=1e-40 .*>= 0.0001"),
        (lambda: nt_xent(A, B, 1e-40), r"temperature=1e-40 "),
        (lambda: nt_xent(A, B.double()), r"first.dtype, second.dtype"),
        (lambda: nt_xent(A.numpy(), B), r"type\(first\)=<class 'numpy.ndarray'>"),
        (lambda: symmetric_info_nce(A, B.half()), r"queries.dtype, keys.dtype"),
        (lambda: alignment(A, B.double()), r"first.dtype, second.dtype"),
        (lambda: alignment(A.int(), B.int()), r"first.dtype=torch.int32 "),
        (lambda: contrastive_logits(A, B, 0.1, B.numpy()), r"type\(negatives\)=<class 'numpy"),
        (lambda: info_nce(A, B, 0.1, torch.ones(3, 8).long()), r"negatives.dtype=torch.int64"),
        (lambda: uniformity(A.numpy()), r"type\(embeddings\)=<class 'numpy.ndarray'>"),
        (lambda: uniformity(A[0]), r"embeddings.shape=\(8,\) "),
        (lambda: uniformity(A.long()), r"embeddings.dtype=torch.int64 "),
        (lambda: KeyQueue(4, 8).enqueue(A.numpy()), r"type\(keys\)=<class 'numpy.ndarray'>"),
        (lambda: KeyQueue(4, 8).enqueue(A.long()), r"keys.dtype=torch.int64 "),
        (lambda: momentum_update({}, nn.Linear(2, 2), 0.5), r"type\(online\)=<class 'dict'>"),
        (lambda: cpc_info_nce(A[None].numpy(), B[None], 1), r"type\(predictions\)=<class 'num"),
        (lambda: cpc_info_nce(A[None], B[None].double(), 1), r"predictions.dtype, latents.dt"),
        (lambda: cpc_info_nce(A[None, :2], B[None, :2], 1), r"batch · \(seq - steps_ahead\)=1 "),
        (lambda: info_nce(A, B.to("meta")), r"queries.device, keys.device=\('cpu', 'meta'\)"),
        (lambda: info_nce(A, B, 0.1, B.to("meta")), r"negatives.device='meta' "),
        (lambda: KeyQueue(4, 8).enqueue(A.to("meta")), r"keys.device='meta' "),
        (
            lambda: momentum_update(nn.Linear(2, 2), nn.Linear(2, 2).double(), 0.5),
            r"target='weight' .*dtypes",
        ),
    ],
)
def test_wrong_types_dtypes_and_sizes_are_refused_by_name(call, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        call()


def test_a_refused_momentum_update_changes_nothing() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    target = nn.Sequential(nn.Linear(2, 2), nn.Linear(3, 2))  # the second layer does not match
    before = {name: p.clone() for name, p in target.named_parameters()}
    flags = {name: p.requires_grad for name, p in target.named_parameters()}
    with pytest.raises(ArgumentError, match=r"target='1.weight'"):
        momentum_update(online, target, 0.5)
    for name, parameter in target.named_parameters():
        assert torch.equal(parameter, before[name]), name
        assert parameter.requires_grad == flags[name]


def test_uniformity_stays_finite_when_t_is_large() -> None:
    # e^{-t d²} underflows to 0 for every pair at t = 1000: the mean is 0 and its log
    # -inf; the log-sum-exp keeps the answer, log mean e^{-t d²} = -t d²_min + log(...).
    points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    squared = torch.tensor([2.0, 4.0, 2.0], dtype=torch.float64)  # the pairs' distances²
    expected = torch.logsumexp(-1000 * squared, dim=0) - math.log(3)
    found = uniformity(points, t=1000.0)
    assert math.isfinite(found.item())
    assert found.item() == pytest.approx(expected.item(), rel=1e-12)  # -2000 + log(2/3)
    assert uniformity(points.float(), t=1000.0).item() == pytest.approx(-2000 + math.log(2 / 3))


# ---------------------------------------------------------------------------- SimCSE


def simcse_encoder(dropout: float = 0.1) -> MaskedLM:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=20,
        block_size=8,
        n_layer=1,
        n_head=2,
        n_embd=16,
        dropout=dropout,
        causal=False,
        norm_position="post",
    )
    return MaskedLM(config)


def test_simcse_is_info_nce_between_two_readings_of_the_same_lines() -> None:
    encoder = simcse_encoder()
    simcse = SimCSE(encoder, temperature=0.05).train()
    ids = torch.randint(0, 20, (4, 8))
    mask = torch.ones(4, 8, dtype=torch.long)
    mask[1, 5:] = 0
    torch.manual_seed(1)
    loss, metrics = simcse_objective(simcse, (ids, mask), step=0)
    torch.manual_seed(1)
    first, second = simcse.embed(ids, mask), simcse.embed(ids, mask)
    assert metrics == {}
    assert_close(loss, info_nce(first, second, 0.05))
    assert not torch.equal(first, second)  # dropout made the two readings differ


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, ids: SimCSE(MaskedLM), r"type\(encoder\)=<class 'type'>"),
        (lambda s, ids: SimCSE(nn.Linear(2, 2)), r"type\(encoder\)=.*Linear"),
        (lambda s, ids: SimCSE(s.encoder, temperature=0), r"temperature=0 "),
        (lambda s, ids: SimCSE(s.encoder, temperature="0.05"), r"temperature='0.05' "),
        (lambda s, ids: s(ids + 20), r"max\(input_ids\)=\d+ .*\[0, 19\]"),
        (lambda s, ids: s(ids - 20), r"min\(input_ids\)=-\d+ "),
        (lambda s, ids: s(ids.tolist()), r"type\(input_ids\)=<class 'list'>"),
        (lambda s, ids: s(ids.float()), r"input_ids.dtype=torch.float32"),
        (lambda s, ids: s(ids[:1]), r"batch size=1 "),
        (lambda s, ids: s(ids, torch.ones(3, 5)), r"attention_mask.shape=\(\(3, 8\), \(3, 5\)\)"),
        (
            lambda s, ids: s(ids, torch.tensor([[1] * 8, [1] * 8, [0] * 8])),
            r"attention_mask\[2\]='all 0'",
        ),
        (lambda s, ids: s.embed(ids + 20), r"max\(input_ids\)="),
        (lambda s, ids: simcse_objective(s, ids, 0), r"type\(batch\)=<class 'torch.Tensor'>"),
        (lambda s, ids: simcse_objective(s, (ids, ids, ids), 0), r"len\(batch\)=3 "),
        (
            lambda s, ids: simcse_objective(s.encoder, (ids, torch.ones_like(ids)), 0),
            r"type\(module\)=.*MaskedLM.*SimCSE",
        ),
    ],
)
def test_simcse_refuses_bad_input_by_name(call, message) -> None:
    simcse = SimCSE(simcse_encoder())
    with pytest.raises(ArgumentError, match=message):
        call(simcse, torch.randint(0, 20, (3, 8)))
