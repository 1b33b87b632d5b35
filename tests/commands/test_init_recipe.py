"""``vireid init-recipe``: a recipe fitted to the data that loads, trains on the right protocol keys."""

from __future__ import annotations

import yaml

from vireid.cli import main
from vireid.commands.init_recipe import make_recipe
from vireid.config import config_from_dict


def test_written_recipe_fits_the_data(tiny_sysu, tmp_path, capsys):
    out = tmp_path / "mine.yaml"
    assert main(["init-recipe", "--dataset", "sysu-mm01", "--root", str(tiny_sysu), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "training identities" in capsys.readouterr().out
    cfg = yaml.safe_load(out.read_text())
    assert cfg["data"]["root"] == str(tiny_sysu) and cfg["data"]["val_split"] == "images"  # 8 ids: small
    assert cfg["eval"]["protocol"] == {"mode": "all", "shots": 1, "sampling": "official"}
    assert cfg["optim"]["schedule_for_epochs"] == 16 and cfg["optim"]["epochs"] == 200  # tiny: capped
    assert cfg["runtime"]["device"] == "cpu" and "# " in out.read_text()  # commented


def test_recipes_per_dataset_and_device():
    regdb = yaml.safe_load(make_recipe("regdb", "data/RegDB", 206, 4120, "cpu", trial=3))
    assert regdb["data"]["options"] == {"trial": 3} and regdb["eval"]["protocol"] == {"direction": "visible-to-thermal"}
    assert regdb["data"]["val_split"] == "identities"
    assert regdb["optim"]["epochs"] == 24  # 4120 // 64 = 64 steps per epoch -> about 1500 steps
    config_from_dict(regdb)
    cuda = yaml.safe_load(make_recipe("sysu-mm01", "data/SYSU-MM01", 395, 22258, "cuda"))
    assert cuda["model"]["params"]["arch"] == "resnet50" and cuda["model"]["params"]["pretrained"] == "imagenet"
    config_from_dict(cuda)


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["init-recipe", "--dataset", "regdb", "--root", str(tmp_path / "nope")]) == 2
    assert "regdb" in capsys.readouterr().err
