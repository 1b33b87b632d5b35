"""--rerank on evaluate-features: recorded in the output and equal to re-ranking by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vireid.cli import main
from vireid.data.datasets import build_dataset
from vireid.evaluation.features import save_features
from vireid.evaluation.metrics import evaluate_distances
from vireid.rerank import k_reciprocal_rerank, sim_rerank


@pytest.fixture()
def feats_file(tiny_sysu, tmp_path):
    ds = build_dataset("sysu-mm01", tiny_sysu)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, 16))
    feats = np.stack([centres[s.pid] + 0.8 * rng.normal(size=16) for s in ds.test]).astype(np.float32)
    path = tmp_path / "f.npz"
    save_features(path, feats, [s.relpath for s in ds.test])
    return ds, feats, path


@pytest.mark.parametrize("method, fn, flags", [
    ("sim", sim_rerank, ["--sim-top-k", "2"]),
    ("k-reciprocal", k_reciprocal_rerank, ["--rerank-k1", "5", "--rerank-k2", "2"]),
])
def test_rerank_is_recorded_and_matches_by_hand(feats_file, tiny_sysu, capsys, method, fn, flags):
    ds, feats, path = feats_file
    argv = ["evaluate-features", str(path), "--dataset", "sysu-mm01", "--root", str(tiny_sysu), "--normalize",
            "--json", "--rerank", method, *flags]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["settings"]["rerank"]["method"] == method
    plan = ds.eval_plan(mode="all", shots=1, sampling="official")
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    pids = np.array([s.pid for s in ds.test])
    cams = np.array([s.camid for s in ds.test])
    params = {"sim": {"top_k": 2}, "k-reciprocal": {"k1": 5, "k2": 2}}[method]
    maps = []
    for t in plan.trials:
        d = fn(f[t.query], f[t.gallery], **params)
        r = evaluate_distances(d, pids[t.query], pids[t.gallery], cams[t.query], cams[t.gallery],
                               cmc_mode=plan.cmc_mode, exclusion=plan.exclusion)
        maps.append(100 * r.mAP)
    assert result["mean"]["mAP"] == pytest.approx(np.mean(maps), abs=1e-6)


def test_rerank_is_off_by_default_and_flags_are_checked(feats_file, tiny_sysu, capsys):
    _, _, path = feats_file
    base = ["evaluate-features", str(path), "--dataset", "sysu-mm01", "--root", str(tiny_sysu), "--json"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["rerank"] == {"method": "none"}
    assert main(base + ["--sim-top-k", "2"]) == 2
    assert "--sim-top-k applies to --rerank sim, but --rerank is none" in capsys.readouterr().err
