"""A run trained from pretrained weights is tested from its checkpoint alone: the weight file may be gone."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
import yaml

from vireid.cli import main


@pytest.mark.slow
def test_test_needs_no_pretrained_file(tiny_sysu, tmp_path, capsys):
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    cfg = {
        "name": "pre", "output_dir": str(tmp_path / "runs"),
        "data": {"dataset": "sysu-mm01", "root": str(tiny_sysu), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.0, "batches_per_epoch": 1},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False, "pretrained": str(weights)}},
        "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {"mode": "all", "shots": 1, "sampling": "official", "trials": 1}},
        "runtime": {"device": "cpu", "precision": "fp32"},
    }
    recipe = tmp_path / "pre.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 0
    summary = json.loads((tmp_path / "runs" / "pre" / "summary.json").read_text())
    assert "the last epoch is the model" in summary["best"]["selected_by"]
    capsys.readouterr()
    weights.unlink()
    assert main(["test", "--run", str(tmp_path / "runs" / "pre"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["trials"]) == 1
