"""RegDB reader and protocol on a tree of empty files built from the vendored idx files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from vireid.data.datasets import RegDB, build_dataset, plan_for_relpaths
from vireid.data.datasets.common import resource_path
from vireid.types import Modality
from vireid.errors import ConfigError, DatasetError, FeaturesError
from vireid.evaluation.protocols import Exclusion, Trial, evaluate_plan


def _list(split, mod, t):
    text = resource_path("regdb", "idx", f"{split}_{mod}_{t}.txt").read_text()
    return [line.split()[0] for line in text.splitlines()]


LINES = 30  # the disk fixture keeps the first 30 lines (3 identities) of every idx file


@pytest.fixture(scope="module")
def regdb_root(tmp_path_factory):
    """A small RegDB tree with its own idx/ files: the first lines of the vendored ones."""
    root = tmp_path_factory.mktemp("cam_regdb") / "RegDB"
    (root / "idx").mkdir(parents=True)
    blank = root.parent / "blank.bmp"
    blank.touch()
    paths = set()
    for f in resource_path("regdb", "idx").iterdir():
        lines = f.read_text().splitlines()[:LINES]
        (root / "idx" / f.name).write_text("\n".join(lines) + "\n")
        paths.update(line.split()[0] for line in lines)
    for folder in {str((root / p).parent) for p in paths}:
        os.makedirs(folder, exist_ok=True)
    for p in paths:
        os.link(blank, root / p)  # hard links to one empty file: fast
    return root


def test_reader_train_split_and_test_images(regdb_root):
    ds = build_dataset("regdb", regdb_root, trial=3)
    assert [s.relpath for s in ds.train] == _list("train", "visible", 3)[:LINES] + _list("train", "thermal", 3)[:LINES]
    assert {s.modality for s in ds.train[LINES:]} == {Modality.INFRARED} and len({s.pid for s in ds.train}) == 3
    assert len(ds.test) == len({s.relpath for s in ds.test}) == len(
        {p for t in range(1, 11) for m in ("visible", "thermal") for p in _list("test", m, t)[:LINES]})
    # raw identity ids from the folder, consistent with the per-file contiguous labels
    s = ds.train[0]
    assert s.pid == int(s.relpath.split("/")[1]) and s.camid == 1 and (regdb_root / s.relpath).is_file()
    assert str(regdb_root / "idx") in ds.lists_source
    vendored = RegDB.vendored(trial=3)
    assert len(vendored.train) == 4120 and len(vendored.test) == 8240
    assert len({s.pid for s in vendored.train}) == 206 and "vendored" in vendored.lists_source


@pytest.mark.parametrize("direction", ["visible-to-thermal", "thermal-to-visible"])
def test_plan_directions(regdb_root, direction):
    q_mod, g_mod = ("visible", "thermal") if direction == "visible-to-thermal" else ("thermal", "visible")
    for ds, n in ((build_dataset("regdb", regdb_root, trial=2), LINES), (RegDB.vendored(trial=2), 2060)):
        plan = ds.eval_plan(direction=direction)
        assert plan.cmc_mode == "image" and plan.exclusion is Exclusion.NONE
        assert plan.settings["trials"] == [2] and plan.settings["direction"] == direction
        (trial,) = plan.trials
        assert [ds.test[i].relpath for i in trial.query] == _list("test", q_mod, 2)[:n]
        assert [ds.test[i].relpath for i in trial.gallery] == _list("test", g_mod, 2)[:n]
    assert len({ds.test[i].pid for i in trial.query}) == 206


def test_several_trials_and_image_level_cmc(loop_reference_regdb):
    ds = RegDB.vendored()
    plan = ds.eval_plan(trials="all", allow_other_trials=True)
    assert plan.settings["trials"] == list(range(1, 11)) and len(plan.trials) == 10
    assert len(set(tuple(t.query) for t in plan.trials)) == 10
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((413, 8))  # RegDB ids run 1..412
    feats = np.array([centers[s.pid] for s in ds.test]) + rng.standard_normal((len(ds.test), 8))
    sub = ds.eval_plan(trials=[1, 4], allow_other_trials=True)
    sub.trials = [Trial(t.query[::7], t.gallery) for t in sub.trials]  # every 7th query keeps the loop short
    result = evaluate_plan(sub, ds.test, feats)
    pids = np.array([s.pid for s in ds.test])
    for t, trial in enumerate(sub.trials):
        q, g = trial.query, trial.gallery
        dist = np.sqrt(((feats[q][:, None] - feats[g][None]) ** 2).sum(-1))
        cmc, m_ap, m_inp = loop_reference_regdb(dist, pids[q], pids[g])
        got = result["trials"][t]
        assert [got[f"rank{k}"] for k in (1, 5, 10, 20)] == pytest.approx([100 * cmc[k - 1] for k in (1, 5, 10, 20)])
        assert got["mAP"] == pytest.approx(100 * m_ap) and got["mINP"] == pytest.approx(100 * m_inp)
    assert result["mean"]["mAP"] == pytest.approx(np.mean([t["mAP"] for t in result["trials"]]))


@pytest.fixture
def loop_reference_regdb():
    def eval_regdb(distmat, q_pids, g_pids):
        """eval_regdb of mangye16/Cross-Modal-Re-ID-baseline (no removal: one camera per modality)."""
        indices = np.argsort(distmat, axis=1)
        matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
        all_cmc, all_ap, all_inp = [], [], []
        for i in range(len(q_pids)):
            raw = matches[i]
            cmc = raw.cumsum()
            pos = np.where(raw == 1)[0].max()
            all_inp.append(cmc[pos] / (pos + 1.0))
            cmc[cmc > 1] = 1
            all_cmc.append(cmc[:20])
            tmp = raw.cumsum() / np.arange(1.0, len(raw) + 1) * raw
            all_ap.append(tmp.sum() / raw.sum())
        return np.mean(all_cmc, 0), np.mean(all_ap), np.mean(all_inp)

    return eval_regdb


def test_features_file_against_vendored_lists():
    rel = _list("test", "visible", 5) + _list("test", "thermal", 5)
    plan, samples = plan_for_relpaths("regdb", rel, options={"trial": 5}, direction="thermal-to-visible")
    assert [samples[i].relpath for i in plan.trials[0].query] == _list("test", "thermal", 5)
    with pytest.raises(FeaturesError, match=r"lack \d+ of the \d+ images the regdb protocol uses.*Visible/"):
        plan_for_relpaths("regdb", rel, options={"trial": 5}, trials=[5, 6], allow_other_trials=True)
    with pytest.raises(FeaturesError, match=r"1 of 4121 paths are not test images of the regdb protocol.*Visible/1/x"):
        plan_for_relpaths("regdb", rel + ["Visible/1/x.bmp"], options={"trial": 5})
    with pytest.raises(ConfigError, match=r"unknown config key dataset 'regdb'\.split; valid keys: trial"):
        plan_for_relpaths("regdb", rel, options={"split": 5})


def test_missing_idx_file_is_named(regdb_root, tmp_path):
    root = tmp_path / "RegDB"
    root.mkdir()
    for folder in ("Visible", "Thermal"):
        (root / folder).symlink_to(regdb_root / folder, target_is_directory=True)
    shutil.copytree(regdb_root / "idx", root / "idx")
    assert len(build_dataset("regdb", root).train) == 2 * LINES
    (root / "idx" / "test_thermal_7.txt").unlink()
    with pytest.raises(DatasetError, match=r"missing file\(s\) .*test_thermal_7.txt"):
        build_dataset("regdb", root)
    (root / "idx" / "test_thermal_7.txt").write_text("Thermal/1/a.bmp x\n")
    with pytest.raises(DatasetError, match=r"test_thermal_7.txt line 1: expected 'relative/path label'"):
        build_dataset("regdb", root)


def test_bad_layouts_and_settings(regdb_root, tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*Visible/\{pid\}/\*.bmp"):
        build_dataset("regdb", tmp_path / "none")
    (tmp_path / "r" / "Visible").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"missing folder\(s\) .*r/Thermal"):
        build_dataset("regdb", tmp_path / "r")
    (tmp_path / "r" / "Thermal").mkdir()
    # without ROOT/idx the vendored lists apply: all their 8,240 images are missing here
    with pytest.raises(DatasetError, match=r"8240 images listed in the idx files are missing.*Thermal/"):
        build_dataset("regdb", tmp_path / "r")
    with pytest.raises(ConfigError, match="trial must be in 1..10"):
        build_dataset("regdb", regdb_root, trial=11)
    ds = build_dataset("regdb", regdb_root)
    with pytest.raises(ConfigError, match="direction must be one of"):
        ds.eval_plan(direction="visible-to-infrared")
    with pytest.raises(ConfigError, match="trials must be 'all' or integers in 1..10"):
        ds.eval_plan(trials=[0])


def test_relpath_parsing():
    s = RegDB.parse_relpath("Thermal/88/female_back_t_01102_88.bmp", root="/data/cam")
    assert (s.pid, s.camid, s.modality) == (88, 2, Modality.INFRARED)
    assert RegDB.parse_relpath("visible\\5\\a.bmp").modality == Modality.VISIBLE
    with pytest.raises(DatasetError, match=r"is not \{Visible,Thermal\}/\{pid\}/<file>"):
        RegDB.parse_relpath("Infrared/5/a.bmp")


def test_other_trials_are_refused_unless_asked():
    """A model trained on trial 1 has trained on most test identities of trials 2-10 (inflated numbers)."""
    ds = RegDB.vendored(trial=3)
    with pytest.raises(ConfigError, match=r"refusing to score trials \[1, 2, 4, 5, 6, 7, 8, 9, 10\] with the split "
                                          r"of trial 3: each RegDB trial is its own random identity split"):
        ds.eval_plan(trials="all")
    with pytest.raises(ConfigError, match="allow_other_trials=true"):
        ds.eval_plan(trials=[4])
    assert ds.eval_plan(trials=[3]).settings["trials"] == [3]  # its own trial is fine
    plan = ds.eval_plan(trials=[3, 4], allow_other_trials=True)
    assert plan.settings["other_trials_allowed"] is True and len(plan.trials) == 2
    train = {s.pid for s in ds.train}
    other_test = {ds.test[i].pid for i in plan.trials[1].query}
    assert len(train & other_test) > 100  # why: trial 4's test identities were trained on under trial 3


def test_protocol_text_counts_the_split(regdb_root):
    assert "random 206/206 (train/test) identity split" in RegDB.vendored().eval_plan().settings["protocol"]
    small = build_dataset("regdb", regdb_root, trial=1).eval_plan().settings["protocol"]
    assert "random 206/206" not in small
