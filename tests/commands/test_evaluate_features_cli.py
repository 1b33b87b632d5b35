"""``vireid evaluate-features`` end to end: JSON and table output, and the errors on bad input (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from vireid.cli import main
from vireid.data.datasets.common import resource_path
from vireid.evaluation.features import save_features


def _sysu_relpaths():
    table = scipy.io.loadmat(str(resource_path("sysu-mm01", "official-eval", "rand_perm_cam.mat")))["rand_perm_cam"]
    ids = [int(x) for x in resource_path("sysu-mm01", "exp", "test_id.txt").read_text().split(",")]
    out = []
    for cam in range(1, 7):
        cell = table[cam - 1, 0]
        for pid in ids:
            n = cell[pid - 1, 0].shape[1] if pid - 1 < cell.shape[0] and cell[pid - 1, 0].size else 0
            out += [f"cam{cam}/{pid:04d}/{i:04d}.jpg" for i in range(1, n + 1)]
    return out


def _features_for(relpaths, pid_of, seed=0, dim=8):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2000, dim))
    return (centers[[pid_of(p) for p in relpaths]] + rng.standard_normal((len(relpaths), dim))).astype(np.float32)


@pytest.fixture(scope="module")
def sysu_feats(tmp_path_factory):
    rel = _sysu_relpaths()
    path = tmp_path_factory.mktemp("feats") / "sysu.npz"
    save_features(path, _features_for(rel, lambda p: int(p.split("/")[1])), rel, metadata={"flip": False})
    return path, rel


def _run(capsys, *argv):
    code = main(["evaluate-features", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_sysu_official_json(capsys, sysu_feats):
    code, out, err = _run(capsys, sysu_feats[0], "--dataset", "sysu-mm01", "--json")
    assert code == 0
    result = json.loads(out)  # exactly one JSON object on stdout
    assert result["dataset"] == "sysu-mm01" and set(result) == {"dataset", "settings", "trials", "mean"}
    s = result["settings"]
    assert s["mode"] == "all-search" and s["shots"] == 1 and s["sampling"] == "official"
    assert "official kit table" in s["gallery_table"] and s["num_trials"] == 10 and s["distance"] == "euclidean"
    assert s["exclusion"] == "sysu-same-location" and s["cmc"] == "identity"
    assert s["features_metadata"] == {"flip": False}
    assert [(t["num_query"], t["num_gallery"]) for t in result["trials"]] == [(3803, 301)] * 10
    assert 0 < result["mean"]["rank1"] <= result["mean"]["rank20"] <= 100


def test_sysu_seeded_indoor_table(capsys, sysu_feats):
    code, out, _ = _run(capsys, sysu_feats[0], "--dataset", "sysu-mm01", "--mode", "indoor",
                        "--gallery-sampling", "seeded", "--distance", "cosine", "--normalize")
    assert code == 0
    for needle in ("dataset: sysu-mm01", "mode: indoor-search", "sampling: seeded", "seeds: 0, 1, 2",
                   "distance: cosine", "normalize: True", "num_trials: 10", "|  mean |"):
        assert needle in out, needle
    rows = [line.split("|") for line in out.splitlines() if line.startswith("|")]
    assert [(r[-3].strip(), r[-2].strip()) for r in rows[2:12]] == [("3803", "112")] * 10


def test_regdb(capsys, tmp_path):
    rel = [line.split()[0] for m in ("visible", "thermal")
           for line in resource_path("regdb", "idx", f"test_{m}_2.txt").read_text().splitlines()]
    save_features(tmp_path / "r.npz", _features_for(rel, lambda p: int(p.split("/")[1])), rel)
    code, out, _ = _run(capsys, tmp_path / "r.npz", "--dataset", "regdb", "--trial", "2",
                        "--direction", "thermal-to-visible", "--json")
    result = json.loads(out)
    assert code == 0 and result["settings"]["trials"] == [2] and result["settings"]["direction"] == "thermal-to-visible"
    assert result["trials"][0]["num_query"] == 2060 and result["settings"]["cmc"] == "image"


def test_llcm_with_root(capsys, tmp_path):
    """A small LLCM tree in the index-file form (10 test identities of the vendored lists)."""
    root = tmp_path / "LLCM"
    (root / "idx").mkdir(parents=True)
    ids = [int(x) for x in resource_path("llcm", "idx", "test_id.txt").read_text().split(",")][:10]
    rel = []
    for name in ("train_vis", "train_nir", "test_vis", "test_nir"):
        lines = resource_path("llcm", "idx", f"{name}.txt").read_text().splitlines()
        lines = [line for line in lines if int(line.split("/")[1]) in ids] if name.startswith("test") else lines[:5]
        (root / "idx" / f"{name}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            (root / line.split()[0]).parent.mkdir(parents=True, exist_ok=True)
            (root / line.split()[0]).touch()
        rel += [line.split()[0] for line in lines] if name.startswith("test") else []
    save_features(tmp_path / "l.npz", _features_for(rel, lambda p: int(p.split("/")[1])), rel)
    code, out, _ = _run(capsys, tmp_path / "l.npz", "--dataset", "llcm", "--root", root,
                        "--direction", "visible-to-infrared", "--json")
    result = json.loads(out)
    n_vis = sum(p.startswith("vis/") for p in rel)
    assert code == 0 and [t["num_query"] for t in result["trials"]] == [n_vis] * 10
    assert result["settings"]["exclusion"] == "same-id-same-camera" and result["settings"]["seeds"] == list(range(10))
    assert result["settings"]["direction"] == "visible-to-infrared"


def test_sysu_layout_data_with_its_own_table_via_root(capsys, tmp_path):
    root = tmp_path / "camera_syn"
    (root / "exp").mkdir(parents=True)
    for name, ids in (("train_id", [1]), ("val_id", [2]), ("test_id", [3, 4, 5])):
        (root / "exp" / f"{name}.txt").write_text(",".join(map(str, ids)) + "\n")
    rel, table = [], np.empty((6, 1), dtype=object)
    rng = np.random.default_rng(0)
    for cam in range(1, 7):
        cell = np.empty((5, 1), dtype=object)
        for pid in range(1, 6):
            (root / f"cam{cam}" / f"{pid:04d}").mkdir(parents=True)
            for i in range(1, 4):
                (root / f"cam{cam}" / f"{pid:04d}" / f"{i:04d}.jpg").touch()
                if pid >= 3:
                    rel.append(f"cam{cam}/{pid:04d}/{i:04d}.jpg")
            cell[pid - 1, 0] = np.stack([rng.permutation(3) + 1 for _ in range(10)]).astype(np.uint8)
        table[cam - 1, 0] = cell
    scipy.io.savemat(str(root / "exp" / "rand_perm_cam.mat"), {"rand_perm_cam": table})
    save_features(tmp_path / "s.npz", _features_for(rel, lambda p: int(p.split("/")[1])), rel)
    code, out, _ = _run(capsys, tmp_path / "s.npz", "--dataset", "sysu-mm01", "--root", root, "--json")
    assert code == 0
    result = json.loads(out)
    assert "shipped with the dataset" in result["settings"]["gallery_table"]
    assert [(t["num_query"], t["num_gallery"]) for t in result["trials"]] == [(18, 12)] * 10
    code, _, err = _run(capsys, tmp_path / "s.npz", "--dataset", "sysu-mm01")  # no --root: the official counts
    assert code == 2 and "disagree with the official kit table" in err and "pass its root" in err


@pytest.mark.parametrize("case,message", [
    ("missing_key", r"missing key\(s\) \['paths'\]"),
    ("unknown_path", r"1 of 10579 paths are not test images of the sysu-mm01 protocol .*cam1/0001/0001.jpg"),
    ("duplicate", r"1 duplicate paths, first: 'cam3/0006/0001.jpg'"),
    ("nan", r"1 feature rows have NaN/inf values, first: 'cam3/0006/0002.jpg'"),
    ("count", r"disagree with the official kit table .* in 1 camera/identity folders: "
              r"cam1/0006 \(41 images, table 42\)"),
])
def test_bad_input_exits_2_naming_the_problem(capsys, tmp_path, sysu_feats, case, message):
    rel = list(sysu_feats[1])
    feats = _features_for(rel, lambda p: int(p.split("/")[1]))
    path = tmp_path / "bad.npz"
    if case == "missing_key":
        np.savez(path, features=feats)
    else:
        if case == "unknown_path":
            rel, feats = rel + ["cam1/0001/0001.jpg"], np.vstack([feats, feats[:1]])
        elif case == "duplicate":
            rel[rel.index("cam3/0006/0002.jpg")] = "cam3/0006/0001.jpg"
        elif case == "nan":
            feats[rel.index("cam3/0006/0002.jpg"), 3] = np.nan
        elif case == "count":
            keep = [i for i, p in enumerate(rel) if p != "cam1/0006/0042.jpg"]
            rel, feats = [rel[i] for i in keep], feats[keep]
        np.savez(path, features=feats, paths=np.array(rel))
    code, out, err = _run(capsys, path, "--dataset", "sysu-mm01")
    assert code == 2 and out == ""
    assert err.startswith("vireid evaluate-features: error: ")
    assert __import__("re").search(message, err), err


def test_flags_that_do_not_apply_are_refused(capsys, sysu_feats):
    code, _, err = _run(capsys, sysu_feats[0], "--dataset", "sysu-mm01", "--direction", "thermal-to-visible")
    assert code == 2 and "--direction does not apply to --dataset sysu-mm01" in err
    code, _, err = _run(capsys, sysu_feats[0], "--dataset", "regdb", "--trials", "1,x")
    assert code == 2 and "--trials must be 'all' or comma-separated integers" in err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate-features", str(sysu_feats[0]), "--dataset", "market"])
    assert exc.value.code == 2
