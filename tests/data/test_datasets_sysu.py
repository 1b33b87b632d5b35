"""SYSU-MM01 reader and protocol on a tree of empty files with the real split files and image counts."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from vireid.data.datasets import SYSUMM01, build_dataset, plan_for_relpaths
from vireid.data.datasets.common import resource_path
from vireid.types import Modality
from vireid.errors import ConfigError, DatasetError, FeaturesError
from vireid.evaluation.protocols import Exclusion, evaluate_plan


def _ids(name):
    return [int(x) for x in resource_path("sysu-mm01", "exp", f"{name}.txt").read_text().split(",")]


def _table():
    return scipy.io.loadmat(str(resource_path("sysu-mm01", "official-eval", "rand_perm_cam.mat")))["rand_perm_cam"]


def _count(table, cam, pid):
    cell = table[cam - 1, 0]
    return cell[pid - 1, 0].shape[1] if pid - 1 < cell.shape[0] and cell[pid - 1, 0].size else 0


@pytest.fixture(scope="module")
def sysu_root(tmp_path_factory):
    """Real test ids with the official per-camera counts; one image per camera for train/val ids.

    The root path contains "cam" on purpose: nothing may parse it.
    """
    root = tmp_path_factory.mktemp("camera_cam3") / "SYSU-MM01"
    blank = root.parent / "blank.jpg"
    blank.touch()
    table = _table()
    (root / "exp").mkdir(parents=True)
    for name in ("train_id", "val_id", "test_id", "available_id"):
        shutil.copy(resource_path("sysu-mm01", "exp", f"{name}.txt"), root / "exp" / f"{name}.txt")
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir()
    for pid in _ids("test_id"):
        for cam in range(1, 7):
            n = _count(table, cam, pid)
            if n:
                d = root / f"cam{cam}" / f"{pid:04d}"
                d.mkdir()
                for i in range(1, n + 1):
                    os.link(blank, d / f"{i:04d}.jpg")  # hard links to one empty file: fast
    for pid in _ids("train_id")[:40] + _ids("val_id")[:10]:
        for cam in range(1, 7):
            if _count(table, cam, pid):
                (root / f"cam{cam}" / f"{pid:04d}").mkdir()
                (root / f"cam{cam}" / f"{pid:04d}" / "0001.jpg").touch()
    (root / "cam1" / "0006" / "Thumbs.db").touch()  # not an image: ignored
    return root


@pytest.fixture(scope="module")
def sysu(sysu_root):
    return build_dataset("sysu-mm01", sysu_root)


def test_reader_splits_and_modalities(sysu, sysu_root):
    assert len(sysu.test) == 10_578 and sysu.root == str(sysu_root)
    assert {s.pid for s in sysu.test} == set(_ids("test_id"))
    train_ids = set(_ids("train_id")) | set(_ids("val_id"))
    assert {s.pid for s in sysu.train} <= train_ids and not {s.pid for s in sysu.train} & set(_ids("test_id"))
    assert {s.pid for s in sysu.train} & set(_ids("val_id"))  # val ids train too
    for s in sysu.test[:50] + sysu.train[:50]:
        cam = int(s.relpath.split("/")[0][3:])
        assert s.camid == cam and s.modality == (Modality.INFRARED if cam in (3, 6) else Modality.VISIBLE)
        assert s.path == os.path.join(str(sysu_root), s.relpath) and Path(s.path).is_file()
    assert not any(s.relpath.endswith("Thumbs.db") for s in sysu.test)


@pytest.mark.parametrize("mode,shots,gallery_size,cams", [
    ("all", 1, 301, {1, 2, 4, 5}), ("indoor", 1, 112, {1, 2}),
    ("all", 10, 3010, {1, 2, 4, 5}), ("indoor", 10, 1120, {1, 2})])
def test_official_plan_counts(sysu, mode, shots, gallery_size, cams):
    plan = sysu.eval_plan(mode=mode, shots=shots)
    assert len(plan.trials) == 10 and plan.cmc_mode == "identity"
    assert plan.exclusion is Exclusion.SYSU_SAME_LOCATION
    for trial in plan.trials:
        query = [sysu.test[i] for i in trial.query]
        assert len(query) == 3803 and {s.camid for s in query} == {3, 6}
        assert sum(s.camid == 3 for s in query) == 1883
        gallery = [sysu.test[i] for i in trial.gallery]
        assert len(gallery) == gallery_size and {s.camid for s in gallery} == cams
        per_pair = {}
        for s in gallery:
            per_pair[(s.camid, s.pid)] = per_pair.get((s.camid, s.pid), 0) + 1
        assert set(per_pair.values()) == {shots}
    assert plan.settings["sampling"] == "official" and "official kit table" in plan.settings["gallery_table"]


def test_official_gallery_follows_the_table_rows(sysu):
    table = _table()
    plan = sysu.eval_plan(shots=10)
    for t in (0, 7):
        gallery = [sysu.test[i] for i in plan.trials[t].gallery]
        # get_testing_set.m order: cameras, ids ascending, then the row's order
        expected = [f"cam{cam}/{pid:04d}/{k:04d}.jpg" for cam in (1, 2, 4, 5) for pid in _ids("test_id")
                    if _count(table, cam, pid) for k in table[cam - 1, 0][pid - 1, 0][t, :10]]
        assert [s.relpath for s in gallery] == expected


def test_trials_are_deterministic_and_differ(sysu):
    for sampling in ("official", "seeded"):
        a, b = sysu.eval_plan(sampling=sampling), sysu.eval_plan(sampling=sampling)
        assert all((x.gallery == y.gallery).all() for x, y in zip(a.trials, b.trials))
        assert len({tuple(t.gallery) for t in a.trials}) == 10
    official, seeded = sysu.eval_plan(), sysu.eval_plan(sampling="seeded")
    assert all(set(o.gallery) != set(s.gallery) for o, s in zip(official.trials, seeded.trials))
    assert seeded.settings["seeds"] == list(range(10)) and seeded.settings["gallery_table"] is None


def test_seeded_equals_mangye16_on_disk(sysu, sysu_root):
    """process_gallery_sysu of mangye16/Cross-Modal-Re-ID-baseline, with os.listdir on the tree."""
    plan = sysu.eval_plan(sampling="seeded", trials=2)
    for trial in range(2):
        random.seed(trial)
        files_rgb = []
        for id in sorted("%04d" % x for x in _ids("test_id")):
            for cam in ["cam1", "cam2", "cam4", "cam5"]:
                img_dir = os.path.join(str(sysu_root), cam, id)
                if os.path.isdir(img_dir):
                    new_files = sorted([img_dir + "/" + i for i in os.listdir(img_dir) if i.endswith(".jpg")])
                    files_rgb.append(random.choice(new_files))
        assert [sysu.test[i].path.replace(os.sep, "/") for i in plan.trials[trial].gallery] == files_rgb


def test_cam3_queries_ignore_cam2_gallery(sysu):
    """Each cam-2 image equals its identity's queries; every cam-1/4/5 image is a decoy close to the *next* test
    identity. Cam-6 queries whose identity has a cam-2 image hit rank 1; cam-3 queries, blind to cam 2, never do."""
    ids = sorted({s.pid for s in sysu.test})
    decoy_of = dict(zip(ids, ids[1:] + ids[:1]))
    dim = max(ids) + 2
    feats = np.zeros((len(sysu.test), dim))
    for i, s in enumerate(sysu.test):
        if s.camid in (1, 4, 5):
            feats[i, decoy_of[s.pid]] = 1.0
            feats[i, -1] = 0.01
        else:
            feats[i, s.pid] = 1.0
    plan = sysu.eval_plan(trials=1)
    trial = plan.trials[0]
    has_decoy = {sysu.test[i].pid for i in trial.gallery if sysu.test[i].camid in (1, 4, 5)}
    assert has_decoy == set(ids)
    cam2_ids = {sysu.test[i].pid for i in trial.gallery if sysu.test[i].camid == 2}
    expected = sum(sysu.test[i].camid == 6 and sysu.test[i].pid in cam2_ids for i in trial.query)
    result = evaluate_plan(plan, sysu.test, feats)
    assert result["trials"][0]["num_valid"] == 3803
    assert result["trials"][0]["rank1"] == pytest.approx(100 * expected / 3803)
    assert 0 < expected < 1920


def test_count_disagreement_names_the_folder(sysu_root):
    victim = sysu_root / "cam4" / "0010" / "0003.jpg"
    victim.unlink()
    try:
        ds = build_dataset("sysu-mm01", sysu_root)
        expected = r"cam4/0010 \(\d+ images, table \d+\).*cam4 1,918, .*found .*cam4 1,917"
        with pytest.raises(DatasetError, match=expected):
            ds.eval_plan()
        assert len(ds.eval_plan(sampling="seeded").trials) == 10  # seeded draws from the files on disk
        assert len(ds.eval_plan(mode="indoor").trials) == 10  # cam 4 is not used indoors
    finally:
        victim.touch()


def test_dataset_table_takes_precedence(tmp_path):
    """Data in the SYSU layout that ships exp/rand_perm_cam.mat (like the synthetic generator's)."""
    root = tmp_path / "syn"
    (root / "exp").mkdir(parents=True)
    for name, ids in (("train_id", [1, 2]), ("val_id", [3]), ("test_id", [4, 5, 6])):
        (root / "exp" / f"{name}.txt").write_text(",".join(map(str, ids)) + "\n")
    counts = {(cam, pid): 3 + (pid + cam) % 3 for cam in range(1, 7) for pid in range(1, 7)}
    for (cam, pid), n in counts.items():
        d = root / f"cam{cam}" / f"{pid:04d}"
        d.mkdir(parents=True)
        for i in range(1, n + 1):
            (d / f"{i:04d}.jpg").touch()
    rng = np.random.default_rng(0)
    table = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        cell = np.empty((6, 1), dtype=object)
        for pid in range(1, 7):
            cell[pid - 1, 0] = np.stack([rng.permutation(counts[(cam, pid)]) + 1 for _ in range(10)]).astype(np.uint8)
        table[cam - 1, 0] = cell
    scipy.io.savemat(str(root / "exp" / "rand_perm_cam.mat"), {"rand_perm_cam": table})
    ds = build_dataset("sysu-mm01", root)
    plan = ds.eval_plan(shots=10)  # fewer than 10 images per camera: all of them, in table order
    assert "shipped with the dataset" in plan.settings["gallery_table"]
    first = [ds.test[i].relpath for i in plan.trials[0].gallery]
    expected = [f"cam{cam}/{pid:04d}/{k:04d}.jpg" for cam in (1, 2, 4, 5) for pid in (4, 5, 6)
                for k in table[cam - 1, 0][pid - 1, 0][0]]
    assert first == expected
    # a features file of this data: --root gives the dataset's table; without it the official counts fail
    relpaths = [s.relpath for s in ds.test]
    plan2, samples = plan_for_relpaths("sysu-mm01", relpaths, str(root), shots=10)
    assert [samples[i].relpath for i in plan2.trials[0].gallery] == expected
    with pytest.raises(DatasetError, match="disagree with the official kit table"):
        plan_for_relpaths("sysu-mm01", relpaths)


def test_features_paths_against_disk_reference(sysu, sysu_root):
    relpaths = [s.relpath for s in sysu.test]
    plan, samples = plan_for_relpaths("sysu-mm01", relpaths[::-1], str(sysu_root))
    assert [s.relpath for s in samples] == relpaths[::-1]
    query = sysu.test[plan_for_relpaths("sysu-mm01", relpaths, str(sysu_root))[0].trials[0].query[0]].relpath
    with pytest.raises(FeaturesError, match=rf"lack 1 of the \d+ images the sysu-mm01 protocol uses .*{query}"):
        plan_for_relpaths("sysu-mm01", [p for p in relpaths if p != query], str(sysu_root))
    # an image no trial draws may be absent: the official table picks the same gallery either way
    unused = set(range(len(relpaths))) - set(plan.used_indices())
    assert unused
    plan_for_relpaths("sysu-mm01", [p for i, p in enumerate(relpaths[::-1]) if i != min(unused)], str(sysu_root))
    with pytest.raises(FeaturesError, match="not test images of the sysu-mm01 protocol"):
        plan_for_relpaths("sysu-mm01", relpaths + [sysu.train[0].relpath], str(sysu_root))


def test_bad_layouts_name_what_is_missing(tmp_path, sysu_root):
    with pytest.raises(DatasetError, match=r"does not exist.*cam\{1..6\}/\{pid:04d\}"):
        build_dataset("sysu-mm01", tmp_path / "nowhere")
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match=r"missing folder\(s\) .*a/exp"):
        build_dataset("sysu-mm01", tmp_path / "a")
    (tmp_path / "a" / "exp").mkdir()
    (tmp_path / "a" / "exp" / "train_id.txt").write_text("1\n")
    with pytest.raises(DatasetError, match=r"missing file\(s\) .*val_id.txt.*test_id.txt"):
        build_dataset("sysu-mm01", tmp_path / "a")
    for name in ("val_id", "test_id"):
        (tmp_path / "a" / "exp" / f"{name}.txt").write_text("2,x\n" if name == "test_id" else "3\n")
    with pytest.raises(DatasetError, match=r"missing folder\(s\) .*a/cam1"):
        build_dataset("sysu-mm01", tmp_path / "a")
    for cam in range(1, 7):
        (tmp_path / "a" / f"cam{cam}").mkdir()
    with pytest.raises(DatasetError, match=r"test_id.txt holds non-integer entries: x"):
        build_dataset("sysu-mm01", tmp_path / "a")
    (tmp_path / "a" / "exp" / "test_id.txt").write_text("2\n")
    with pytest.raises(DatasetError, match="no images of the 1 test ids"):
        build_dataset("sysu-mm01", tmp_path / "a")


def test_bad_settings(sysu):
    with pytest.raises(ConfigError, match="mode must be one of"):
        sysu.eval_plan(mode="outdoor")
    with pytest.raises(ConfigError, match="shots must be 1"):
        sysu.eval_plan(shots=5)
    with pytest.raises(ConfigError, match="sampling must be"):
        sysu.eval_plan(sampling="random")
    with pytest.raises(ConfigError, match=r"trials must be an integer in 1..10"):
        sysu.eval_plan(trials=11)


def test_relpath_parsing_uses_tokens():
    s = SYSUMM01.parse_relpath("cam3\\0006\\0001.jpg", root="/data/cam6_runs")
    assert (s.relpath, s.pid, s.camid, s.modality) == ("cam3/0006/0001.jpg", 6, 3, Modality.INFRARED)
    assert s.path == os.path.join("/data/cam6_runs", "cam3/0006/0001.jpg")
    assert SYSUMM01.parse_relpath("./cam1/0120/img_cam6.jpg").camid == 1
    for bad in ("0006/0001.jpg", "cam7/0006/0001.jpg", "cam3/abc/0001.jpg"):
        with pytest.raises(DatasetError, match="is not cam"):
            SYSUMM01.parse_relpath(bad)


def test_synthetic_generator_output(tiny_sysu):
    """The synthetic generator's SYSU-layout output, with the table it ships, through the same reader."""
    ds = build_dataset("sysu-mm01", tiny_sysu)
    assert ds.test and ds.train and not {s.pid for s in ds.test} & {s.pid for s in ds.train}
    for shots in (1, 10):
        plan = ds.eval_plan(shots=shots)
        assert "shipped with the dataset" in plan.settings["gallery_table"]
        pairs = {(s.camid, s.pid) for s in ds.test if s.camid in (1, 2, 4, 5)}
        for trial in plan.trials:
            gallery = [ds.test[i] for i in trial.gallery]
            assert {(s.camid, s.pid) for s in gallery} == pairs
            assert len(gallery) == (len(pairs) if shots == 1 else sum(s.camid in (1, 2, 4, 5) for s in ds.test))
    relpaths = [s.relpath for s in ds.test]
    plan, samples = plan_for_relpaths("sysu-mm01", relpaths, str(tiny_sysu), sampling="seeded")
    direct = ds.eval_plan(sampling="seeded")
    assert all([samples[i].relpath for i in a.gallery] == [ds.test[i].relpath for i in b.gallery]
               for a, b in zip(plan.trials, direct.trials))
