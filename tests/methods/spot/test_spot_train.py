"""SPOT through the command line: the shipped CPU recipe trains and tests with the synthetic world's
ground-truth keypoints (``data.aux.keypoints``, both modalities), and without them on the uniform
fallback (warning logged); the four loss terms are logged by name."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vireid.cli import main

REPO = Path(__file__).resolve().parents[3]
SMALL = ["optim.epochs=1", "optim.warmup_epochs=0", "optim.milestones=[]", "data.batches_per_epoch=2",
         "eval.every=1", "data.num_ids=2", "data.num_instances=2", "eval.protocol.trials=1"]
FALLBACK = "using uniform keypoint heatmaps"


@pytest.fixture(scope="module")
def tiny_keypoints(tiny_sysu: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The COCO keypoints of every image of ``tiny_sysu`` (same synthetic arguments, infrared included)."""
    from vireid.data.synthetic import SyntheticConfig
    from vireid.data.synthetic.extras import generate_extras

    out = tmp_path_factory.mktemp("tiny_extras") / "extras"
    generate_extras(out, SyntheticConfig(num_ids=12, seed=5, images_per_camera=3, height=64, width=32))
    return out / "SYSU-layout" / "annotations" / "person_keypoints.json"


def _train_and_test(root: Path, run: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    sets = [arg for s in (*SMALL, f"data.root={root}", *extra) for arg in ("--set", s)]
    assert main(["train", "--config", str(REPO / "configs/spot_synthetic.yaml"), "--run-dir", str(run), *sets]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    terms = [r for r in records if r.get("kind") == "train"][-1]
    assert all(terms[k] > 0 for k in ("spot_base", "spot_is", "spot_ip", "spot_if"))
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["mean"]["mAP"] <= 100.0 and result["settings"]["flip"] is False
    return result


@pytest.mark.slow
def test_recipe_trains_and_tests_with_ground_truth_keypoints(tiny_sysu: Path, tiny_keypoints: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture,
                                                             capsys: pytest.CaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        _train_and_test(tiny_sysu, tmp_path / "run", capsys, f"data.aux.keypoints={tiny_keypoints}")
        capsys.readouterr()
        assert main(["test", "--run", str(tmp_path / "run"), "--flip", "--json"]) == 0  # flipped heatmaps too
    assert FALLBACK not in caplog.text  # every training, validation and test batch carried heatmaps


@pytest.mark.slow
def test_recipe_trains_without_keypoints_on_the_fallback(tiny_sysu: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        _train_and_test(tiny_sysu, tmp_path / "run", capsys, "data.aux.keypoints=null")
    assert FALLBACK in caplog.text and "no aux['heatmaps']" in caplog.text
