"""SYSU-MM01 against the public references, on the real split files (paths generated from the table).

- the official MATLAB kit (wuancong/SYSU-MM01 evaluation/: get_testing_set.m, euclidean_dist.m,
  get_cmc_multi_cam.m, get_map_multi_cam.m) ported plainly below: equal to 1e-6 percent per trial;
- mangye16/Cross-Modal-Re-ID-baseline process_gallery_sysu + eval_sysu for the seeded scheme.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest
import scipy.io

from vireid.data.datasets import plan_for_relpaths
from vireid.data.datasets.common import resource_path
from vireid.evaluation.protocols import evaluate_plan

KIT_CAM_LABEL = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}  # cam_id = [1 2 2 4 5 6]


@pytest.fixture(scope="module")
def kit():
    """The vendored kit table as the kit reads it, the test ids, and per-(cam, pid) image paths."""
    table = scipy.io.loadmat(str(resource_path("sysu-mm01", "official-eval", "rand_perm_cam.mat")))["rand_perm_cam"]
    test_ids = sorted(int(x) for x in scipy.io.loadmat(
        str(resource_path("sysu-mm01", "official-eval", "test_id.mat")))["id"].ravel())
    perm = {}
    files = {}
    for cam in range(1, 7):
        cell = table[cam - 1, 0]
        for pid in test_ids:
            row = cell[pid - 1, 0] if pid - 1 < cell.shape[0] else np.zeros((10, 0))
            if row.size:
                perm[(cam, pid)] = row.astype(int)
                files[(cam, pid)] = [f"cam{cam}/{pid:04d}/{i:04d}.jpg" for i in range(1, row.shape[1] + 1)]
    relpaths = [p for key in sorted(files) for p in files[key]]
    return {"perm": perm, "files": files, "test_ids": test_ids, "relpaths": relpaths}


def _features(relpaths, seed=0, dim=6):
    """Integer-valued features: identity structure plus noise, with many exact distance ties."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(-3, 4, size=(600, dim))
    pids = np.array([int(p.split("/")[1]) for p in relpaths])
    return (centers[pids] + rng.integers(-2, 3, size=(len(relpaths), dim))).astype(np.float64)


def kit_evaluate(kit, feats_of, trial, shots, gallery_cams):
    """get_testing_set.m + euclidean_dist.m + get_cmc_multi_cam.m + get_map_multi_cam.m, for one trial (0-based)."""
    xg, yg, cg, xp, yp, cp = [], [], [], [], [], []
    for cam in gallery_cams:
        for pid in kit["test_ids"]:  # i_id = 1..id_count, keeping the test ids
            if (cam, pid) not in kit["perm"]:
                continue
            for k in kit["perm"][(cam, pid)][trial, :shots]:
                xg.append(feats_of[kit["files"][(cam, pid)][k - 1]])
                yg.append(pid)
                cg.append(KIT_CAM_LABEL[cam])
    for cam in (3, 6):
        for pid in kit["test_ids"]:
            for path in kit["files"].get((cam, pid), []):
                xp.append(feats_of[path])
                yp.append(pid)
                cp.append(KIT_CAM_LABEL[cam])
    xg, xp = np.array(xg), np.array(xp)
    yg, cg, yp, cp = map(np.array, (yg, cg, yp, cp))
    dist = np.sqrt(((xp[:, None, :] - xg[None, :, :]) ** 2).sum(-1))  # pdist2(X_probe, X_gallery)
    ind = np.argsort(dist, axis=1, kind="stable")  # MATLAB sort is stable
    y_result, cam_result = yg[ind], cg[ind]
    match_counter = np.zeros(len(np.unique(yg)))
    valid = 0
    ap_sum = 0.0
    for i in range(len(yp)):
        y_i = y_result[i][cam_result[i] != cp[i]]
        _, first = np.unique(y_i, return_index=True)
        unique_i = y_i[np.sort(first)]  # unique(..., 'stable')
        match_i = unique_i == yp[i]
        if match_i.sum() != 0:
            valid += 1
            match_counter[: len(match_i)] += match_i
            true_rank = np.flatnonzero(y_i == yp[i]) + 1
            ap_sum += np.mean(np.arange(1, len(true_rank) + 1) / true_rank)
    cmc = np.cumsum(match_counter / valid)
    return cmc, ap_sum / valid


@pytest.mark.slow
def test_official_protocol_equals_matlab_kit_port_on_every_trial(kit):
    feats = _features(kit["relpaths"])
    feats_of = dict(zip(kit["relpaths"], feats))
    for mode, cams, shots, trials in (("all", (1, 2, 4, 5), 1, 10), ("indoor", (1, 2), 10, 1)):
        plan, samples = plan_for_relpaths("sysu-mm01", kit["relpaths"], mode=mode, shots=shots, trials=trials)
        ours = evaluate_plan(plan, samples, feats)
        assert len(ours["trials"]) == trials
        for t in range(trials):
            cmc, m_ap = kit_evaluate(kit, feats_of, t, shots, cams)
            got = ours["trials"][t]
            for k in (1, 5, 10, 20):
                assert got[f"rank{k}"] == pytest.approx(100 * cmc[k - 1], abs=1e-6), (mode, t, k)
            assert got["mAP"] == pytest.approx(100 * m_ap, abs=1e-6), (mode, t)
        assert 0 < ours["mean"]["rank1"] < 100


def mangye_gallery(kit, mode, trial, shots=1):
    """process_gallery_sysu(data_path, mode, trial) of mangye16 on a listing of the tree (multi-shot: random.sample)."""
    random.seed(trial)
    rgb_cameras = ["cam1", "cam2", "cam4", "cam5"] if mode == "all" else ["cam1", "cam2"]
    listing = defaultdict(list)
    for p in kit["relpaths"]:
        cam, pid, name = p.split("/")
        listing[(cam, pid)].append(name)
    ids = ["%04d" % x for x in kit["test_ids"]]
    files_rgb = []
    for id in sorted(ids):
        for cam in rgb_cameras:
            if (cam, id) in listing:
                new_files = sorted([cam + "/" + id + "/" + i for i in listing[(cam, id)]])
                if shots == 1:
                    files_rgb.append(random.choice(new_files))
                else:
                    files_rgb.extend(random.sample(new_files, shots))
    return files_rgb


@pytest.mark.parametrize("mode,shots", [("all", 1), ("indoor", 1), ("all", 10)])
def test_seeded_scheme_equals_mangye16_loop(kit, mode, shots):
    plan, samples = plan_for_relpaths("sysu-mm01", kit["relpaths"], mode=mode, shots=shots, sampling="seeded")
    official, _ = plan_for_relpaths("sysu-mm01", kit["relpaths"], mode=mode, shots=shots)
    for t, trial in enumerate(plan.trials):
        assert [samples[i].relpath for i in trial.gallery] == mangye_gallery(kit, mode, t, shots)
        assert set(trial.gallery) != set(official.trials[t].gallery)  # the two schemes draw differently
    assert plan.settings["seeds"] == list(range(10)) and plan.settings["gallery_table"] is None


def test_seeded_metrics_equal_mangye16_eval_sysu(kit, loop_reference):
    feats = _features(kit["relpaths"], seed=1) + np.random.default_rng(2).normal(0, 0.01, (len(kit["relpaths"]), 6))
    plan, samples = plan_for_relpaths("sysu-mm01", kit["relpaths"], sampling="seeded", trials=1)
    ours = evaluate_plan(plan, samples, feats)
    pids = np.array([s.pid for s in samples])
    cams = np.array([s.camid for s in samples])
    for t, trial in enumerate(plan.trials):
        q, g = trial.query, trial.gallery
        dist = np.sqrt(((feats[q][:, None] - feats[g][None]) ** 2).sum(-1))
        cmc, m_ap, m_inp, _ = loop_reference(dist, pids[q], pids[g], cams[q], cams[g], "sysu-same-location", "identity")
        got = ours["trials"][t]
        assert [got[f"rank{k}"] for k in (1, 5, 10, 20)] == pytest.approx([100 * cmc[k - 1] for k in (1, 5, 10, 20)])
        assert got["mAP"] == pytest.approx(100 * m_ap) and got["mINP"] == pytest.approx(100 * m_inp)
