"""``vireid grid``: a tiny grid end to end (2 variants x 2 seeds, parallel), resuming, failures, bad input.

The cells run as real ``python -m vireid.cli`` subprocesses on a tiny synthetic dataset with a
one-epoch budget. (That a cell's weights equal a direct ``vireid train`` with the old runners'
arguments was checked once by sha256 of the state dicts; see the commit that added this file.)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import yaml

from vireid.cli import main
from vireid.commands import grid as grid_command

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
    "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1, "deterministic": True},
}
NO_MRM = ("losses=[{name: mrda_id, weight: 1.0, params: {epsilon: 0.1}}, {name: hetero_centre_triplet, weight: 1.0}, "
          "{name: correlation_consistency, weight: 1.0}]")


def _write_grid(tmp_path: Path, data: str) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "data": {**RECIPE["data"], "root": data}}))
    grid = {
        "title": "Tiny MRDA grid", "kind": "train", "seeds": [0, 1], "out": str(tmp_path / "default_out"),
        "prepare": [{"creates": data + "/meta.json",
                     "run": ["synth", "--out", data, "--ids", 12, "--seed", 0, "--images-per-camera", 2,
                             "--height", 64, "--width", 32, "--quiet"]}],
        "recipes": [{"name": "mrda", "config": str(recipe), "set": ["name=tiny_{variant}_seed{seed}"],
                     "variants": [
                         {"name": "baseline", "label": "no MRM",
                          "set": ["model.params.use_mrm=false", "model.params.attention=none", NO_MRM],
                          "paper": {"rank1": 63.21, "mAP": 59.87, "table": "Table 2"}},
                         {"name": "mrm+dam", "label": "MRM + DAM",
                          "set": ["model.params.use_mrm=true", "model.params.attention=dam"]}]}],
        "table": {"columns": ["label", "seeds", "rank1", "mAP", "mINP", "paper"]},
        "paper_note": "Paper numbers: NOT comparable.",
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def test_command_line_round_trips() -> None:
    parser = argparse.ArgumentParser(prog="vireid grid")
    grid_command.add_arguments(parser)
    args = parser.parse_args(["g.yaml", "--set", "optim.epochs=2", "--seeds", "0", "1", "--variants", "mrm", "dam",
                              "--jobs", "3", "--out", "o"])
    assert grid_command.command_line(args) == ("vireid grid g.yaml --out o --seeds 0 1 --variants mrm dam "
                                               "--set optim.epochs=2")


def test_bad_grid_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: train\nrecipes: [{name: a, config: x.yaml}]\nseed: [0]\n")
    assert main(["grid", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vireid grid: error: {bad}: unknown key seed; valid: description, kind, notes, out, paper_note, " \
                  "prepare, recipes, seeds, set, table, title"


def test_bad_override_fails_before_any_cell_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = _write_grid(tmp_path, str(tmp_path / "data"))
    out = tmp_path / "out"
    assert main(["grid", str(grid), "--out", str(out), "--set", "optim.lrr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "cell mrda/baseline/seed0" in err and "optim.lrr" in err
    assert not out.exists() and not (tmp_path / "data").exists()  # neither the data step nor a cell ran


@pytest.mark.slow
def test_tiny_grid_end_to_end_resume_and_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    grid = _write_grid(tmp_path, data)
    out = tmp_path / "out"
    argv = ["grid", str(grid), "--out", str(out), "--jobs", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "data" / "meta.json").is_file()  # the data step ran
    assert printed.count(": done, rank1 ") == 4
    report = json.loads((out / "table.json").read_text())
    assert [r["variant"] for r in report["rows"]] == ["baseline", "mrm+dam"] and report["seeds"] == [0, 1]
    for row in report["rows"]:
        values = [json.loads((out / "mrda" / row["variant"] / f"seed{s}" / "test.json").read_text())["mean"]["mAP"]
                  for s in (0, 1)]
        mean = (values[0] + values[1]) / 2
        std = abs(values[0] - values[1]) / 2 ** 0.5  # sample std of two values
        assert row["mAP"]["mean"] == pytest.approx(mean) and row["mAP"]["std"] == pytest.approx(std)
    baseline_cfg = yaml.safe_load((out / "mrda" / "baseline" / "seed1" / "config.yaml").read_text())
    assert [loss["name"] for loss in baseline_cfg["losses"]] == ["mrda_id", "hetero_centre_triplet",
                                                                "correlation_consistency"]
    assert baseline_cfg["runtime"]["seed"] == 1 and baseline_cfg["name"] == "tiny_baseline_seed1"
    text = (out / "table.md").read_text()
    assert text == report["markdown"]
    assert "| no MRM | 2 |" in text and "63.21 / 59.87 (Table 2)" in text and "NOT comparable" in text
    assert "; mode all-search; " in text and "; sampling official; " in text and "; num_trials 2; " in text
    assert f"Command: `vireid grid {grid} --out {out}`" in text

    # The runner's cell trains what `vireid train` with the same arguments trains: the resolved config it
    # recorded before the run is the run's own config.yaml, and the recorded command is that of a direct run.
    cell = out / "mrda" / "mrm+dam" / "seed0"
    record = json.loads((cell / "grid_cell.json").read_text())
    assert record["config"] == (cell / "config.yaml").read_text()
    assert record["commands"][0][:4] == ["vireid", "train", "--config", str(tmp_path / "recipe.yaml")]
    assert record["commands"][1] == ["vireid", "test", "--run", str(cell), "--json", "--out", str(cell / "test.json")]

    # Resuming a half-done grid: finished cells are skipped, the missing one runs again.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("mrda/*/seed*/best.pt")}
    shutil.rmtree(out / "mrda" / "baseline" / "seed1")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count(": skipped, ") == 3 and "mrda/baseline/seed1: done" in printed
    for path, stamp in stamps.items():
        if "baseline/seed1" not in str(path):
            assert path.stat().st_mtime_ns == stamp
    again = json.loads((out / "table.json").read_text())
    assert again["rows"][1]["mAP"] == report["rows"][1]["mAP"]
    assert again["rows"][0]["mAP"]["values"] == report["rows"][0]["mAP"]["values"]  # same run, same numbers

    # --table-only writes the table from what is there, running nothing.
    assert main([*argv, "--table-only", "--seeds", "0"]) == 0
    assert json.loads((out / "table.json").read_text())["seeds"] == [0]

    # A folder holding another configuration is refused, nothing is overwritten.
    assert main([*argv, "--set", "optim.lr=0.5"]) == 2
    assert "holds a run of another configuration" in capsys.readouterr().err

    # A cell that fails is reported (exit 1, its log named) and left out of the means, not skipped silently.
    assert main(["grid", str(grid), "--out", str(tmp_path / "bad"), "--seeds", "0", "--variants", "baseline",
                 "--set", f"data.root={tmp_path / 'nowhere'}"]) == 1
    captured = capsys.readouterr()
    assert "mrda/baseline/seed0: failed, exit 2, log" in captured.out
    assert "1 cell(s) did not finish: mrda/baseline/seed0" in captured.err
    assert "**Cells without a result**" in (tmp_path / "bad" / "table.md").read_text()
    assert "does not exist" in (tmp_path / "bad" / "mrda" / "baseline" / "seed0" / "grid.log").read_text()


@pytest.mark.slow
def test_tiny_adapt_grid_prepares_its_domains_and_reports_pad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An adapt grid: `vireid synth` + `vireid domains` data steps, one source-only cell, PAD in the table."""
    repo = Path(__file__).resolve().parents[2]
    tiny = ["data.height=48", "data.width=24", "data.num_ids=4", "data.num_instances=2", "data.pad=4",
            "data.batches_per_epoch=2", "optim.epochs=1", "optim.warmup_epochs=0", "optim.milestones=[]",
            "model.params.non_local=false", "target.num_per_modality=8", "dan.pad_max_samples=200",
            "eval.protocol.trials=2", "target.protocol.trials=2", "runtime.num_threads=1", "runtime.precision=fp32",
            "data.root={out}/data/source"]
    grid = {"title": "Tiny DAN grid", "kind": "adapt", "seeds": [3], "set": tiny,
            "prepare": [{"creates": "{out}/data/source/meta.json",
                         "run": ["synth", "--out", "{out}/data/source", "--ids", 12, "--seed", 1,
                                 "--images-per-camera", 2, "--height", 48, "--width", 24, "--quiet"]},
                        {"creates": "{out}/data/noise/domain.json",
                         "run": ["domains", "--source", "{out}/data/source", "--kind", "noise", "--out",
                                 "{out}/data/noise", "--seed", 2, "--quiet"]}],
            "recipes": [{"name": "noise", "config": str(repo / "configs/dan_synthetic_cpu.yaml"),
                         "set": ["target.root={out}/data/noise"],
                         "variants": [{"name": "baseline", "adapt_variant": "baseline", "label": "source only"}]}],
            "table": {"columns": ["recipe", "label", "rank1", "mAP", "pad"], "headers": {"recipe": "target"}}}
    path = tmp_path / "dan.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    out = tmp_path / "out"
    assert main(["grid", str(path), "--out", str(out)]) == 0
    assert json.loads((out / "data" / "noise" / "domain.json").read_text())["kind"] == "noise"
    cell = out / "noise" / "baseline" / "seed3"
    result = json.loads((cell / "target_result.json").read_text())
    assert result["method"] == "source_only"
    saved = yaml.safe_load((cell / "adapt.yaml").read_text())
    assert saved["target"]["root"] == f"{out}/data/noise" and saved["runtime"]["seed"] == 3
    assert saved["dan"]["method"] == "source_only"
    gap = result["domain_gap"]
    row = f"| noise | source only | {result['mean']['rank1']:.2f} ± 0.00 | {result['mean']['mAP']:.2f} ± 0.00 | " \
          f"{gap['pad_visible']:.2f} / {gap['pad_infrared']:.2f} |"
    assert row in (out / "table.md").read_text()
    assert main(["grid", str(path), "--out", str(out)]) == 0  # finished: skipped
    assert "noise/baseline/seed3: skipped" in capsys.readouterr().out
