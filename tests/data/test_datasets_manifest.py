"""Manifest-file datasets, and the registry (build_dataset, samples_from_relpaths, options)."""

from __future__ import annotations

import re

import json

import numpy as np
import pytest

from vireid.data.datasets import build_dataset, dataset_names, plan_for_relpaths, samples_from_relpaths
from vireid.types import Modality
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import Exclusion, evaluate_plan

ROWS = [
    # path, identity, camera, modality, split
    ("a/1.jpg", 1, 1, "visible", "query"),
    ("a/2.jpg", 2, 1, "rgb", "query"),
    ("b/1.jpg", 1, 1, "visible", "gallery"),  # same id and camera as the first query
    ("b/2.jpg", 1, 2, "ir", "gallery"),
    ("b/3.jpg", 2, 2, "infrared", "gallery"),
    ("t/1.jpg", 7, 1, "visible", "train"),
]


def _write_csv(path, rows, header="path,identity,camera,modality,split"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_csv_query_gallery_plan(tmp_path):
    ds = build_dataset("manifest", _write_csv(tmp_path / "m.csv", ROWS))
    assert [s.relpath for s in ds.train] == ["t/1.jpg"] and len(ds.test) == 5
    assert ds.test[1].modality == Modality.VISIBLE and ds.test[3].modality == Modality.INFRARED
    assert ds.test[0].path == str(tmp_path / "a/1.jpg")
    plan = ds.eval_plan()
    assert plan.exclusion is Exclusion.SAME_ID_SAME_CAMERA and plan.cmc_mode == "image"
    assert list(plan.trials[0].query) == [0, 1] and list(plan.trials[0].gallery) == [2, 3, 4]
    # query 0 is closest to b/1 (same id, same camera: removed), then b/3 (id 2), then b/2 (id 1)
    feats = np.array([[0.0], [1.2], [0.0], [2.0], [1.0]])
    result = evaluate_plan(plan, ds.test, feats)
    assert result["trials"][0]["rank1"] == pytest.approx(50.0)  # query 1 (id 2) finds b/3 first
    assert result["trials"][0]["mAP"] == pytest.approx(100 * (0.5 + 1.0) / 2)
    kept = evaluate_plan(ds.eval_plan(exclusion="none"), ds.test, feats)
    assert kept["trials"][0]["rank1"] == pytest.approx(100.0) and kept["settings"]["exclusion"] == "none"


def test_jsonl_test_split_directions(tmp_path):
    rows = [dict(path=f"x/{i}.png", identity=i % 2, camera=1 + (i % 3 == 0),
                 modality="infrared" if i < 3 else "visible", split="test") for i in range(6)]
    manifest = tmp_path / "data" / "manifest.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = build_dataset("manifest", manifest.parent)  # a folder holding manifest.jsonl
    plan = ds.eval_plan()
    assert list(plan.trials[0].query) == [0, 1, 2] and list(plan.trials[0].gallery) == [3, 4, 5]
    assert plan.settings["direction"] == "infrared-to-visible"
    rev = ds.eval_plan(direction="visible-to-infrared", cmc_mode="identity")
    assert list(rev.trials[0].query) == [3, 4, 5] and rev.cmc_mode == "identity"


def test_manifest_errors_name_file_and_line(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("manifest", tmp_path / "none.csv")
    with pytest.raises(DatasetError, match=r"must hold exactly one of \('manifest.csv', 'manifest.jsonl'\)"):
        build_dataset("manifest", tmp_path)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['split'\]"):
        build_dataset("manifest", _write_csv(tmp_path / "a.csv", [r[:4] for r in ROWS],
                                             "path,identity,camera,modality"))
    with pytest.raises(DatasetError, match=r"b.csv line 3: split must be one of"):
        build_dataset("manifest", _write_csv(tmp_path / "b.csv", [ROWS[0], ("q.jpg", 1, 1, "visible", "probe")]))
    with pytest.raises(DatasetError, match=r"c.csv line 2: unknown modality 'uv'"):
        build_dataset("manifest", _write_csv(tmp_path / "c.csv", [("q.jpg", 1, 1, "uv", "query")]))
    with pytest.raises(DatasetError, match=r"d.csv line 3: path 'a/1.jpg' already listed on line 2"):
        build_dataset("manifest", _write_csv(tmp_path / "d.csv", [ROWS[0], ROWS[0]]))
    with pytest.raises(DatasetError, match="mixes 'test' rows with 'query'/'gallery'"):
        build_dataset("manifest", _write_csv(tmp_path / "e.csv", ROWS + [("z.jpg", 1, 1, "visible", "test")]))
    with pytest.raises(DatasetError, match="needs both 'query' and 'gallery'"):
        build_dataset("manifest", _write_csv(tmp_path / "f.csv", [ROWS[0]]))
    (tmp_path / "g.jsonl").write_text('{"path": "a"}\n[1]\n')
    with pytest.raises(DatasetError, match="g.jsonl line 2: expected a JSON object"):
        build_dataset("manifest", tmp_path / "g.jsonl")
    ds = build_dataset("manifest", _write_csv(tmp_path / "h.csv", ROWS))
    with pytest.raises(ConfigError, match="cmc_mode must be one of"):
        ds.eval_plan(cmc_mode="market")
    with pytest.raises(ConfigError, match="unknown exclusion"):
        ds.eval_plan(exclusion="room")


def test_registry_and_relpath_parsing(tmp_path):
    assert {"llcm", "manifest", "regdb", "sysu-mm01", "market1501", "cuhk-pedes"} <= set(dataset_names())
    valid = re.escape(", ".join(dataset_names()))
    with pytest.raises(ConfigError, match=rf"unknown dataset 'market'; valid: {valid}"):
        build_dataset("market", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown config key dataset 'sysu-mm01'\.trial; valid keys: \(none\)"):
        build_dataset("sysu-mm01", tmp_path, trial=2)
    samples = samples_from_relpaths("sysu-mm01", ["cam6/0010/0003.jpg"], root="/x/cam3")
    assert (samples[0].pid, samples[0].camid, samples[0].modality) == (10, 6, Modality.INFRARED)
    assert samples_from_relpaths("regdb", ["Thermal/3/a.bmp"])[0].modality == Modality.INFRARED
    assert samples_from_relpaths("llcm", ["vis/0003/0003_c07_s1_f2_vis.jpg"])[0].camid == 7
    manifest = _write_csv(tmp_path / "m.csv", ROWS)
    assert samples_from_relpaths("manifest", ["b/2.jpg"], root=str(manifest))[0].camid == 2
    with pytest.raises(DatasetError, match="'nope.jpg' is not listed"):
        samples_from_relpaths("manifest", ["nope.jpg"], root=str(manifest))
    rel = ["b/3.jpg", "a/1.jpg", "a/2.jpg", "b/1.jpg", "b/2.jpg"]
    plan, samples = plan_for_relpaths("manifest", rel, str(manifest))
    assert [samples[i].relpath for i in plan.trials[0].query] == ["a/1.jpg", "a/2.jpg"]
    with pytest.raises(ConfigError, match="no vendored split files; pass the dataset root"):
        plan_for_relpaths("manifest", ["a/1.jpg"])
    with pytest.raises(ConfigError, match=r"unknown config key manifest protocol\.mode; valid keys: exclusion, cmc_mode, direction"):
        plan_for_relpaths("manifest", ["a/1.jpg"], str(manifest), mode="all")
