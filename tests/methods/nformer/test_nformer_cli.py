"""``--rerank nformer`` end to end: a tiny NFormer run trained through the CLI, tested with and
without the joint refinement; the refiner reads the run's weights (vireid test's --run, or the run
recorded in an extracted features file) and the options are recorded with the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vireid.cli import main


@pytest.fixture(scope="module")
def nformer_run(tiny_sysu: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nformer-run")
    cfg = {
        "name": "nf", "output_dir": str(out),
        "data": {"dataset": "sysu-mm01", "root": str(tiny_sysu), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2},
        "model": {"name": "nformer", "params": {"arch": "resnet18", "dim": 32, "blocks": 1, "heads": 2,
                                                "landmarks": 3, "topk": 3}},
        "losses": [{"name": "cross_entropy"}, {"name": "wrt"}, {"name": "nformer_refined_id"},
                   {"name": "triplet_hard", "params": {"feature": "extras:refined_features"}}],
        "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {"mode": "all", "shots": 1, "sampling": "official"}},
        "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
    }
    recipe = out / "nf.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 0
    return out / "nf"


@pytest.mark.slow
def test_test_and_evaluate_features_with_the_refiner(nformer_run: Path, tiny_sysu: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "--run", str(nformer_run), "--checkpoint", "last", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["settings"]["rerank"] == {"method": "none"}
    assert main(["test", "--run", str(nformer_run), "--checkpoint", "last", "--rerank", "nformer",
                 "--nformer-quota", "1", "--json"]) == 0
    refined = json.loads(capsys.readouterr().out)
    record = refined["settings"]["rerank"]
    assert record == {"method": "nformer", "run": str(nformer_run), "checkpoint": "last", "topk": None,
                      "landmarks": None, "cross_modal_quota": 1, "seed": 0}
    assert refined["mean"] != plain["mean"]
    feats = tmp_path / "f.npz"
    assert main(["extract", "--run", str(nformer_run), "--checkpoint", "last", "--out", str(feats)]) == 0
    capsys.readouterr()
    assert main(["evaluate-features", str(feats), "--dataset", "sysu-mm01", "--root", str(tiny_sysu), "--normalize",
                 "--rerank", "nformer", "--nformer-quota", "1", "--json"]) == 0
    via_file = json.loads(capsys.readouterr().out)
    assert via_file["settings"]["rerank"] == record
    for key, value in refined["mean"].items():
        assert via_file["mean"][key] == pytest.approx(value, abs=1e-6)


def test_refiner_flags_are_checked(nformer_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "--run", str(nformer_run), "--rerank", "sim", "--nformer-topk", "3"]) == 2
    assert "--nformer-topk applies to --rerank nformer" in capsys.readouterr().err
    assert main(["test", "--run", str(nformer_run), "--rerank", "nformer", "--nformer-topk", "0"]) == 2
    assert "topk must be an integer >= 1" in capsys.readouterr().err
