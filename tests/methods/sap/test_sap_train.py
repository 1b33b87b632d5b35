"""SAP end to end: trained on the synthetic Market-layout set with its parsing maps as the teacher (data.aux),
scored on the synthetic Occluded-REID set (the cross-domain occluded protocol)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vireid.cli import main


@pytest.fixture(scope="module")
def extras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vireid.data.synthetic import SyntheticConfig
    from vireid.data.synthetic.extras import generate_extras

    out = tmp_path_factory.mktemp("sap_extras") / "x"
    generate_extras(out, SyntheticConfig(num_ids=12, seed=5, images_per_camera=3, height=64, width=32))
    return out


def _recipe(tmp: Path, extras: Path, teacher: str) -> Path:
    market = extras / "Market-1501"
    cfg = {
        "name": "sap", "output_dir": str(tmp),
        "data": {"dataset": "market1501", "root": str(market), "height": 64, "width": 32, "num_ids": 3,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2,
                 "aux": {"parsing": str(market / "parsing")} if teacher == "parsing" else {}},
        "model": {"name": "sap", "params": {"arch": "vit_cpu", "img_size": [64, 32], "patch_size": 8, "stride": 6,
                                            "depth": 1}},
        "losses": [{"name": "cross_entropy"}, {"name": "sap_part_id"}, {"name": "triplet_hard"},
                   {"name": "sap_distill", "params": {"teacher": teacher, "lam": 10.0}}],
        "optim": {"name": "adamw", "lr": 0.001, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {}},
        "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
    }
    recipe = tmp / f"{teacher}.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    return recipe


@pytest.mark.slow
@pytest.mark.parametrize("teacher", ["parsing", "bands"])
def test_sap_trains_with_its_teacher_and_scores_the_occluded_set(extras: Path, tmp_path: Path, teacher: str,
                                                                  capsys) -> None:
    assert main(["train", "--config", str(_recipe(tmp_path, extras, teacher)), "--run-dir", str(tmp_path / "run")]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("kind") == "train"][0]
    assert train["sap_distill"] > 0 and train["sap_part_id"] > 0  # both terms ran on real batches
    capsys.readouterr()
    assert main(["test", "--run", str(tmp_path / "run"), "--json", "--set", "data.dataset=occluded-reid",
                 "--set", f"data.root={extras / 'Occluded_REID'}"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "occluded-reid" and 0.0 <= result["mean"]["mAP"] <= 100.0


def test_parsing_teacher_without_parsing_maps_says_what_to_set(extras: Path, tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, extras, "parsing")
    cfg = yaml.safe_load(recipe.read_text())
    cfg["data"]["aux"] = {}
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "sap_distill: teacher 'parsing' needs batch.aux['parsing']: set data.aux.parsing" in err
    assert "Traceback" not in err
