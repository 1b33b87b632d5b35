"""Fixtures of the fault-injection suite: a tiny deterministic CPU run and its uninterrupted result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from vireid.config import config_from_dict
from vireid.engine.runtime import setup_runtime
from vireid.engine.trainer import Trainer


def tiny_values(root: Path) -> dict[str, Any]:
    """2 epochs x 3 steps of AGW-ResNet18 at 64x32 on the tiny synthetic SYSU, validated every epoch."""
    return {
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "pad": 4, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 3},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "losses": [{"name": "cross_entropy", "params": {"epsilon": 0.1}}, {"name": "wrt"}],
        "optim": {"lr": 0.01, "epochs": 2, "warmup_epochs": 1, "milestones": [1]},
        "eval": {"every": 1, "batch_size": 32},
        "runtime": {"device": "cpu", "seed": 3, "deterministic": True, "num_threads": 1},
    }


def make_trainer(root: Path, run_dir: Path, cls: type[Trainer] = Trainer, **kwargs: Any) -> Trainer:
    cfg = config_from_dict(tiny_values(root))
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic)
    return cls(cfg, run_dir, runtime, **kwargs)


def final_state(trainer: Trainer) -> dict[str, Any]:
    return {"model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
            "optimizer": trainer.optimizer.state_dict()}


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Model weights and optimizer state bit-identical (torch.equal on every tensor)."""
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    oa, ob = a["optimizer"], b["optimizer"]
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys()
    for pid, state in oa["state"].items():
        for name, value in state.items():
            other = ob["state"][pid][name]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other, (pid, name)


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def leftovers(run_dir: Path) -> list[str]:
    """Temporary files of atomic writes and lock files left in the run folder."""
    return sorted(p.name for p in run_dir.iterdir() if ".tmp" in p.name or p.name.endswith(".lock"))


@pytest.fixture(scope="session")
def reference(tiny_sysu: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run: final state and metrics records."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("reference") / "run"
        trainer = make_trainer(tiny_sysu, run_dir)
        trainer.fit()
        return {"state": final_state(trainer), "records": read_records(run_dir), "run_dir": run_dir}
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def finished_run(tiny_sysu, tmp_path_factory):
    """A 1-epoch run folder written by `vireid train` (and its recipe)."""
    from vireid.cli import main

    tmp = tmp_path_factory.mktemp("finished")
    values = tiny_values(tiny_sysu)
    values["optim"].update(epochs=1, milestones=[])
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(values))
    before = torch.get_num_threads()
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp / "run")]) == 0
    torch.set_num_threads(before)
    return recipe, tmp / "run"
