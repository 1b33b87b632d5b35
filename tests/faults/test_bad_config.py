"""Bad configuration values and resume mismatches: exit 2, a line naming the key, nothing written.

These rows are the issue's config corpus; they hold for today's dataclass config and must keep
holding after the move to pydantic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vireid.config import load_config

from .cli_helpers import assert_clear_error, assert_nothing_half_written, run_cli
from .conftest import tiny_values


def write_recipe(tmp_path: Path, root: Path, **sections: dict) -> Path:
    values = tiny_values(root)
    for section, changes in sections.items():
        values[section].update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_yaml_1_1_exponent_floats_load_as_numbers(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-4\n  momentum: 9.0e-1\n")
    cfg = load_config(recipe, ["optim.gamma=1e-1"])
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.momentum, cfg.optim.gamma) == (1e-3, 5e-4, 0.9, 0.1)
    recipe.write_text("name: run1e3\noutput_dir: 1e3x\n")
    assert load_config(recipe).name == "run1e3"


BAD_VALUES = [  # the message names the key and the value given
    ("optim", "backbone_lr_mult", -1, ["optim.backbone_lr_mult", "0", "-1"]),
    ("optim", "gamma", -1, ["optim.gamma", "0", "-1"]),
    ("optim", "weight_decay", -1, ["optim.weight_decay", "0", "-1"]),
    ("optim", "momentum", -0.5, ["optim.momentum", "0", "-0.5"]),
    ("optim", "lr", "fast", ["optim.lr", "number", "fast"]),
    ("runtime", "num_threads", 0, ["runtime.num_threads", "1", "0"]),
    ("runtime", "seed", -1, ["runtime.seed", "0", "-1"]),
    ("runtime", "device", "banana", ["runtime.device", "banana", "cpu", "cuda"]),
    ("eval", "batch_size", 0, ["eval.batch_size", "1", "0"]),
    ("data", "batches_per_epoch", 0, ["data.batches_per_epoch", "1", "0"]),
]


@pytest.mark.parametrize(("section", "key", "value", "words"), BAD_VALUES,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in BAD_VALUES])
def test_bad_value_is_one_line_and_exit_2(tiny_sysu, tmp_path, capsys, section, key, value, words):
    recipe = write_recipe(tmp_path, tiny_sysu, **{section: {key: value}})
    run_dir = tmp_path / "run"
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", run_dir)
    assert_clear_error(rc, err, "train", *words)
    assert not run_dir.exists()


@pytest.mark.parametrize(("override", "words"), [
    ("optim.lr.x=1", ["optim.lr.x=1", "optim.lr", "0.01", "not a section"]),
    ("optim.lr", ["must look like section.key=value"]),
    ("losses.7.weight=1", ["losses.7", "not an index"]),
    ("optim.lr=[1", ["not valid YAML"]),
])
def test_bad_override_is_one_line_and_exit_2(tiny_sysu, tmp_path, capsys, override, words):
    recipe = write_recipe(tmp_path, tiny_sysu)
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", tmp_path / "run", "--set", override)
    assert_clear_error(rc, err, "train", *words)
    assert not (tmp_path / "run").exists()


def test_non_utf8_recipe(tmp_path, capsys):
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("name: caf\xe9\n".encode("latin-1"))
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", tmp_path / "run")
    assert_clear_error(rc, err, "train", str(recipe), "utf-8")


# ---------------------------------------------------------------------------- resume mismatches


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


@pytest.mark.parametrize(("overrides", "words"), [
    (["optim.name=adamw"], ["--resume", "optim.name: 'sgd' in the checkpoint, 'adamw' now", "config.yaml"]),
    (["data.val_fraction=0"], ["trained with", "identities, this config has"]),
    (["optim.lr=0.02", "optim.nesterov=false"], ["optim.lr: 0.01 in the checkpoint, 0.02 now", "optim.nesterov"]),
], ids=["optimizer-changed", "other-identity-count", "lr-changed"])
def test_failed_resume_writes_nothing(finished_run, tmp_path, capsys, overrides, words):
    recipe, run_dir = finished_run
    before = _snapshot(run_dir)
    sets = [a for o in overrides for a in ("--set", o)]
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", run_dir, "--resume", *sets)
    assert_clear_error(rc, err, "train", *words)
    assert _snapshot(run_dir) == before  # config.yaml, metrics.jsonl, checkpoints untouched


def test_resume_of_a_missing_run_creates_nothing(finished_run, tmp_path, capsys):
    recipe, _ = finished_run
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", tmp_path / "nope", "--resume")
    assert_clear_error(rc, err, "train", "--resume", "last.pt does not exist")
    assert not (tmp_path / "nope").exists()


def test_resume_without_validation_split_and_more_epochs(tiny_sysu, tmp_path, capsys):
    """val_fraction = 0 (no validation: best.pt is the last epoch) resumes; optim.epochs may grow."""
    recipe = write_recipe(tmp_path, tiny_sysu, data={"val_fraction": 0.0}, optim={"epochs": 1, "milestones": []})
    run_dir = tmp_path / "run"
    assert run_cli(capsys, "train", "--config", recipe, "--run-dir", run_dir)[0] == 0
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", run_dir, "--resume", "--set", "optim.epochs=2")
    assert rc == 0, err
    records = [yaml.safe_load(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["epoch"]) for r in records] == [("train", 1), ("train", 2)]
    assert_nothing_half_written(run_dir)


def test_unknown_protocol_setting(finished_run, capsys):
    _, run_dir = finished_run
    rc, err = run_cli(capsys, "test", "--run", run_dir, "--protocol", "foo=1")
    assert_clear_error(rc, err, "test", "foo", "mode, shots, sampling, trials")
