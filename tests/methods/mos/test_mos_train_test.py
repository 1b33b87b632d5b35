"""MoS through the command line: trained on the synthetic Market-1501 layout, scored on the synthetic
Partial_REID set with ``--distance jaccard`` and the conflict penalty (prior from the run's training images)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vireid.cli import main


@pytest.mark.slow
def test_train_then_partial_test_with_jaccard_and_penalty(tmp_path: Path, capsys) -> None:
    from vireid.data.synthetic import SyntheticConfig
    from vireid.data.synthetic.extras import generate_extras

    extras = tmp_path / "x"
    generate_extras(extras, SyntheticConfig(num_ids=12, seed=5, images_per_camera=3, height=64, width=32))
    recipe = tmp_path / "mos.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "mos", "output_dir": str(tmp_path),
        "data": {"dataset": "market1501", "root": str(extras / "Market-1501"), "height": 64, "width": 32,
                 "num_ids": 3, "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2},
        "model": {"name": "mos", "params": {"arch": "resnet18"}},
        "losses": [{"name": "cross_entropy"}, {"name": "jaccard_triplet", "params": {"margin": 0.1, "tau": 10.0}}],
        "optim": {"name": "adamw", "lr": 0.001, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "runtime": {"device": "cpu", "num_threads": 1}}))
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    partial = ["--set", "data.dataset=partial-reid", "--set", f"data.root={extras / 'Partial_REID'}"]
    assert main(["test", "--run", str(tmp_path / "run"), *partial, "--distance", "jaccard", "--jaccard-lambda", "0.1",
                 "--jaccard-top-k", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    jac = result["settings"]["jaccard"]
    assert result["settings"]["distance"] == "jaccard" and result["settings"]["normalize"] is False
    assert jac["lambda"] == 0.1 and jac["top_k"] == 8 and jac["prior"].startswith("training images of market1501")
    assert 0.0 <= result["mean"]["rank1"] <= 100.0 and result["dataset"] == "partial-reid"
    assert main(["test", "--run", str(tmp_path / "run"), *partial, "--distance", "jaccard", "--report"]) == 2
    assert "drop --report" in capsys.readouterr().err
