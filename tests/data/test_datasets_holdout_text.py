"""Occluded-REID, Partial-REID, Partial-iLIDS, P-ETHZ (camera rule, counts) and CUHK-PEDES,
ICFG-PEDES, RSTPReid (counts, caption paths, text-to-image plan) on trees of empty files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixture_trees import build_text, touch
from vireid.data.datasets import build_dataset, plan_for_relpaths
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import Exclusion, evaluate_plan
from vireid.types import Modality


def _occluded_reid(root, ext=".tif"):
    rel = [f"{folder}/{pid:03d}/{pid:03d}_{k:02d}{ext}" for folder in ("occluded_body_images", "whole_body_images")
           for pid in range(1, 201) for k in range(1, 6)]
    touch(root, rel)


def test_occluded_reid_counts_and_camera_rule(tmp_path):
    _occluded_reid(tmp_path / "Occluded_REID")
    ds = build_dataset("occluded-reid", tmp_path / "Occluded_REID", counts="strict")
    assert ds.splits.count("query") == 1000 and ds.splits.count("gallery") == 1000 and ds.train == []
    assert {s.camid for s, sp in zip(ds.test, ds.splits) if sp == "query"} == {1}
    assert {s.camid for s, sp in zip(ds.test, ds.splits) if sp == "gallery"} == {2}
    plan = ds.eval_plan()
    assert plan.exclusion is Exclusion.SAME_ID_SAME_CAMERA and "Market-1501" in plan.settings["train"]
    # identical features for an identity's images: every query finds its gallery images at rank 1
    feats = np.stack([np.eye(200)[s.pid - 1] for s in ds.test])
    result = evaluate_plan(plan, ds.test, feats)
    assert result["mean"]["rank1"] == 100.0 and result["mean"]["mAP"] == 100.0
    assert result["trials"][0]["num_valid"] == 1000  # one camera id for all would have left none


@pytest.mark.parametrize("name,folders,make,counts", [
    ("partial-reid", ("partial_body_images", "whole_body_images"),
     lambda f: [f"{f}/{p:03d}_{k:02d}.jpg" for p in range(1, 61) for k in range(1, 6)], (300, 300)),
    ("partial-ilids", ("Partial", "Whole"), lambda f: [f"{f}/{p:03d}.jpg" for p in range(1, 120)], (119, 119)),
])
def test_partial_sets_counts_and_alternative_folders(tmp_path, name, folders, make, counts):
    touch(tmp_path / "d", [p for f in folders for p in make(f)])
    ds = build_dataset(name, tmp_path / "d", counts="strict")
    assert (ds.splits.count("query"), ds.splits.count("gallery")) == counts
    q = [s for s, sp in zip(ds.test, ds.splits) if sp == "query"]
    assert {s.camid for s in q} == {1} and q[0].pid == 1


def test_p_ethz_total_counts(tmp_path):
    rel = []
    for pid in range(1, 86):
        n = 46 if pid <= 72 else 45  # 72 * 46 + 13 * 45 = 3,897
        rel += [f"occluded_body_images/{pid}/{k}.png" for k in range(n // 2)]
        rel += [f"whole_body_images/{pid}/{k}.png" for k in range(n // 2, n)]
    touch(tmp_path / "P-ETHZ", rel)
    ds = build_dataset("p-ethz", tmp_path / "P-ETHZ", counts="strict")
    assert len(ds.test) == 3897 and len({s.pid for s in ds.test}) == 85


def test_holdout_bad_layouts(tmp_path):
    touch(tmp_path / "a", ["partial_body_images/001_01.jpg"])
    with pytest.raises(DatasetError, match=r"need exactly one gallery folder of \['whole_body_images'"):
        build_dataset("partial-reid", tmp_path / "a")
    touch(tmp_path / "b", ["partial_body_images/001_01.jpg", "whole_body_images/002_01.jpg"])
    with pytest.raises(DatasetError, match="1 query identities have no gallery image"):
        build_dataset("partial-reid", tmp_path / "b")
    touch(tmp_path / "c", ["partial_body_images/abc.jpg", "whole_body_images/001.jpg"])
    with pytest.raises(DatasetError, match="cannot read an identity from 'partial_body_images/abc.jpg'"):
        build_dataset("partial-ilids", tmp_path / "c")


TEXT_CASES = [
    ("cuhk-pedes", "reid_raw.json", "file_path", 1,
     {"train": (34054, 11003, 0), "val": (3078, 1000, 6158), "test": (3074, 1000, 6156)}),
    ("icfg-pedes", "ICFG-PEDES.json", "file_path", 0, {"train": (34674, 3102, 0), "test": (19848, 1000, 0)}),
    ("rstpreid", "data_captions.json", "img_path", 0,
     {"train": (18505, 3701, 37010), "val": (1000, 200, 2000), "test": (1000, 200, 2000)}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,json_name,key,base,counts", TEXT_CASES)
def test_text_sets_counts_and_plan(tmp_path, name, json_name, key, base, counts):
    build_text(tmp_path / name, json_name, key, counts, id_base=base)
    ds = build_dataset(name, tmp_path / name, counts="strict")
    n_images, n_ids, n_caps = counts["test"]
    images = [s for s in ds.test if s.modality == Modality.VISIBLE]
    texts = [s for s in ds.test if s.modality == Modality.TEXT]
    assert len(images) == n_images and len({s.pid for s in images}) == n_ids
    assert len(texts) == (n_caps or 2 * n_images) and all("#" in s.relpath for s in texts)
    assert ds.modalities == (Modality.VISIBLE, Modality.TEXT)
    plan = ds.eval_plan()
    assert plan.exclusion is Exclusion.NONE and plan.cmc_mode == "image"
    assert len(plan.trials[0].query) == len(texts) and len(plan.trials[0].gallery) == n_images
    assert ds.caption(texts[0]).startswith("a person ")


def _small_text(root):
    entries = build_text(root, "reid_raw.json", "file_path", {"train": (6, 3, 0), "val": (4, 2, 0), "test": (6, 3, 0)})
    return [e for e in entries if e["split"] == "test"]


def test_text_features_file_with_captions_and_images(tmp_path):
    test = _small_text(tmp_path / "c")
    images = [f"imgs/{e['file_path']}" for e in test]
    caps = [f"{p}#{k}" for p, e in zip(images, test) for k in range(len(e["captions"]))]
    pids = {f"imgs/{e['file_path']}": e["id"] for e in test}
    onehot = {pid: np.eye(8)[i] for i, pid in enumerate(sorted(set(pids.values())))}
    feats = np.stack([onehot[pids[p.split("#")[0]]] * (3.0 if "#" in p else 1.0) for p in images + caps])
    plan, samples = plan_for_relpaths("cuhk-pedes", images + caps, str(tmp_path / "c"))
    result = evaluate_plan(plan, samples, feats, distance="cosine", normalize=True)
    assert result["mean"]["rank1"] == 100.0 and result["mean"]["mAP"] == 100.0
    assert result["trials"][0]["num_query"] == len(caps) and result["trials"][0]["num_gallery"] == 6
    val, _ = plan_for_relpaths("cuhk-pedes", [f"imgs/{e['file_path']}" for e in json.loads(
        (tmp_path / "c" / "reid_raw.json").read_text()) if e["split"] == "val"] + [
        f"imgs/{e['file_path']}#{k}" for e in json.loads((tmp_path / "c" / "reid_raw.json").read_text())
        if e["split"] == "val" for k in range(len(e["captions"]))], str(tmp_path / "c"), options={"split": "val"})
    assert val.settings["split"] == "val"


def test_text_bad_layouts(tmp_path):
    _small_text(tmp_path / "c")
    with pytest.raises(DatasetError, match="missing data_captions.json or imgs/"):
        build_dataset("rstpreid", tmp_path / "c")
    with pytest.raises(ConfigError, match="split must be one of"):
        build_dataset("cuhk-pedes", tmp_path / "c", split="train")
    (tmp_path / "c" / "reid_raw.json").write_text(json.dumps([{"split": "test", "file_path": "a.jpg", "id": 1}]))
    with pytest.raises(DatasetError, match=r"entry 0 lacks \['captions'\]"):
        build_dataset("cuhk-pedes", tmp_path / "c")
    (tmp_path / "c" / "reid_raw.json").write_text(json.dumps(
        [{"split": "test", "file_path": "nope.jpg", "id": 1, "captions": ["x"]}]))
    with pytest.raises(DatasetError, match="1 images of reid_raw.json are missing .*imgs/nope.jpg"):
        build_dataset("cuhk-pedes", tmp_path / "c")
