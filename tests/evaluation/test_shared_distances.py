"""SYSU-MM01's shared-distance path (one distance computation against the union of the 10 trials'
galleries) against the per-trial path, on the official gallery table (vendored ``rand_perm_cam.mat``)."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.data.datasets import plan_for_relpaths
from vireid.data.datasets.common import resource_path
from vireid.data.datasets.sysu_table import official_table
from vireid.evaluation import protocols
from vireid.evaluation.metrics import evaluate_features, evaluate_features_shared
from vireid.evaluation.protocols import evaluate_plan


@pytest.fixture(scope="module")
def sysu_paths():
    """One path per image of the official table's test identities (cams 1-6)."""
    table = official_table()
    pids = [int(x) for x in open(resource_path("sysu-mm01", "exp", "test_id.txt")).read().split(",")]
    return [f"cam{c}/{p:04d}/{i:04d}.jpg" for c in range(1, 7) for p in pids for i in range(1, table.count(c, p) + 1)]


def _features(paths, kind, dim=16):
    rng = np.random.default_rng(7)
    pids = np.array([int(p.split("/")[1]) for p in paths])
    if kind == "integer":  # exact distance ties everywhere: the tie order must follow each trial's gallery
        return (rng.integers(-2, 3, (600, dim))[pids] + rng.integers(-1, 2, (len(paths), dim))).astype(np.float32)
    return (rng.standard_normal((600, dim))[pids] + 1.5 * rng.standard_normal((len(paths), dim))).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode,shots,kind", [("all", 1, "gauss"), ("all", 10, "gauss"), ("indoor", 1, "integer"),
                                             ("all", 1, "integer")])
def test_shared_distances_equal_per_trial_on_the_official_table(sysu_paths, mode, shots, kind, monkeypatch):
    plan, samples = plan_for_relpaths("sysu-mm01", sysu_paths, mode=mode, shots=shots)
    assert len(plan.trials) == 10 and protocols._shared_queries(plan)
    calls = []
    real = protocols.evaluate_features_shared
    monkeypatch.setattr(protocols, "evaluate_features_shared", lambda *a, **k: calls.append(1) or real(*a, **k))
    feats = _features(sysu_paths, kind)
    shared = evaluate_plan(plan, samples, feats, normalize=kind == "gauss")
    per_trial = evaluate_plan(plan, samples, feats, normalize=kind == "gauss", shared_distances=False)
    assert calls == [1]  # the shared path ran once, the per-trial one did not use it
    for got, want in zip(shared["trials"], per_trial["trials"]):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-9, rel=0), key
    assert 0 < shared["mean"]["rank1"] < 100


def test_shared_pool_keeps_each_trial_gallery_order():
    """Exact ties ranked in the trial's own gallery order, not the pool's."""
    qf = np.zeros((2, 2))
    gf = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [3.0, 0.0]])  # pool: three at distance 1, one at 3
    pids = np.array([1, 2, 3, 1])
    q_pids, cams_q, cams_g = np.array([1, 2]), np.array([1, 1]), np.array([2, 2, 2, 2])
    galleries = [np.array([0, 1, 2, 3]), np.array([2, 1, 0, 3]), np.array([3, 1, 2])]
    results = evaluate_features_shared(qf, gf, q_pids, pids, cams_q, cams_g, galleries, cmc_mode="image", max_rank=3)
    for cols, got in zip(galleries, results):
        want = evaluate_features(qf, gf[cols], q_pids, pids[cols], cams_q, cams_g[cols], cmc_mode="image", max_rank=3)
        np.testing.assert_array_equal(got.cmc, want.cmc)
        assert (got.mAP, got.mINP) == (want.mAP, want.mINP)
    # trial 1: query pid 1 ties first at index 0; trial 2: pid-1 is third of the three ties
    assert results[0].cmc[0] == 0.5 and results[1].cmc[0] == 0.0


def test_shared_pool_rejects_out_of_range_columns():
    with pytest.raises(ValueError, match="pool column 5"):
        evaluate_features_shared(np.zeros((1, 2)), np.ones((3, 2)), [1], [1, 1, 1], [1], [2, 2, 2], [np.array([0, 5])])
