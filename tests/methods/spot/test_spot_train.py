"""SPOT through the command line: the shipped CPU recipe trains, logs its four terms and tests."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vireid.cli import main

REPO = Path(__file__).resolve().parents[3]
SMALL = ["optim.epochs=1", "optim.warmup_epochs=0", "optim.milestones=[]", "data.batches_per_epoch=2",
         "eval.every=1", "data.num_ids=2", "data.num_instances=2", "eval.protocol.trials=1"]


def _sets(*extra: str) -> list[str]:
    return [arg for s in (*SMALL, *extra) for arg in ("--set", s)]


@pytest.mark.slow
def test_recipe_trains_without_keypoints_on_the_fallback(tiny_sysu: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        assert main(["train", "--config", str(REPO / "configs/spot_synthetic.yaml"), "--run-dir", str(run),
                     *_sets(f"data.root={tiny_sysu}")]) == 0
    assert "using uniform keypoint heatmaps" in caplog.text
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    terms = [r for r in train if r.get("kind") == "train"][-1]
    assert all(terms[k] > 0 for k in ("spot_base", "spot_is", "spot_ip", "spot_if"))
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["mean"]["mAP"] <= 100.0 and result["settings"]["flip"] is False
