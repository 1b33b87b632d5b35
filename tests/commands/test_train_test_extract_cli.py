"""End to end through the CLI: train -> test -> extract -> evaluate-features agree; errors are clear."""

from __future__ import annotations

import json

import pytest
import yaml

from vireid.cli import main


def _recipe(tmp_path, root):
    cfg = {
        "name": "tiny", "output_dir": str(tmp_path / "runs"),
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {"mode": "all", "shots": 1, "sampling": "official"}},
        "runtime": {"device": "cpu", "precision": "bf16"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_train_test_extract_evaluate_agree(tiny_sysu, tmp_path, capsys):
    recipe = _recipe(tmp_path, tiny_sysu)
    assert main(["train", "--config", str(recipe)]) == 0
    run = tmp_path / "runs" / "tiny"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["runtime"]["precision"] == "bf16" and saved["optim"]["epochs"] == 1  # resolved config saved
    capsys.readouterr()

    assert main(["test", "--run", str(run), "--json"]) == 0
    tested = json.loads(capsys.readouterr().out)
    s = tested["settings"]
    assert s["flip"] is False and s["rerank"] == {"method": "none"} and s["sampling"] == "official"
    assert len(tested["trials"]) == 10

    feats = tmp_path / "feats.npz"
    assert main(["extract", "--run", str(run), "--out", str(feats)]) == 0
    capsys.readouterr()
    assert main(["evaluate-features", str(feats), "--dataset", "sysu-mm01", "--root", str(tiny_sysu),
                 "--mode", "all", "--shots", "1", "--gallery-sampling", "official", "--normalize", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("rank1", "rank5", "mAP", "mINP"):
        assert evaluated["mean"][key] == pytest.approx(tested["mean"][key], abs=1e-9)

    # a second train into the same folder must not clobber it
    assert main(["train", "--config", str(recipe)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_train_rejects_unknown_keys_before_doing_work(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("optim:\n  lr: 0.1\n  mommentum: 0.9\n")
    assert main(["train", "--config", str(recipe)]) == 2
    assert "unknown config key optim.mommentum" in capsys.readouterr().err
    assert main(["train", "--config", str(recipe), "--set", "optim.mommentum=1"]) == 2
    assert "unknown config key optim.mommentum" in capsys.readouterr().err
    recipe.write_text("model:\n  name: agw\n  params: {arch: resnet18, gem: 3}\n")
    assert main(["train", "--config", str(recipe)]) == 2
    assert "unknown config key model.params.gem; valid keys: arch, num_specific_stages" in capsys.readouterr().err
    recipe.write_text("model:\n  name: agw2\n")
    assert main(["train", "--config", str(recipe)]) == 2
    assert "model.name: unknown model 'agw2'; valid: agw, baseline, " in capsys.readouterr().err


def test_test_command_names_a_missing_run(tmp_path, capsys):
    assert main(["test", "--run", str(tmp_path)]) == 2
    assert "is not a vireid run folder" in capsys.readouterr().err


def test_test_checks_protocol_flags_against_the_dataset(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {dataset: sysu-mm01, root: /nowhere}\n")
    assert main(["test", "--run", str(run), "--protocol", "foo=1", "--protocol", "shots=2"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key --protocol.foo; valid keys: mode, shots, sampling, trials" in err
    assert "--protocol.shots: input should be 1 or 10, got 2" in err
