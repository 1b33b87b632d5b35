"""The main job end to end at toy size: data, training, three methods under one protocol, report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vireid.cli import main

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "demo_cpu.yaml"


@pytest.mark.slow
def test_demo_writes_report_and_reuses_its_data(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--config", str(RECIPE), "--ids", "12", "--images-per-camera", "3",
            "--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0", "--set", "optim.milestones=[]",
            "--set", "data.batches_per_epoch=2", "--set", "data.num_workers=0", "--set", "eval.every=1",
            "--set", "data.val_fraction=0.3", "--set", "data.num_ids=4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| method | rank-1 |" in printed and "no flip, no re-ranking" in printed
    report = out / "report"
    assert sorted(p.name for p in report.iterdir()) == ["activations.png", "cmc.png", "curves.png", "distances.png",
                                                        "gradcam.png", "ranked_list.png", "results.json", "results.md",
                                                        "tsne.png"]
    summary = json.loads((report / "results.json").read_text())
    assert len(summary["methods"]) == 3
    for metrics in summary["methods"].values():
        assert 0.0 <= metrics["rank1"] <= metrics["rank5"] <= metrics["rank20"] <= 100.0
    assert summary["protocol"]["sampling"] == "official" and summary["protocol"]["num_trials"] == 10
    assert "table shipped with the dataset" in summary["protocol"]["gallery_table"]
    test_ids = {int(x) for x in (out / "data" / "exp" / "test_id.txt").read_text().strip().split(",")}
    gallery_ids = {int(p.name) for cam in ("cam1", "cam2", "cam4", "cam5") for p in (out / "data" / cam).iterdir()}
    gallery_ids = len(gallery_ids & test_ids)
    assert summary["chance_rank1"] == pytest.approx(100.0 / gallery_ids)
    for curve in summary["cmc"].values():
        assert len(curve) == 20 and all(a <= b + 1e-9 for a, b in zip(curve, curve[1:]))

    # a second call reuses the data and the finished run
    mtime = (out / "data" / "meta.json").stat().st_mtime
    assert main(argv) == 0
    assert (out / "data" / "meta.json").stat().st_mtime == mtime
    capsys.readouterr()


def test_demo_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "mine.txt").write_text("not a dataset")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--config", str(RECIPE)]) == 2
    assert "is not a synthetic dataset written by vireid" in capsys.readouterr().err
