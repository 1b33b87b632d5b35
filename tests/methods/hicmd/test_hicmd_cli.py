"""Hi-CMD through the command line: `vireid train` with `trainer: hicmd`, then `vireid hicmd-swaps`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from vireid.cli import main


@pytest.mark.slow
def test_train_with_the_hicmd_trainer_then_write_the_swap_sheet(tiny_sysu: Path, tmp_path: Path, hicmd_recipe,
                                                                capsys: pytest.CaptureFixture) -> None:
    cfg = hicmd_recipe(tiny_sysu, tmp_path, epochs=1)
    assert cfg["trainer"] == "hicmd"
    cfg["data"]["val_fraction"] = 0.25
    recipe = tmp_path / "hicmd.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 0
    record = json.loads((tmp_path / "hicmd" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"d_loss", "hicmd_same", "hicmd_cross", "hicmd_cycle", "hicmd_adv"} <= set(record)
    sheet = tmp_path / "sheet.png"
    capsys.readouterr()
    assert main(["hicmd-swaps", "--run", str(tmp_path / "hicmd"), "--out", str(sheet), "--count", "2"]) == 0
    assert "4 x 4 swaps" in capsys.readouterr().out
    with Image.open(sheet) as img:  # 5 x 5 tiles of 32x16 with 2-pixel gaps
        assert img.size == (5 * (16 + 2) + 4, 5 * (32 + 2) + 2)


def test_the_adversarial_loss_without_the_hicmd_trainer_is_a_one_line_error(
        tiny_sysu: Path, tmp_path: Path, hicmd_recipe, capsys: pytest.CaptureFixture) -> None:
    cfg = hicmd_recipe(tiny_sysu, tmp_path, epochs=1)
    del cfg["trainer"]  # the default trainer
    recipe = tmp_path / "hicmd.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "loss hicmd_adv: its discriminators are trained by the Hi-CMD trainer; add `trainer: hicmd`" in err
    assert "Traceback" not in err


def test_swaps_of_a_run_of_another_model_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    tiny_run_factory) -> None:
    run = tiny_run_factory("agw")
    assert main(["hicmd-swaps", "--run", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "model 'agw' is not hicmd" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()
