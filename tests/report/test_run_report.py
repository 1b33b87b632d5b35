"""Reports for a tiny trained run: every file written, PNGs decode at sane sizes, numbers = the evaluator's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from vireid.cli import main


def _recipe(tmp_path, root, name):
    cfg = {
        "name": name, "output_dir": str(tmp_path / "runs"),
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "optim": {"lr": 0.01, "epochs": 2, "warmup_epochs": 0, "milestones": []},
        "eval": {"every": 1, "protocol": {"mode": "all", "shots": 1, "sampling": "official"}},
        "runtime": {"device": "cpu", "precision": "bf16"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _png(path, min_size=(100, 80)):
    with Image.open(path) as img:
        img.load()  # decodes
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1], (path, img.size)
        assert img.size[0] <= 4000 and img.size[1] <= 4000
        assert np.asarray(img.convert("L")).std() > 1.0  # not a blank picture


@pytest.mark.slow
def test_report_and_test_report_and_comparison(tiny_sysu, tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["train", "--config", str(_recipe(tmp_path, tiny_sysu, name))]) == 0
    run_a, run_b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    summary = json.loads((run_a / "summary.json").read_text())
    assert summary["best"]["split"] == "validation"
    assert "Not test-set numbers" in summary["best"]["selected_by"]
    capsys.readouterr()

    assert main(["test", "--run", str(run_a), "--json", "--report"]) == 0
    tested = json.loads(capsys.readouterr().out)
    report = run_a / "report"
    expected = {"results.md", "results.json", "cmc.png", "ranked_list.png", "curves.png", "tsne.png", "distances.png",
                "gradcam.png", "activations.png"}
    assert {p.name for p in report.iterdir()} == expected
    for png in expected - {"results.md", "results.json"}:
        _png(report / png)
    written = json.loads((report / "results.json").read_text())
    assert written["mean"] == tested["mean"] and "cmc" in written and "ranked" not in tested
    assert written["cmc"][0] == pytest.approx(tested["mean"]["rank1"])
    assert written["cmc"][4] == pytest.approx(tested["mean"]["rank5"])
    shown = written["shown_ranked_lists"]
    assert len(shown) == 8 and all(0 < len(s["ranked"]) <= 10 for s in shown)
    for s in shown:  # green/red = same identity folder as the query
        assert s["correct"] == [g.split("/")[1] == s["query"].split("/")[1] for g in s["ranked"]]
        if s["query"].startswith("cam3/"):
            assert not any(g.startswith("cam2/") for g in s["ranked"])  # the protocol's exclusion applied
    md = (report / "results.md").read_text()
    assert shown[0]["query"] in md and "sampling=official" in md

    # the plain test output is unchanged by --report
    assert main(["test", "--run", str(run_a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"] == tested["mean"]

    out = tmp_path / "cmp"
    assert main(["report", "--run", str(run_a), "--run", str(run_b), "--label", "A", "--label", "B",
                 "--out", str(out), "--queries", "3", "--no-heatmaps"]) == 0
    printed = capsys.readouterr().out
    assert "A: rank-1" in printed and "comparison:" in printed
    assert {p.name for p in out.iterdir()} == {"run1", "run2", "compare.md", "cmc.png", "ranked_list.png",
                                               "tsne.png", "distances.png"}
    assert "gradcam.png" not in {p.name for p in (out / "run1").iterdir()}
    compare = (out / "compare.md").read_text()
    assert "| A |" in compare and "| B |" in compare
    for png in ("cmc.png", "ranked_list.png", "tsne.png", "distances.png"):
        _png(out / png)
    with Image.open(out / "ranked_list.png") as img:  # 3 queries x 2 runs = 6 rows
        rows = (img.size[1] - 14) // (96 + 6 + 22)
    assert rows == 6


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "--run", str(tmp_path / "nope")]) == 2
    assert "is not a vireid run folder" in capsys.readouterr().err
