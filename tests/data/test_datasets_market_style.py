"""Market-1501, DukeMTMC-reID, Occluded-DukeMTMC, CUHK03-NP and MSMT17 readers on trees of empty
files with the real naming and the official counts (PROTOCOLS.md, last section)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from fixture_trees import build_market_style, spread, touch
from vireid.data.datasets import build_dataset, plan_for_relpaths
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import Exclusion, evaluate_plan

MARKET = {"train": (12936, 751), "query": (3368, 750), "gallery": (15913, 751)}


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("market") / "Market-1501-v15.09.15"
    build_market_style(root, MARKET, 6, "market", junk=3819, distractors=2798)
    return root


@pytest.mark.slow
def test_market_counts_junk_and_distractors(market):
    ds = build_dataset("market1501", market.parent, counts="strict")  # ROOT may hold the dataset folder
    split = {sp: [s for s, x in zip(ds.test, ds.splits) if x == sp] for sp in ("query", "gallery")}
    assert len(ds.train) == 12936 and len({s.pid for s in ds.train}) == 751
    assert len(split["query"]) == 3368 and len({s.pid for s in split["query"]}) == 750
    assert len(split["gallery"]) == 15913  # 19,732 files less 3,819 junk
    assert all(s.pid != -1 for s in ds.test + ds.train)
    assert sum(s.pid == 0 for s in split["gallery"]) == 2798  # distractors stay
    plan = ds.eval_plan()
    assert plan.exclusion is Exclusion.SAME_ID_SAME_CAMERA and plan.cmc_mode == "image"
    assert plan.settings["counts"] == "official" and plan.settings["junk_dropped"] == 3819
    assert {s.camid for s in ds.test} == set(range(1, 7))


@pytest.mark.slow
def test_market_strict_counts_name_the_split(market, tmp_path):
    (market / "query" / sorted(p.name for p in (market / "query").iterdir())[0]).rename(tmp_path / "moved.jpg")
    try:
        with pytest.raises(DatasetError, match=r"query images 3367 \(official 3368\)"):
            build_dataset("market1501", market, counts="strict")
        ds = build_dataset("market1501", market)  # warn: loads and records the difference
        assert "differs from official" in ds.eval_plan().settings["counts"]
    finally:
        (tmp_path / "moved.jpg").rename(market / "query" / "moved.jpg")


def test_junk_dropped_distractors_negative_and_same_camera_removed(tmp_path):
    """One query (id 1, cam 1); gallery: id 1 cam 1 (removed), a distractor, id 1 cam 2, a junk image."""
    names = {"bounding_box_train": ["0002_c1s1_000001_00.jpg"], "query": ["0001_c1s1_000010_00.jpg"],
             "bounding_box_test": ["0001_c1s1_000011_00.jpg", "0000_c3s1_000012_00.jpg", "0001_c2s1_000013_00.jpg",
                                   "-1_c1s1_000014_00.jpg"]}
    touch(tmp_path / "m", [f"{k}/{n}" for k, v in names.items() for n in v])
    paths = ["query/0001_c1s1_000010_00.jpg", "bounding_box_test/0001_c1s1_000011_00.jpg",
             "bounding_box_test/0000_c3s1_000012_00.jpg", "bounding_box_test/0001_c2s1_000013_00.jpg"]
    feats = np.array([[0.0], [0.0], [1.0], [2.0]])  # same-camera match nearest, then the distractor
    plan, samples = plan_for_relpaths("market1501", paths, str(tmp_path / "m"))
    result = evaluate_plan(plan, samples, feats)
    assert result["mean"]["rank1"] == 0.0 and result["mean"]["rank5"] == 100.0
    assert result["mean"]["mAP"] == pytest.approx(50.0)  # the true match at rank 2 once the same camera is gone
    with pytest.raises(Exception, match="not test images"):
        plan_for_relpaths("market1501", paths + ["bounding_box_test/-1_c1s1_000014_00.jpg"], str(tmp_path / "m"))


@pytest.mark.slow
@pytest.mark.parametrize("name,counts,cams,style,folder", [
    ("dukemtmc", {"train": (16522, 702), "query": (2228, 702), "gallery": (17661, 1110)}, 8, "duke", "DukeMTMC-reID"),
    ("occluded-duke", {"train": (15618, 702), "query": (2210, 519), "gallery": (17661, 1110)}, 8, "duke",
     "Occluded_Duke"),
])
def test_duke_layouts_counts(tmp_path, name, counts, cams, style, folder):
    build_market_style(tmp_path / folder, counts, cams, style)
    ds = build_dataset(name, tmp_path, counts="strict")
    assert len(ds.train) == counts["train"][0] and ds.splits.count("query") == counts["query"][0]
    assert ds.splits.count("gallery") == counts["gallery"][0] and max(s.camid for s in ds.test) == 8


@pytest.mark.parametrize("version,counts", [("labeled", (7368, 1400, 5328)), ("detected", (7365, 1400, 5332))])
def test_cuhk03_market_copy_counts(tmp_path, version, counts):
    root = tmp_path / "cuhk03-np" / version
    build_market_style(root, {"train": (counts[0], 767), "query": (counts[1], 700), "gallery": (counts[2], 700)}, 2,
                       "cuhk03")
    ds = build_dataset("cuhk03-np", tmp_path, version=version, counts="strict")
    assert (len(ds.train), ds.splits.count("query"), ds.splits.count("gallery")) == counts
    assert {s.camid for s in ds.test} == {1, 2} and ds.eval_plan().settings["version"] == version


def test_cuhk03_protocol_mat(tmp_path):
    files = [f"1_{p:03d}_{c}_{k:02d}.png" for p in range(1, 7) for c in (1, 2) for k in (1, 2)]
    labels = np.array([int(f.split("_")[1]) for f in files])
    cams = np.array([int(f.split("_")[2]) for f in files])
    train = [i + 1 for i, p in enumerate(labels) if p <= 3]
    test = [i + 1 for i, p in enumerate(labels) if p > 3]
    query = [i for i in test if files[i - 1].endswith("_01.png") and cams[i - 1] == 1]
    gallery = [i for i in test if i not in query]
    cell = np.empty((len(files), 1), dtype=object)
    for i, f in enumerate(files):
        cell[i, 0] = np.array([f])
    scipy.io.savemat(tmp_path / "cuhk03_new_protocol_config_detected.mat",
                     {"filelist": cell, "labels": labels[:, None], "camId": cams[:, None],
                      "train_idx": np.array(train)[:, None], "query_idx": np.array(query)[:, None],
                      "gallery_idx": np.array(gallery)[:, None]})
    with pytest.raises(DatasetError, match="extract cuhk-03.mat into images_detected/"):
        build_dataset("cuhk03-np", tmp_path, version="detected")
    touch(tmp_path, [f"images_detected/{f}" for f in files])
    ds = build_dataset("cuhk03-np", tmp_path, version="detected", counts="off")
    assert len(ds.train) == 12 and ds.splits.count("query") == 3 and ds.splits.count("gallery") == 9
    assert ds.test[0].relpath == f"images_detected/{files[query[0] - 1]}" and ds.test[0].pid == 4


MSMT_OFFICIAL = {"train": (32621, 1041), "val": (2373, 1041), "query": (11659, 3060), "gallery": (82161, 3060)}


def _msmt_tree(root, version, sizes=MSMT_OFFICIAL):
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    lists = {k: spread(n, list(range(ids))) for k, (n, ids) in sizes.items()}
    rel = []
    for offset, (key, pids) in enumerate(lists.items()):
        folder = train_dir if key in ("train", "val") else test_dir
        lines = []
        for k, pid in enumerate(pids):
            cam = k % 15 + 1  # two-digit cameras: 10..15 must not read as 1
            path = f"{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_0303morning_{k:04d}_{offset}.jpg"
            lines.append(f"{path} {pid}\n")
            rel.append(f"{folder}/{path}")
        (root / f"list_{key}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"list_{key}.txt").write_text("".join(lines))
    touch(root, rel)


@pytest.mark.slow
def test_msmt17_v1_counts_and_two_digit_cameras(tmp_path):
    _msmt_tree(tmp_path / "MSMT17_V1", "V1")
    ds = build_dataset("msmt17", tmp_path, counts="strict")
    assert len(ds.train) == 32621 and len({s.pid for s in ds.train}) == 1041
    assert ds.splits.count("query") == 11659 and ds.splits.count("gallery") == 82161
    assert {s.camid for s in ds.test} == set(range(1, 16))
    assert ds.eval_plan().settings["version"] == "V1"


def test_msmt17_v2_folders_and_combined_val(tmp_path):
    _msmt_tree(tmp_path / "MSMT17_V2", "V2", {"train": (40, 5), "val": (10, 5), "query": (30, 15), "gallery": (60, 15)})
    ds = build_dataset("msmt17", tmp_path, counts="off")
    assert ds.eval_plan().settings["version"] == "V2" and ds.test[0].relpath.startswith("mask_test_v2/")
    assert {s.camid for s in ds.test} == set(range(1, 16))
    assert len(build_dataset("msmt17", tmp_path, combine_val=True, counts="off").train) == 50


def test_bad_layouts_name_what_is_wrong(tmp_path):
    with pytest.raises(DatasetError, match="no bounding_box_train/query/bounding_box_test"):
        build_dataset("market1501", tmp_path)
    touch(tmp_path / "m", ["bounding_box_train/0001_c1s1_000001_00.jpg", "query/0001_c7s1_000001_00.jpg",
                           "bounding_box_test/0001_c1s1_000002_00.jpg"])
    with pytest.raises(DatasetError, match="camera 7, expected 1..6"):
        build_dataset("market1501", tmp_path / "m")
    touch(tmp_path / "d", ["bounding_box_train/x.jpg", "query/0001_c1_f1.jpg", "bounding_box_test/0001_c2_f2.jpg"])
    with pytest.raises(DatasetError, match=r"'x.jpg' does not start with '<pid>_c<camera>'"):
        build_dataset("dukemtmc", tmp_path / "d")
    with pytest.raises(DatasetError, match="no train/test .* or mask_train_v2"):
        build_dataset("msmt17", tmp_path)
    with pytest.raises(DatasetError, match="neither cuhk03_new_protocol_config_labeled.mat"):
        build_dataset("cuhk03-np", tmp_path)
    with pytest.raises(ConfigError, match="version must be one of"):
        build_dataset("cuhk03-np", tmp_path, version="both")
    with pytest.raises(ConfigError, match="counts must be one of"):
        build_dataset("market1501", tmp_path / "m", counts="yes")
