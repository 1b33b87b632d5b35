"""The sort-free ranking (bins + exact ties) against the plain per-query loop, on adversarial problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.evaluation.metrics import evaluate_distances, evaluate_features, pairwise_distance

EXCLUSIONS = ["none", "sysu-same-location", "same-id-same-camera"]


def _check(dist, q, g, qc, gc, exclusion, cmc_mode, loop_reference, max_rank=20, chunk_sizes=(1, 3, 17, None)):
    try:
        ref = loop_reference(np.asarray(dist, dtype=np.float64), q, g, qc, gc, exclusion, cmc_mode, max_rank)
    except ValueError:  # no valid query
        with pytest.raises(ValueError, match="true match"):
            evaluate_distances(dist, q, g, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion)
        return
    for chunk in chunk_sizes:
        r = evaluate_distances(dist, q, g, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion, max_rank=max_rank,
                               chunk_size=chunk)
        np.testing.assert_allclose(r.cmc, ref[0], rtol=0, atol=1e-12)
        assert r.mAP == pytest.approx(ref[1], abs=1e-12) and r.mINP == pytest.approx(ref[2], abs=1e-12)
        assert (r.num_valid, r.num_queries) == (ref[3], len(q))


def _labels(rng, nq, ng, nid, absent=True):
    q, g = rng.integers(0, nid, nq), rng.integers(0, nid, ng)
    if absent and nq > 2:
        q[::5] = nid + 1  # identities absent from the gallery: no true match
    return q, g, rng.integers(1, 7, nq), rng.integers(1, 7, ng)


@pytest.mark.parametrize("exclusion", EXCLUSIONS)
@pytest.mark.parametrize("cmc_mode", ["identity", "image"])
def test_random_problems_with_many_ties(exclusion, cmc_mode, loop_reference):
    rng = np.random.default_rng([7, len(exclusion), len(cmc_mode)])
    for case in range(10):
        nq, ng, nid = int(rng.integers(1, 60)), int(rng.integers(1, 400)), int(rng.integers(1, 30))
        levels = [2, 3, 8, 50, 0][case % 5]  # 0: continuous values
        dist = rng.random((nq, ng))
        if levels:
            dist = np.round(dist * levels) / levels  # exact ties, many of them at the match distances
        q, g, qc, gc = _labels(rng, nq, ng, nid)
        _check(dist, q, g, qc, gc, exclusion, cmc_mode, loop_reference, max_rank=int(rng.integers(1, 30)))


@pytest.mark.parametrize("cmc_mode", ["identity", "image"])
def test_degenerate_distance_patterns(cmc_mode, loop_reference):
    rng = np.random.default_rng(21)
    nq, ng = 12, 90
    q, g, qc, gc = _labels(rng, nq, ng, 6)
    base = rng.random((nq, ng))
    patterns = {
        "all equal": np.ones((nq, ng)),
        "all zero": np.zeros((nq, ng)),
        "one value per row": np.repeat(rng.random((nq, 1)), ng, axis=1),
        "huge range": base * np.where(rng.random((nq, ng)) < 0.5, 1e300, 1e-300),
        "subnormal": base * 1e-310,
        "negative": base - 3.0,
        "two clusters": np.where(rng.random((nq, ng)) < 0.5, 1.0, 1.0 + base * 1e-13),
        "one match far below": np.where(g[None, :] == q[:, None], 1e-9, 1.0 + base),
        "ties at one ulp": 1.0 + np.round(base * 4) * np.finfo(float).eps,
    }
    for name, dist in patterns.items():
        for exclusion in EXCLUSIONS:
            _check(dist, q, g, qc, gc, exclusion, cmc_mode, loop_reference, chunk_sizes=(1, 5, None))


def test_single_match_per_query_and_matches_excluded(loop_reference):
    rng = np.random.default_rng(3)
    ng = 200
    g = np.arange(ng) % 100  # two columns per identity
    q = rng.integers(0, 100, 40)
    gc = np.where(np.arange(ng) < 100, 2, 1)  # the first column of every identity is in camera 2
    qc = np.where(np.arange(40) % 2 == 0, 3, 6)  # cam-3 queries keep one true match, cam-6 queries two
    dist = np.round(rng.random((40, ng)) * 10) / 10
    for mode in ("identity", "image"):
        _check(dist, q, g, qc, gc, "sysu-same-location", mode, loop_reference)
        _check(dist, q, g, qc, gc, "none", mode, loop_reference)


def test_float32_distances(loop_reference):
    rng = np.random.default_rng(4)
    dist = (np.round(rng.random((50, 300)) * 100) / 100).astype(np.float32)
    q, g, qc, gc = _labels(rng, 50, 300, 12)
    for mode in ("identity", "image"):
        _check(dist, q, g, qc, gc, "same-id-same-camera", mode, loop_reference)


def test_large_gallery_many_bins(loop_reference):
    # more gallery columns than bins (8 * 8192): ties, and entries shared with a match's bin
    rng = np.random.default_rng(5)
    nq, ng = 6, 70_000
    dist = np.round(rng.random((nq, ng)) * 5000) / 5000
    q, g, qc, gc = _labels(rng, nq, ng, 400, absent=False)
    for mode in ("identity", "image"):
        _check(dist, q, g, qc, gc, "sysu-same-location", mode, loop_reference, chunk_sizes=(4, None))


def test_features_with_tied_distances(loop_reference):
    # integer features: exact float64 Euclidean distances (whatever the chunk) with many ties
    rng = np.random.default_rng(6)
    qf, gf = rng.integers(-2, 3, (70, 5)).astype(np.float64), rng.integers(-2, 3, (400, 5)).astype(np.float64)
    q, g, qc, gc = _labels(rng, 70, 400, 15)
    dist = pairwise_distance(torch.from_numpy(qf), torch.from_numpy(gf)).numpy()
    for mode in ("identity", "image"):
        ref = loop_reference(dist, q, g, qc, gc, "same-id-same-camera", mode)
        for chunk in (1, 9, None):
            r = evaluate_features(qf, gf, q, g, qc, gc, cmc_mode=mode, exclusion="same-id-same-camera",
                                  chunk_size=chunk)
            np.testing.assert_allclose(r.cmc, ref[0], atol=1e-12)
            assert r.mAP == pytest.approx(ref[1], abs=1e-12) and r.mINP == pytest.approx(ref[2], abs=1e-12)
