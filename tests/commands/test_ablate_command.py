"""``vireid ablate``: the MRDA grid's configs, the summary table, and one tiny end-to-end run."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import yaml

from vireid.commands import ablate
from vireid.errors import ConfigError

RECIPE = {
    "name": "tiny_mrda",
    "data": {"dataset": "sysu-mm01", "root": "", "height": 64, "width": 32, "num_ids": 2, "num_instances": 2,
             "pad": 2, "num_workers": 0, "val_fraction": 0.0, "batches_per_epoch": 2, "in_memory": True},
    "model": {"name": "mrda", "params": {"arch": "resnet18", "pretrained": None, "dam_k": 2, "dam_qk_channels": 16}},
    "losses": [{"name": "mrda_id", "weight": 1.0, "params": {"epsilon": 0.1}},
               {"name": "hetero_centre_triplet", "weight": 1.0},
               {"name": "correlation_consistency", "weight": 1.0},
               {"name": "region_centre", "weight": 1.0}],
    "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
    "eval": {"every": 1, "batch_size": 64, "protocol": {"mode": "all", "shots": 1, "sampling": "official",
                                                        "trials": 2}},
    "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
}




def _recipe(tmp_path: Path, root: str = "unused", **changes: dict) -> Path:
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["root"] = root
    for section, values in changes.items():
        recipe[section].update(values)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vireid ablate")
    ablate.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_variant_configs_switch_the_model_and_drop_mrm_losses(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    base = ablate.variant_config(recipe, [], "baseline", 3)
    assert base.model.params["use_mrm"] is False and base.model.params["attention"] == "none"
    assert [loss.name for loss in base.losses] == ["mrda_id", "hetero_centre_triplet", "correlation_consistency"]
    assert base.runtime.seed == 3 and base.name == "tiny_mrda_baseline_seed3"
    full = ablate.variant_config(recipe, ["optim.lr=0.02"], "mrm+cbam", 0)
    assert full.model.params["use_mrm"] is True and full.model.params["attention"] == "cbam"
    assert "region_centre" in [loss.name for loss in full.losses] and full.optim.lr == 0.02
    assert list(ablate.VARIANTS) == ["baseline", "mrm", "dam", "mrm+dam", "mrm+bam", "mrm+cbam", "mrm+iwpam"]
    agw = _recipe(tmp_path, model={"name": "agw", "params": {"arch": "resnet18"}})
    with pytest.raises(ConfigError, match="model.name='agw', expected 'mrda'"):
        ablate.variant_config(agw, [], "mrm", 0)


def test_summary_mean_and_sample_std_beside_the_paper() -> None:
    results = {"dam": [{"mean": {"rank1": 10.0, "mAP": 20.0, "mINP": 5.0}},
                       {"mean": {"rank1": 14.0, "mAP": 26.0, "mINP": 7.0}}]}
    rows = ablate.summarize(results, [0, 1])
    assert rows["dam"]["rank1"] == {"mean": 12.0, "std": pytest.approx(math.sqrt(8.0)), "values": [10.0, 14.0]}
    assert rows["dam"]["mAP"]["mean"] == 23.0 and rows["dam"]["mAP"]["std"] == pytest.approx(math.sqrt(18.0))
    assert rows["dam"]["paper"] == {"rank1": 68.47, "mAP": 63.09, "source": "seeds/003 Table 2",
                                    "dataset": "SYSU-MM01 all-search single-shot", "comparable": False}
    assert "rank20" not in rows["dam"]
    one = ablate.summarize({"mrm": [{"mean": {"rank1": 1.0, "mAP": 2.0, "mINP": 3.0}}]}, [7])
    assert one["mrm"]["rank1"]["std"] == 0.0


def test_command_line_round_trips() -> None:
    args = _args("--config", "c.yaml", "--set", "optim.epochs=2", "--seeds", "0", "1", "--variants", "mrm", "dam")
    assert ablate.command_line(args) == ("vireid ablate --config c.yaml --set optim.epochs=2 --seeds 0 1 "
                                         "--variants mrm dam")
    with pytest.raises(SystemExit):
        _args("--config", "c.yaml", "--variants", "mrm+se")


@pytest.mark.slow
def test_tiny_grid_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vireid.data.synthetic import SyntheticConfig, generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, SyntheticConfig(num_ids=12, seed=0, images_per_camera=2, height=64, width=32))
    recipe = _recipe(tmp_path, root=str(data))
    out = tmp_path / "grid"
    args = _args("--config", str(recipe), "--seeds", "0", "--variants", "baseline", "mrm+dam", "--out", str(out))
    assert ablate.run(args) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert list(report["rows"]) == ["baseline", "mrm+dam"] and report["seeds"] == [0]
    for name, row in report["rows"].items():
        assert 0.0 <= row["rank1"]["mean"] <= 100.0 and 0.0 <= row["mAP"]["mean"] <= 100.0
        assert row["rank1"]["std"] == 0.0 and len(row["mAP"]["values"]) == 1
        assert (out / name / "seed0" / "best.pt").is_file() and (out / name / "seed0" / "test.json").is_file()
    assert report["rows"]["mrm+dam"]["paper"]["rank1"] == 70.55
    assert report["protocol"]["mode"] == "all-search" and report["protocol"]["num_trials"] == 2
    saved = yaml.safe_load((out / "baseline" / "seed0" / "config.yaml").read_text())
    assert "region_centre" not in [loss["name"] for loss in saved["losses"]]
    text = (out / "ablation.md").read_text()
    assert "| baseline | no | none |" in text and "| mrm+dam | yes | dam |" in text
    assert "NOT comparable" in text and "63.21 / 59.87" in text and "vireid ablate --config" in text
    assert "[2/2] mrm+dam seed 0" in capsys.readouterr().out
    # a second call reuses the finished runs instead of training again
    stamp = (out / "mrm+dam" / "seed0" / "best.pt").stat().st_mtime_ns
    assert ablate.run(args) == 0
    assert (out / "mrm+dam" / "seed0" / "best.pt").stat().st_mtime_ns == stamp
    # a run folder of another configuration is refused
    other = _args("--config", str(recipe), "--set", "optim.lr=0.5", "--seeds", "0", "--variants", "baseline",
                  "--out", str(out))
    with pytest.raises(ConfigError, match="holds a run of another configuration"):
        ablate.run(other)
