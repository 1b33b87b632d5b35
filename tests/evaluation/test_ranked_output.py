"""The evaluator's ranked lists and CMC curve (what reports draw) against a brute-force stable sort."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.evaluation.exclusion import Exclusion
from vireid.evaluation.metrics import evaluate_distances, evaluate_features
from vireid.evaluation.protocols import EvalPlan, Trial, evaluate_plan
from vireid.types import Modality, Sample


def _brute_top(dist, q_cam, g_cam, k, exclusion):
    out = np.full((dist.shape[0], k), -1)
    for i, row in enumerate(dist):
        keep = np.ones(len(row), bool)
        if exclusion == "sysu" and q_cam[i] == 3:
            keep &= g_cam != 2
        order = [j for j in np.argsort(row, kind="stable") if keep[j]][:k]
        out[i, : len(order)] = order
    return out


@pytest.mark.parametrize("chunk", [None, 3])
def test_top_k_equals_a_stable_sort_with_exclusion(chunk):
    rng = np.random.default_rng(0)
    nq, ng = 11, 9
    dist = rng.integers(0, 4, size=(nq, ng)).astype(np.float64)  # many ties: gallery order must break them
    q_pid, g_pid = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    q_cam, g_cam = rng.choice([3, 6], nq), rng.choice([1, 2], ng)
    r = evaluate_distances(dist, q_pid, g_pid, q_cam, g_cam, exclusion=Exclusion.SYSU_SAME_LOCATION, max_rank=5,
                           top_k=12, chunk_size=chunk)
    assert r.ranked.shape == (nq, 12)
    np.testing.assert_array_equal(r.ranked, _brute_top(dist, q_cam, g_cam, 12, "sysu"))
    assert r.ranked[q_cam == 3][:, -1].max() == -1 or (g_cam != 2).sum() >= 12  # excluded entries are -1
    assert evaluate_distances(dist, q_pid, g_pid, q_cam, g_cam, max_rank=5).ranked is None


def test_features_top_k_matches_distances():
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(6, 4)), rng.normal(size=(8, 4))
    pid = rng.integers(0, 3, 8)
    r = evaluate_features(qf, gf, pid[:6], pid, np.ones(6, int), np.ones(8, int), top_k=3)
    d = np.linalg.norm(qf[:, None] - gf[None], axis=2)
    np.testing.assert_array_equal(r.ranked, np.argsort(d, axis=1, kind="stable")[:, :3])


def test_evaluate_plan_curves_and_ranked_lists_are_the_evaluators():
    rng = np.random.default_rng(2)
    samples = [Sample(f"cam{1 + i % 2}/{i // 4:04d}/{i}.jpg", i // 4, 1 + i % 2,
                      Modality.INFRARED if i % 2 else Modality.VISIBLE) for i in range(24)]
    feats = rng.normal(size=(24, 5))
    q = np.arange(1, 24, 2)
    trials = [Trial(q, np.arange(0, 24, 2)), Trial(q, np.arange(0, 24, 4))]
    plan = EvalPlan("toy", {}, trials, cmc_mode="image")
    plain = evaluate_plan(plan, samples, feats, normalize=True)
    full = evaluate_plan(plan, samples, feats, normalize=True, curves=True, ranked_top=4)
    assert set(plain) == {"dataset", "settings", "trials", "mean"}
    assert full["mean"] == plain["mean"]
    assert full["cmc"][0] == pytest.approx(plain["mean"]["rank1"]) and len(full["cmc"]) == 20
    assert full["cmc"][4] == pytest.approx(plain["mean"]["rank5"])
    ranked = full["ranked"]
    assert ranked["trial"] == 1 and ranked["query"] == q.tolist()
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    d = np.linalg.norm(f[q][:, None] - f[trials[0].gallery][None], axis=2)
    expected = trials[0].gallery[np.argsort(d, axis=1, kind="stable")[:, :4]]
    np.testing.assert_array_equal(np.array(ranked["gallery"]), expected)
