"""The fused evaluation path (issue 17): squared distances binned in cache, square roots only for the
candidates, exclusion by the rule's shape. Every metric must equal the plain loop on the distances
``pairwise_distance`` returns (the float64 path: ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))``), exact ties
kept in gallery order, including ties that only appear after the square root."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.evaluation import ranking
from vireid.evaluation.metrics import evaluate_features, evaluate_features_shared, pairwise_distance

EXCLUSIONS = ["none", "sysu-same-location", "same-id-same-camera"]


def _reference(qf, gf, q, g, qc, gc, exclusion, mode, loop_reference, distance="euclidean"):
    dist = pairwise_distance(torch.from_numpy(qf), torch.from_numpy(gf), distance).numpy()
    return loop_reference(dist, q, g, qc, gc, exclusion, mode)


def _assert_same(r, ref):
    np.testing.assert_array_equal(r.cmc, ref[0])
    assert r.mAP == pytest.approx(ref[1], rel=1e-15, abs=0) and r.mINP == pytest.approx(ref[2], rel=1e-15, abs=0)
    assert r.num_valid == ref[3]


def _labels(rng, nq, ng, nid):
    return rng.integers(0, nid, nq), rng.integers(0, nid, ng), rng.choice([1, 3, 6], nq), rng.integers(1, 7, ng)


@pytest.mark.parametrize("exclusion", EXCLUSIONS)
@pytest.mark.parametrize("mode", ["identity", "image"])
def test_integer_features_exact_ties(exclusion, mode, loop_reference):
    # integer features: every float64 distance exact, many exact ties at the match distances
    rng = np.random.default_rng([31, len(exclusion), len(mode)])
    qf = rng.integers(-1, 2, (40, 6)).astype(np.float64)
    gf = rng.integers(-1, 2, (300, 6)).astype(np.float64)
    gf[:20] = qf[:20]  # duplicates of queries: distance exactly 0
    q, g, qc, gc = _labels(rng, 40, 300, 12)
    ref = _reference(qf, gf, q, g, qc, gc, exclusion, mode, loop_reference)
    for chunk in (1, 7, None):
        _assert_same(evaluate_features(qf, gf, q, g, qc, gc, cmc_mode=mode, exclusion=exclusion,
                                       chunk_size=chunk), ref)


@pytest.mark.parametrize("mode", ["identity", "image"])
def test_ties_that_appear_only_after_the_square_root(mode, loop_reference, monkeypatch):
    # d2 = 1 and d2 = 1 + 2^-52 are different doubles with the same square root (1.0): the float64
    # path ranks them by gallery index, so binning the squared values alone would be wrong
    qf = np.zeros((2, 2))
    gf = np.array([[1.0, 0.0], [1.0, 2.0**-26], [1.0, 2.0**-25], [3.0, 0.0], [1.0, 2.0**-26], [0.5, 0.0]])
    q = np.array([0, 1])
    g = np.array([1, 0, 0, 1, 1, 1])
    c = np.ones(2, int), np.full(6, 2)
    d2 = (gf * gf).sum(1)  # 1, 1 + 2^-52, 1 + 2^-50, 9, 1 + 2^-52, 0.25
    assert d2[1] != d2[0] and np.sqrt(d2[1]) == np.sqrt(d2[0]) and np.sqrt(d2[2]) > np.sqrt(d2[0])
    # query 0: true matches 1 and 2 span 3 * 2^-52, so the bins are far narrower than the gap to
    # column 0, which ties with column 1 after the root (and precedes it in the gallery)
    ref = _reference(qf, gf, q, g, *c, "none", mode, loop_reference)
    finished = []
    real_finish = ranking._finish
    monkeypatch.setattr(ranking, "_finish", lambda *a: finished.append(a[1]) or real_finish(*a))
    _assert_same(evaluate_features(qf, gf, q, g, *c, cmc_mode=mode), ref)
    assert finished == [slice(0, 2)]  # the chunk was finished (square roots) before ranking


def test_near_ties_below_float32_resolution(loop_reference):
    # match and non-matches 1e-9 apart (relative 1e-10): float64 separates them, float32 cannot
    rng = np.random.default_rng(8)
    base = rng.standard_normal((1, 16))
    gf = np.repeat(base, 200, axis=0)
    gf[:, 0] += np.arange(200) * 1e-9 * rng.permutation([-1.0, 1.0] * 100)  # 200 distinct, interleaved distances
    qf = base + np.array([[1.0] + [0.0] * 15])
    qf = np.repeat(qf, 5, axis=0)
    q, g = np.arange(5), np.arange(200) % 7
    qc, gc = np.full(5, 3), rng.integers(1, 7, 200)
    for exclusion in EXCLUSIONS:
        for mode in ("identity", "image"):
            ref = _reference(qf, gf, q, g, qc, gc, exclusion, mode, loop_reference)
            _assert_same(evaluate_features(qf, gf, q, g, qc, gc, cmc_mode=mode, exclusion=exclusion), ref)


def test_gaussian_features_many_chunks_and_blocks(monkeypatch, loop_reference):
    # blocks of 1-2 rows (SYSU rows mixed inside a block and not), several chunks, both distances
    monkeypatch.setattr(ranking, "_BLOCK_ENTRIES", 700)
    rng = np.random.default_rng(9)
    qf, gf = rng.standard_normal((60, 12)), rng.standard_normal((400, 12))
    q, g, qc, gc = _labels(rng, 60, 400, 20)
    for distance in ("euclidean", "cosine"):
        for exclusion in EXCLUSIONS:
            ref = _reference(qf, gf, q, g, qc, gc, exclusion, "identity", loop_reference, distance)
            _assert_same(evaluate_features(qf, gf, q, g, qc, gc, distance=distance, exclusion=exclusion,
                                           chunk_size=13), ref)


def test_shared_and_top_k_paths_equal_the_loop(loop_reference):
    rng = np.random.default_rng(10)
    qf = rng.integers(-2, 3, (30, 4)).astype(np.float64)
    gf = rng.integers(-2, 3, (120, 4)).astype(np.float64)
    q, g, qc, gc = _labels(rng, 30, 120, 8)
    subsets = [np.arange(0, 120, 2), rng.permutation(120)[:70]]
    results = evaluate_features_shared(qf, gf, q, g, qc, gc, subsets, exclusion="sysu-same-location", top_k=5)
    for cols, r in zip(subsets, results):
        ref = _reference(qf, gf[cols], q, g[cols], qc, gc[cols], "sysu-same-location", "identity", loop_reference)
        _assert_same(r, ref)
        dist = pairwise_distance(torch.from_numpy(qf), torch.from_numpy(gf[cols])).numpy()
        dist[np.outer(qc == 3, gc[cols] == 2)] = np.inf
        order = np.argsort(dist, axis=1, kind="stable")[:, :5]
        np.testing.assert_array_equal(r.ranked, np.where(np.isfinite(np.take_along_axis(dist, order, 1)), order, -1))


def test_squared_path_skips_square_roots_of_the_whole_chunk(monkeypatch):
    # the fused path takes square roots only of the candidates: never a whole (c, ng) sqrt
    sizes = []
    real_sqrt = torch.Tensor.sqrt_

    def spy(self):
        sizes.append(self.numel())
        return real_sqrt(self)

    monkeypatch.setattr(torch.Tensor, "sqrt_", spy)
    rng = np.random.default_rng(11)
    qf, gf = rng.standard_normal((20, 8)), rng.standard_normal((3000, 8))
    q, g, qc, gc = _labels(rng, 20, 3000, 300)
    evaluate_features(qf, gf, q, g, qc, gc, exclusion="sysu-same-location")
    assert sizes and max(sizes) < 20 * 3000 / 10


@pytest.mark.parametrize("mode", ["identity", "image"])
def test_negative_squared_values_all_tie_at_distance_zero(mode, monkeypatch, loop_reference):
    # rounding can leave |q|^2 + |g|^2 - 2 q.g slightly negative for (near-)duplicates: every such
    # value is distance 0 and ties with the others in gallery order, whatever bins they would get
    rng = np.random.default_rng(12)
    nq, ng = 8, 500
    d2 = np.where(rng.random((nq, ng)) < 0.3, -rng.random((nq, ng)), rng.random((nq, ng)))  # spread over bins
    d2[:, ::7] = 0.0
    q, g, qc, gc = _labels(rng, nq, ng, 10)
    for exclusion in EXCLUSIONS:
        starts = iter(range(0, nq, 3))

        def fake_mm(a, b, out=None):  # zero features: d2 = 0 + 0 - 2 q.g, so q.g = -d2 / 2 (exact)
            s = next(starts)
            return out.copy_(torch.from_numpy(-d2[s:s + a.shape[0]] / 2))

        monkeypatch.setattr(torch, "mm", fake_mm)
        r = evaluate_features(np.zeros((nq, 1)), np.zeros((ng, 1)), q, g, qc, gc, cmc_mode=mode,
                              exclusion=exclusion, chunk_size=3)
        monkeypatch.undo()
        _assert_same(r, loop_reference(np.sqrt(np.maximum(d2, 0.0)), q, g, qc, gc, exclusion, mode))
