"""EvalPlan / evaluate_plan / format_table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from vireid.types import Modality, Sample
from vireid.errors import FeaturesError
from vireid.evaluation.metrics import evaluate_distances
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial, evaluate_plan, format_table


def _problem(seed=0, n=40):
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, 6, n)
    samples = [Sample(f"x/{i}.jpg", int(p), 1 + i % 2, Modality(i % 2)) for i, p in enumerate(pids)]
    feats = rng.standard_normal((6, 5))[pids] + 0.8 * rng.standard_normal((n, 5))
    trials = [Trial(np.arange(0, n, 2), np.arange(1, n, 2)), Trial(np.arange(1, n, 2), np.arange(0, n, 2))]
    plan = EvalPlan("toy", {"protocol": "toy", "direction": "both ways"}, trials, cmc_mode="identity",
                    exclusion=Exclusion.SAME_ID_SAME_CAMERA)
    return plan, samples, feats


def test_evaluate_plan_reports_percent_per_trial_and_mean():
    plan, samples, feats = _problem()
    result = evaluate_plan(plan, samples, feats)
    assert result["dataset"] == "toy" and len(result["trials"]) == 2
    pids = np.array([s.pid for s in samples])
    cams = np.array([s.camid for s in samples])
    for trial, row in zip(plan.trials, result["trials"]):
        q, g = trial.query, trial.gallery
        ref = evaluate_distances(cdist(feats[q], feats[g]), pids[q], pids[g], cams[q], cams[g],
                                 exclusion=Exclusion.SAME_ID_SAME_CAMERA)
        assert row["rank1"] == pytest.approx(100 * ref.cmc[0]) and row["rank20"] == pytest.approx(100 * ref.cmc[19])
        assert row["mAP"] == pytest.approx(100 * ref.mAP) and row["mINP"] == pytest.approx(100 * ref.mINP)
        assert (row["num_query"], row["num_gallery"], row["num_valid"]) == (20, 20, ref.num_valid)
    for key in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP"):
        assert result["mean"][key] == pytest.approx((result["trials"][0][key] + result["trials"][1][key]) / 2)
    s = result["settings"]
    assert (s["protocol"], s["distance"], s["normalize"], s["cmc"], s["exclusion"], s["num_trials"]) == \
        ("toy", "euclidean", False, "identity", "same-id-same-camera", 2)
    assert plan.settings == {"protocol": "toy", "direction": "both ways"}  # the plan is not modified


def test_distance_fn_hook_and_normalize():
    plan, samples, feats = _problem(1)
    calls = []

    def cosine_rerank(qf, gf):
        calls.append((qf.shape, gf.shape))
        return cdist(qf, gf, "cosine")

    hooked = evaluate_plan(plan, samples, feats, distance_fn=cosine_rerank, normalize=True)
    built_in = evaluate_plan(plan, samples, feats, distance="cosine")
    assert calls == [((20, 5), (20, 5))] * 2
    assert hooked["mean"]["mAP"] == pytest.approx(built_in["mean"]["mAP"])
    assert hooked["settings"]["distance"] == "custom:cosine_rerank"
    assert hooked["settings"]["distance_fn"] == "cosine_rerank" and hooked["settings"]["normalize"] is True
    with pytest.raises(ValueError, match=r"distance_fn returned shape \(2, 2\)"):
        evaluate_plan(plan, samples, feats, distance_fn=lambda q, g: np.zeros((2, 2)))


def test_torch_features_and_bad_features():
    plan, samples, feats = _problem(2)
    a = evaluate_plan(plan, samples, torch.from_numpy(feats))
    b = evaluate_plan(plan, samples, feats)
    assert a["mean"] == pytest.approx(b["mean"])
    bad = feats.copy()
    bad[3, 1] = np.nan
    with pytest.raises(FeaturesError, match=r"NaN/inf values in 1 rows used by the protocol; first: x/3.jpg"):
        evaluate_plan(plan, samples, bad)
    with pytest.raises(FeaturesError, match=r"features must be \(num_samples=40, dim\)"):
        evaluate_plan(plan, samples, feats[:10])


def test_plan_helpers():
    plan, samples, _ = _problem()
    sub = EvalPlan("toy", {}, [Trial([5, 7], [9, 11, 7])], cmc_mode="image")
    assert list(sub.used_indices()) == [5, 7, 9, 11]
    compact, kept = sub.compact(samples)
    assert [s.relpath for s in kept] == ["x/5.jpg", "x/7.jpg", "x/9.jpg", "x/11.jpg"]
    assert list(compact.trials[0].query) == [0, 1] and list(compact.trials[0].gallery) == [2, 3, 1]
    with pytest.raises(ValueError, match="cmc_mode"):
        EvalPlan("toy", {}, [Trial([0], [1])], cmc_mode="market")
    with pytest.raises(ValueError, match="has no trials"):
        EvalPlan("toy", {}, [], cmc_mode="image")
    assert Exclusion.parse("SAME_ID_SAME_CAMERA") is Exclusion.SAME_ID_SAME_CAMERA


def test_format_table_states_the_settings():
    plan, samples, feats = _problem()
    text = format_table(evaluate_plan(plan, samples, feats))
    assert "dataset: toy" in text and "direction: both ways" in text and "distance: euclidean" in text
    assert "num_trials: 2" in text and "exclusion: same-id-same-camera" in text
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1].strip() == "trial" and "mINP" in lines[0]
    assert len(lines) == 2 + 2 + 1 and lines[-1].split("|")[1].strip() == "mean"
