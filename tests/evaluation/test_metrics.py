"""CMC / mAP / mINP: hand-worked cases, and the vectorised evaluator against a per-query loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from vireid.evaluation import metrics
from vireid.evaluation.metrics import evaluate_distances, evaluate_features
from vireid.evaluation.protocols import Exclusion

ONE_CAM = dict(q_camids=np.array([1]), exclusion=Exclusion.NONE)


def _single(dist, g_pids, q_pid=1, g_camids=None, q_cam=1, **kw):
    g_pids = np.asarray(g_pids)
    g_camids = np.full(len(g_pids), 2) if g_camids is None else np.asarray(g_camids)
    return evaluate_distances(np.asarray([dist], dtype=float), np.array([q_pid]), g_pids, np.array([q_cam]),
                              g_camids, **kw)


# ------------------------------------------------------------------------------------- hand-worked values
def test_several_matches_ap_minp_and_both_cmc_definitions():
    # sorted gallery identities: 2 1 2 3 1 4 1 -> true matches at ranks 2, 5, 7
    g = [2, 1, 2, 3, 1, 4, 1]
    for mode in ("image", "identity"):
        r = _single(np.arange(7.0), g, cmc_mode=mode, max_rank=8)
        assert r.mAP == pytest.approx((1 / 2 + 2 / 5 + 3 / 7) / 3)
        assert r.mINP == pytest.approx(3 / 7)
        assert r.cmc[0] == 0.0 and r.cmc[1] == 1.0
        assert (r.num_valid, r.num_queries) == (1, 1)


def test_identity_level_and_image_level_rank5_differ():
    # sorted identities 2 2 3 3 4 1 5: first true match is the 6th image but the 4th distinct identity
    g = [2, 2, 3, 3, 4, 1, 5]
    image = _single(np.arange(7.0), g, cmc_mode="image", max_rank=10)
    ident = _single(np.arange(7.0), g, cmc_mode="identity", max_rank=10)
    assert image.rank(5) == 0.0 and image.rank(6) == 1.0
    assert ident.rank(3) == 0.0 and ident.rank(4) == 1.0 and ident.rank(5) == 1.0
    assert image.rank(1) == ident.rank(1) == 0.0
    assert image.mAP == ident.mAP == pytest.approx(1 / 6)
    assert image.mINP == pytest.approx(1 / 6)
    assert len(image.cmc) == 10 and image.cmc[-1] == 1.0  # the curve stays at 1 past the gallery size


def test_ties_keep_gallery_order():
    # all distances equal: the stable sort keeps gallery order, so the match ranks where it stands
    first = _single([1.0, 1.0, 1.0], [2, 1, 2], cmc_mode="image")
    assert first.rank(1) == 0.0 and first.rank(2) == 1.0 and first.mAP == pytest.approx(0.5)
    swapped = _single([1.0, 1.0, 1.0], [1, 2, 2], cmc_mode="image")
    assert swapped.rank(1) == 1.0 and swapped.mAP == pytest.approx(1.0)
    # a tie between two identities at the identity level: 3 (earlier column) precedes 1
    ident = _single([0.5, 0.5, 0.2], [3, 1, 3], cmc_mode="identity")
    assert ident.rank(1) == 0.0 and ident.rank(2) == 1.0


def test_queries_without_true_match_are_skipped_with_one_denominator():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.4, 0.6]])
    g = np.array([1, 2, 1])
    q = np.array([1, 2, 9])  # identity 9 is not in the gallery
    r = evaluate_distances(dist, q, g, np.ones(3, int), np.full(3, 2), cmc_mode="image", exclusion="none")
    assert (r.num_valid, r.num_queries) == (2, 3)
    # query 0: matches at ranks 1, 3 -> AP (1 + 2/3)/2, INP 2/3; query 1: match at rank 2 -> AP 1/2, INP 1/2
    assert r.mAP == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    assert r.mINP == pytest.approx((2 / 3 + 0.5) / 2)
    assert r.rank(1) == pytest.approx(0.5) and r.rank(2) == 1.0


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="none of the 1 queries has a true match"):
        _single([0.1, 0.2], [5, 6])


def test_sysu_same_location_rule():
    # gallery: (pid, cam, dist) = (2, 2, .1) (1, 2, .2) (3, 1, .3) (1, 4, .4)
    g, cams, d = [2, 1, 3, 1], [2, 2, 1, 4], [0.1, 0.2, 0.3, 0.4]
    cam3 = _single(d, g, g_camids=cams, q_cam=3, exclusion=Exclusion.SYSU_SAME_LOCATION, cmc_mode="identity")
    assert cam3.rank(1) == 0.0 and cam3.rank(2) == 1.0  # filtered list: 3, 1
    assert cam3.mAP == pytest.approx(0.5) and cam3.mINP == pytest.approx(0.5)
    cam6 = _single(d, g, g_camids=cams, q_cam=6, exclusion=Exclusion.SYSU_SAME_LOCATION, cmc_mode="image")
    assert cam6.rank(1) == 0.0 and cam6.rank(2) == 1.0  # nothing removed: 2 1 3 1
    assert cam6.mAP == pytest.approx((1 / 2 + 2 / 4) / 2) and cam6.mINP == pytest.approx(2 / 4)
    # a cam-3 query whose only true match is in cam 2 has none left: invalid
    only = evaluate_distances(np.array([[0.1, 0.2], [0.1, 0.2]]), np.array([1, 1]), np.array([1, 2]),
                              np.array([3, 6]), np.array([2, 1]), exclusion="sysu-same-location")
    assert (only.num_valid, only.num_queries) == (1, 2) and only.rank(1) == 1.0


def test_same_id_same_camera_rule():
    g, cams, d = [1, 2, 1], [5, 1, 3], [0.1, 0.2, 0.3]
    excl = _single(d, g, g_camids=cams, q_cam=5, exclusion=Exclusion.SAME_ID_SAME_CAMERA, cmc_mode="image")
    assert excl.rank(1) == 0.0 and excl.mAP == pytest.approx(0.5) and excl.mINP == pytest.approx(0.5)
    none = _single(d, g, g_camids=cams, q_cam=5, exclusion=Exclusion.NONE, cmc_mode="image")
    assert none.rank(1) == 1.0 and none.mAP == pytest.approx((1 + 2 / 3) / 2)


# ------------------------------------------------------------------ against the public per-query loop
@pytest.mark.parametrize("exclusion", ["none", "sysu-same-location", "same-id-same-camera"])
@pytest.mark.parametrize("cmc_mode", ["identity", "image"])
def test_vectorised_equals_loop_on_random_problems(exclusion, cmc_mode, loop_reference):
    rng = np.random.default_rng([len(exclusion), len(cmc_mode)])  # fixed per case
    for case in range(12):
        nq, ng, nid = rng.integers(1, 80), rng.integers(1, 300), rng.integers(1, 40)
        dist = rng.random((nq, ng))
        if case % 3 == 0:
            dist = np.round(dist * 4) / 4  # many exact ties
        q, g = rng.integers(0, nid, nq), rng.integers(0, nid, ng)
        qc, gc = rng.integers(1, 7, nq), rng.integers(1, 7, ng)
        max_rank = int(rng.integers(1, 25))
        try:
            ref = loop_reference(dist, q, g, qc, gc, exclusion, cmc_mode, max_rank)
        except ValueError:  # mean of nothing: no valid query
            with pytest.raises(ValueError, match="true match"):
                evaluate_distances(dist, q, g, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion)
            continue
        r = evaluate_distances(dist, q, g, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion, max_rank=max_rank,
                               chunk_size=int(rng.integers(1, 20)))
        np.testing.assert_allclose(r.cmc, ref[0], rtol=0, atol=1e-12)
        assert r.mAP == pytest.approx(ref[1], abs=1e-12) and r.mINP == pytest.approx(ref[2], abs=1e-12)
        assert r.num_valid == ref[3] and r.num_queries == nq


def test_ties_in_large_chunks_split_across_threads(loop_reference):
    rng = np.random.default_rng(11)
    dist = np.round(rng.random((300, 120)) * 6) / 6  # ties in almost every row
    dist[::3] = rng.random((100, 120))  # and rows without ties
    q, g = rng.integers(0, 15, 300), rng.integers(0, 15, 120)
    qc, gc = rng.integers(1, 7, 300), rng.integers(1, 7, 120)
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # row blocks sorted on 4 threads
        for mode in ("identity", "image"):
            r = evaluate_distances(dist, q, g, qc, gc, cmc_mode=mode, exclusion="sysu-same-location")
            ref = loop_reference(dist, q, g, qc, gc, "sysu-same-location", mode)
            np.testing.assert_allclose(r.cmc, ref[0], atol=1e-12)
            assert r.mAP == pytest.approx(ref[1], abs=1e-12) and r.mINP == pytest.approx(ref[2], abs=1e-12)
    finally:
        torch.set_num_threads(torch_threads)


def test_result_does_not_depend_on_chunk_size():
    rng = np.random.default_rng(3)
    dist = rng.random((97, 150))
    q, g = rng.integers(0, 10, 97), rng.integers(0, 10, 150)
    qc, gc = rng.integers(1, 7, 97), rng.integers(1, 7, 150)
    results = [evaluate_distances(dist, q, g, qc, gc, exclusion="sysu-same-location", chunk_size=c)
               for c in (1, 7, 97, None)]
    for r in results[1:]:
        np.testing.assert_array_equal(r.cmc, results[0].cmc)
        assert r.mAP == pytest.approx(results[0].mAP, abs=1e-15)


# ---------------------------------------------------------------------------------- evaluate_features
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_evaluate_features_matches_scipy_distances(distance):
    rng = np.random.default_rng(5)
    qf, gf = rng.standard_normal((60, 16)), rng.standard_normal((200, 16))
    q, g = rng.integers(0, 12, 60), rng.integers(0, 12, 200)
    qc, gc = rng.integers(1, 7, 60), rng.integers(1, 7, 200)
    got = evaluate_features(qf, gf, q, g, qc, gc, distance=distance, exclusion="same-id-same-camera", chunk_size=7)
    ref = evaluate_distances(cdist(qf, gf, distance), q, g, qc, gc, exclusion="same-id-same-camera")
    np.testing.assert_allclose(got.cmc, ref.cmc, atol=1e-12)
    assert got.mAP == pytest.approx(ref.mAP, abs=1e-12) and got.mINP == pytest.approx(ref.mINP, abs=1e-12)


def test_evaluate_features_normalize_and_tensor_input():
    rng = np.random.default_rng(6)
    qf, gf = rng.standard_normal((30, 8)), rng.standard_normal((90, 8))
    q, g = rng.integers(0, 5, 30), rng.integers(0, 5, 90)
    c1, c2 = np.ones(30, int), np.full(90, 2)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    got = evaluate_features(torch.from_numpy(qf).float(), torch.from_numpy(gf).float(), q, g, c1, c2, normalize=True)
    ref = evaluate_distances(cdist(unit(qf), unit(gf)), q, g, c1, c2)
    np.testing.assert_allclose(got.cmc, ref.cmc)
    assert got.mAP == pytest.approx(ref.mAP, abs=1e-6)


def test_evaluate_features_never_builds_the_full_matrix(monkeypatch):
    seen = []
    real = metrics.pairwise_distance

    def spy(qf, gf, distance="euclidean", g_sq=None, **kwargs):
        out = real(qf, gf, distance, g_sq=g_sq, **kwargs)
        seen.append(tuple(out.shape))
        return out

    monkeypatch.setattr(metrics, "pairwise_distance", spy)
    rng = np.random.default_rng(7)
    evaluate_features(rng.standard_normal((50, 4)), rng.standard_normal((40, 4)), rng.integers(0, 3, 50),
                      rng.integers(0, 3, 40), np.ones(50, int), np.full(40, 2), chunk_size=8)
    assert seen and max(s[0] for s in seen) <= 8 and sum(s[0] for s in seen) == 50


def test_auto_chunk_size_bounds_memory():
    rows = metrics.auto_chunk_size(50_000)
    assert 1 <= rows and rows * 50_000 * metrics._BYTES_PER_ENTRY <= 400 * 2**20
    assert metrics.auto_chunk_size(10**12) == 1


# ------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    d = np.zeros((2, 3))
    ok = dict(q_pids=np.array([1, 2]), g_pids=np.array([1, 2, 3]), q_camids=np.ones(2, int), g_camids=np.ones(3, int))
    with pytest.raises(ValueError, match="non-finite entry at query 1, gallery 2"):
        bad = d.copy()
        bad[1, 2] = np.nan
        evaluate_distances(bad, **ok)
    with pytest.raises(ValueError, match="g_pids must be a 1-D array of length 3"):
        evaluate_distances(d, **{**ok, "g_pids": np.array([1, 2])})
    with pytest.raises(ValueError, match="cmc_mode"):
        evaluate_distances(d, **ok, cmc_mode="market")
    with pytest.raises(ValueError, match="unknown exclusion"):
        evaluate_distances(d, **ok, exclusion="same-room")
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_distances(d, **ok, max_rank=0)
    with pytest.raises(ValueError, match="same feature dimension"):
        evaluate_features(np.zeros((2, 3)), np.zeros((3, 4)), **ok)
    with pytest.raises(ValueError, match="gf has non-finite values"):
        evaluate_features(np.zeros((2, 3)), np.full((3, 3), np.inf), **ok)
    with pytest.raises(ValueError, match="distance must be one of"):
        evaluate_features(np.zeros((2, 3)), np.zeros((3, 3)), **ok, distance="manhattan")
