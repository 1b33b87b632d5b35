"""LLCM reader (index-file and folder forms) and DEEN's protocol, on small trees from the vendored idx files."""

from __future__ import annotations

import os
import random
import re

import numpy as np
import pytest

from vireid.data.datasets import LLCM, build_dataset, plan_for_relpaths
from vireid.data.datasets.common import resource_path
from vireid.types import Modality
from vireid.errors import ConfigError, DatasetError, FeaturesError
from vireid.evaluation.protocols import Exclusion

TEST_IDS = 15
TRAIN_IDS = 3


def _rows(name):
    return [line.split() for line in resource_path("llcm", "idx", f"{name}.txt").read_text().splitlines() if line]


def _subset():
    """The vendored lines of the first few test and train identities."""
    test_ids = [int(x) for x in resource_path("llcm", "idx", "test_id.txt").read_text().split(",")][:TEST_IDS]
    out = {}
    for name in ("test_vis", "test_nir"):
        out[name] = [r for r in _rows(name) if int(r[0].split("/")[1]) in test_ids]
    for name in ("train_vis", "train_nir"):
        ids = sorted({int(r[0].split("/")[1]) for r in _rows(name)})[:TRAIN_IDS]
        out[name] = [r for r in _rows(name) if int(r[0].split("/")[1]) in ids]
    return test_ids, out


def _touch(root, relpaths):
    blank = os.path.join(os.path.dirname(root), "blank.jpg")
    open(blank, "a").close()
    for folder in {os.path.dirname(os.path.join(root, p)) for p in relpaths}:
        os.makedirs(folder, exist_ok=True)
    for p in relpaths:
        os.link(blank, os.path.join(root, p))  # hard links to one empty file: fast


def _folder_path(relpath):
    """vis/0250/0250_c03_..._vis.jpg -> test_vis/cam3/0250/0250_c03_..._vis.jpg"""
    mod, pid, name = relpath.split("/")
    cam = int(re.search(r"_c(\d+)_", name).group(1))
    return f"test_{mod}/cam{cam}/{pid}/{name}"


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    test_ids, rows = _subset()
    index_root = tmp_path_factory.mktemp("llcm_cam_index") / "LLCM"  # "cam" in the root on purpose
    (index_root / "idx").mkdir(parents=True)
    for name, lines in rows.items():
        (index_root / "idx" / f"{name}.txt").write_text("".join(f"{p} {lab}\n" for p, lab in lines))
    (index_root / "idx" / "test_id.txt").write_text("")  # empty, as in some copies: ids come from the lists
    _touch(index_root, [p for lines in rows.values() for p, _ in lines])
    folder_root = tmp_path_factory.mktemp("llcm_folder") / "LLCM"
    (folder_root / "idx").mkdir(parents=True)
    for name in ("train_vis", "train_nir"):
        (folder_root / "idx" / f"{name}.txt").write_text("".join(f"{p} {lab}\n" for p, lab in rows[name]))
    (folder_root / "idx" / "test_id.txt").write_text(",".join(f"{i:04d}" for i in test_ids) + "\n")
    _touch(folder_root, [p for n in ("train_vis", "train_nir") for p, _ in rows[n]])
    _touch(folder_root, [_folder_path(p) for n in ("test_vis", "test_nir") for p, _ in rows[n]])
    return {"index": index_root, "folder": folder_root, "test_ids": test_ids, "rows": rows}


def test_both_forms_read_the_same_images(trees):
    index = build_dataset("llcm", trees["index"])
    folder = build_dataset("llcm", trees["folder"])
    assert (index.form, folder.form) == ("index-file", "folder")
    assert index.test_ids == folder.test_ids == sorted(trees["test_ids"])
    assert sorted(index.sample_key(s) for s in index.test) == sorted(folder.sample_key(s) for s in folder.test)
    n_test = len(trees["rows"]["test_vis"]) + len(trees["rows"]["test_nir"])
    assert len(index.test) == n_test and len(index.train) == len(folder.train) > 0
    s = next(s for s in index.test if s.modality == Modality.INFRARED)
    name = s.relpath.split("/")[-1]
    assert s.pid == int(name[:4]) and s.camid == int(name.split("_")[1][1:]) and (trees["index"] / s.relpath).is_file()


@pytest.mark.parametrize("direction", ["infrared-to-visible", "visible-to-infrared"])
def test_both_forms_give_the_same_plan(trees, direction):
    plans = []
    for form in ("index", "folder"):
        ds = build_dataset("llcm", trees[form])
        plan = ds.eval_plan(direction=direction)
        assert plan.cmc_mode == "identity" and plan.exclusion is Exclusion.SAME_ID_SAME_CAMERA
        assert plan.settings["seeds"] == list(range(10)) and len(plan.trials) == 10
        plans.append([([ds.sample_key(ds.test[i]) for i in t.query], [ds.sample_key(ds.test[i]) for i in t.gallery])
                      for t in plan.trials])
    assert plans[0] == plans[1]
    q_mod = Modality.INFRARED if direction == "infrared-to-visible" else Modality.VISIBLE
    assert {k[0] for k in plans[0][0][0]} == {int(q_mod)} and {k[0] for k in plans[0][0][1]} == {1 - int(q_mod)}


def deen_query_and_gallery(data_path, mode, trial):
    """process_query_llcm / process_gallery_llcm of DEEN (ZYK100/LLCM DEEN/data_manager.py), as published.

    mode 1: visible cameras, mode 2: infrared cameras. Note DEEN parses the *full* path with
    ``split('cam')``, so ``data_path`` must not contain "cam".
    """
    vis = ["test_vis/cam%d" % c for c in range(1, 10)]
    nir = ["test_nir/cam%d" % c for c in (1, 2, 4, 5, 6, 7, 8, 9)]
    with open(os.path.join(data_path, "idx/test_id.txt")) as file:
        ids = file.read().splitlines()
        ids = ["%04d" % int(y) for y in ids[0].split(",")]
    query_cams, gallery_cams = (nir, vis) if mode == "ir2vis" else (vis, nir)
    files_q = []
    for id in sorted(ids):
        for cam in query_cams:
            img_dir = os.path.join(data_path, cam, id)
            if os.path.isdir(img_dir):
                files_q.extend(sorted([img_dir + "/" + i for i in os.listdir(img_dir)]))
    random.seed(trial)
    files_g = []
    for id in sorted(ids):
        for cam in gallery_cams:
            img_dir = os.path.join(data_path, cam, id)
            if os.path.isdir(img_dir):
                new_files = sorted([img_dir + "/" + i for i in os.listdir(img_dir)])
                files_g.append(random.choice(new_files))
    parse = lambda p: (int(p.split("cam")[1][2:6]), int(p.split("cam")[1][0]))  # noqa: E731  (pid, cam)
    return files_q, files_g, [parse(p) for p in files_q]


@pytest.mark.parametrize("direction,mode", [("infrared-to-visible", "ir2vis"), ("visible-to-infrared", "vis2ir")])
def test_seeded_gallery_equals_deen(trees, direction, mode):
    root = str(trees["folder"])
    assert "cam" not in root
    ds = build_dataset("llcm", root)
    plan = ds.eval_plan(direction=direction, trials=3)
    for t in range(3):
        files_q, files_g, parsed = deen_query_and_gallery(root, mode, t)
        assert [ds.test[i].path for i in plan.trials[t].query] == [p.replace("/", os.sep) for p in files_q]
        assert [ds.test[i].path for i in plan.trials[t].gallery] == [p.replace("/", os.sep) for p in files_g]
        assert [(ds.test[i].pid, ds.test[i].camid) for i in plan.trials[t].query] == parsed
    galleries = {tuple(t.gallery) for t in plan.trials}
    assert len(galleries) == 3


def test_vendored_protocol_sizes():
    ds = LLCM.vendored()
    vis = _rows("test_vis")
    pairs = {(p.split("/")[1], re.search(r"_c(\d+)_", p).group(1)) for p, _ in vis}
    plan = ds.eval_plan()
    assert len(plan.trials[0].query) == 7166 and all(len(t.gallery) == len(pairs) for t in plan.trials)
    assert len(ds.eval_plan(direction="visible-to-infrared").trials[0].query) == 8680
    assert len(ds.test_ids) == 351


def test_features_file_in_either_form_without_root():
    index_paths = [p for n in ("test_vis", "test_nir") for p, _ in _rows(n)]
    plan, samples = plan_for_relpaths("llcm", index_paths)
    folder_paths = [_folder_path(p) for p in index_paths]
    plan2, samples2 = plan_for_relpaths("llcm", folder_paths)
    assert all((a.query == b.query).all() and (a.gallery == b.gallery).all() for a, b in zip(plan.trials, plan2.trials))
    assert samples2[0].relpath == folder_paths[0] and samples2[0].pid == samples[0].pid
    with pytest.raises(FeaturesError, match=r"lack 1 of the \d+ images the llcm protocol uses"):
        plan_for_relpaths("llcm", [p for p in index_paths if p != samples[plan.trials[0].query[5]].relpath])
    with pytest.raises(FeaturesError, match=r"not test images of the llcm protocol.*vis/0250/"):
        plan_for_relpaths("llcm", index_paths + [_rows("train_vis")[0][0]])


def test_bad_layouts_and_paths(tmp_path, trees):
    with pytest.raises(DatasetError, match=r"does not exist.*index-file form.*folder form"):
        build_dataset("llcm", tmp_path / "none")
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match=r"neither form found.*missing .*idx/train_vis.txt"):
        build_dataset("llcm", tmp_path / "x")
    (tmp_path / "y" / "test_vis").mkdir(parents=True)
    (tmp_path / "y" / "test_nir").mkdir()
    with pytest.raises(DatasetError, match=r"folder form under .* lacks .*idx/train_vis.txt"):
        build_dataset("llcm", tmp_path / "y")
    with pytest.raises(DatasetError, match="disagree on the camera"):
        LLCM.parse_relpath("test_vis/cam5/0250/0250_c03_s1_f1_vis.jpg")
    with pytest.raises(DatasetError, match="disagree on the modality"):
        LLCM.parse_relpath("nir/0250/0250_c03_s1_f1_vis.jpg")
    with pytest.raises(DatasetError, match="no camera token"):
        LLCM.parse_relpath("vis/0250/img.jpg")
    s = LLCM.parse_relpath("test_nir/cam6/0891/img.jpg", root="/data/cam1")
    assert (s.pid, s.camid, s.modality) == (891, 6, Modality.INFRARED)
    with pytest.raises(ConfigError, match="direction must be one of"):
        LLCM.vendored().eval_plan(direction="thermal-to-visible")


def test_reader_ignores_cam_in_root(trees):
    ds = build_dataset("llcm", trees["index"])
    assert "cam" in str(trees["index"])
    cams = np.array([s.camid for s in ds.test])
    names = [s.relpath.split("/")[-1] for s in ds.test]
    assert (cams == np.array([int(n.split("_")[1][1:]) for n in names])).all()
