"""CrossModalitySampler: batch layout, determinism per (seed, epoch), replicas, skipped identities."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from vireid.data.sampler import CrossModalitySampler, default_batches_per_epoch
from vireid.errors import DatasetError


def make_items(counts: dict[int, tuple[int, int]]) -> tuple[list[int], list[int]]:
    """pids and modality lists; counts[pid] = (#visible, #infrared), interleaved to avoid sorted input."""
    pids, mods = [], []
    for pid, (nv, ni) in counts.items():
        for _ in range(nv):
            pids.append(pid)
            mods.append(0)
        for _ in range(ni):
            pids.append(pid)
            mods.append(1)
    order = sorted(range(len(pids)), key=lambda i: (i * 7919) % len(pids))  # fixed shuffle
    return [pids[i] for i in order], [mods[i] for i in order]


COUNTS = {pid: (3 + pid % 5, 2 + pid % 4) for pid in range(10, 30)}  # 20 ids, some with < K images


def test_batch_layout_halves_pairing_distinct_ids() -> None:
    pids, mods = make_items(COUNTS)
    P, K = 4, 3
    sampler = CrossModalitySampler(pids, mods, P, K, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 2 * P * K == sampler.batch_size
        vis, ir = batch[:P * K], batch[P * K:]
        assert all(mods[i] == 0 for i in vis)
        assert all(mods[i] == 1 for i in ir)
        assert [pids[i] for i in vis] == [pids[i] for i in ir]  # position i pairs the same identity
        ids = [pids[i] for i in vis]
        assert ids == [ids[j] for j in range(0, P * K, K) for _ in range(K)]  # K consecutive per identity
        assert len(set(ids)) == P and all(c == K for c in Counter(ids).values())


def test_without_replacement_when_enough_images_with_otherwise() -> None:
    counts = {0: (5, 2), 1: (5, 2), 2: (5, 2)}  # infrared has fewer than K=4 images
    pids, mods = make_items(counts)
    sampler = CrossModalitySampler(pids, mods, 2, 4, seed=0, batches_per_epoch=20)
    for batch in sampler:
        vis, ir = batch[:8], batch[8:]
        for j in range(0, 8, 4):
            assert len(set(vis[j:j + 4])) == 4  # 5 visible >= K: no repeats
            assert len(set(ir[j:j + 4])) <= 2  # 2 infrared < K: drawn with replacement


def test_plan_is_pure_function_of_seed_and_epoch() -> None:
    pids, mods = make_items(COUNTS)
    a = CrossModalitySampler(pids, mods, 4, 2, seed=7)
    b = CrossModalitySampler(pids, mods, 4, 2, seed=7)
    a.set_epoch(3)
    list(CrossModalitySampler(pids, mods, 4, 2, seed=7))  # another instance iterating changes nothing
    b.set_epoch(0)
    list(b)
    b.set_epoch(3)
    assert list(a) == list(b) == list(a)
    a.set_epoch(4)
    assert list(a) != list(b)  # different epochs differ
    c = CrossModalitySampler(pids, mods, 4, 2, seed=8)
    c.set_epoch(3)
    assert list(c) != list(b)  # different seeds differ


def test_identities_drawn_evenly() -> None:
    pids, mods = make_items(COUNTS)
    sampler = CrossModalitySampler(pids, mods, 3, 2, seed=0, batches_per_epoch=40)  # 120 draws of 20 ids
    drawn = Counter(pids[b[j]] for b in sampler for j in range(0, 6, 2))
    assert set(drawn) == set(COUNTS)
    assert max(drawn.values()) - min(drawn.values()) <= 1


@pytest.mark.parametrize("drop_last", [True, False])
def test_replicas_disjoint_equal_length_cover_plan(drop_last: bool) -> None:
    pids, mods = make_items(COUNTS)
    W, B = 3, 10
    samplers = [CrossModalitySampler(pids, mods, 4, 2, seed=5, num_replicas=W, rank=r, drop_last=drop_last,
                                     batches_per_epoch=B) for r in range(W)]
    for s in samplers:
        s.set_epoch(2)
    per_rank = [list(s) for s in samplers]
    expected = B // W if drop_last else -(-B // W)
    assert [len(b) for b in per_rank] == [expected] * W == [len(s) for s in samplers]
    plan = samplers[0].plan(2)
    assert len(plan) == expected * W
    for r in range(W):
        assert per_rank[r] == plan[r::W]  # disjoint slices of the same epoch plan
    flat = [tuple(b) for rank in per_rank for b in rank]
    assert len(set(flat)) == len(flat)


def test_single_modality_ids_skipped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    counts = dict(COUNTS)
    counts[100] = (4, 0)  # visible only
    counts[101] = (0, 3)  # infrared only
    pids, mods = make_items(counts)
    with caplog.at_level(logging.WARNING, logger="vireid.data.sampler"):
        sampler = CrossModalitySampler(pids, mods, 4, 2, seed=0)
        list(sampler)
        list(sampler)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 identities" in warnings[0].getMessage()
    assert 100 not in sampler.identities and 101 not in sampler.identities
    assert all(pids[i] not in (100, 101) for b in sampler for i in b)


def test_default_batches_per_epoch_follows_mangye16() -> None:
    assert default_batches_per_epoch(22258, 11909, 8, 4) == 696  # SYSU-MM01 train, 8 x (4 + 4)
    assert default_batches_per_epoch(10, 64, 4, 4) == 5
    pids, mods = make_items(COUNTS)
    n_vis = sum(v for v, _ in COUNTS.values())
    n_ir = sum(i for _, i in COUNTS.values())
    sampler = CrossModalitySampler(pids, mods, 4, 2)
    assert len(sampler) == max(n_vis, n_ir) // 8 + 1
    assert len(CrossModalitySampler(pids, mods, 4, 2, num_replicas=2, rank=1)) == (max(n_vis, n_ir) // 8 + 1) // 2


def test_errors() -> None:
    pids, mods = make_items({0: (2, 2), 1: (2, 2), 2: (3, 0)})
    with pytest.raises(DatasetError, match=r"num_ids=3 .* found 2"):
        CrossModalitySampler(pids, mods, 3, 2)
    with pytest.raises(ValueError, match="differ in length"):
        CrossModalitySampler(pids, mods[:-1], 2, 2)
    with pytest.raises(ValueError, match="modality must be 0"):
        CrossModalitySampler([0, 0], [0, 2], 1, 1)
    with pytest.raises(ValueError, match="rank"):
        CrossModalitySampler(pids, mods, 2, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="every rank would get 0"):
        CrossModalitySampler(pids, mods, 2, 2, num_replicas=4, batches_per_epoch=3)
