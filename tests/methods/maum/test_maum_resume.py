"""A MAUM run interrupted mid-epoch and resumed ends bit-identical to the uninterrupted run: weights,
optimiser state and the proxy memories (persistent buffers of ``maum_metric``, saved with the losses'
state in every checkpoint). Also: the ``maum`` trainer's epoch-counted warm-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from vireid.config import config_from_dict
from vireid.engine.interrupt import TrainingInterrupted
from vireid.errors import ConfigError
from vireid.engine.runtime import setup_runtime
from vireid.engine.trainer import Trainer, trainer_class
from vireid.methods.maum import MAUMTrainer, MAUMUnidirectional
from vireid.types import Batch, ModelOutput


def _values(root: Path) -> dict[str, Any]:
    """3 epochs x 3 steps of MAUM-ResNet18 at 64x32 on the tiny synthetic SYSU; warm-up 1 epoch."""
    return {
        "trainer": "maum",
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "pad": 4, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 3},
        "model": {"name": "maum", "params": {"arch": "resnet18"}},
        "losses": [{"name": "maum_id", "params": {"epsilon": 0.1}},
                   {"name": "maum_metric", "params": {"memory_rgb": 2, "memory_ir": 4, "warmup_epochs": 1}}],
        "optim": {"lr": 0.01, "epochs": 3, "warmup_epochs": 1, "milestones": [2]},
        "eval": {"every": 1, "batch_size": 32},
        "runtime": {"device": "cpu", "seed": 3, "deterministic": True, "num_threads": 1},
    }


def _trainer(root: Path, run_dir: Path, **kwargs: Any) -> Trainer:
    cfg = config_from_dict(_values(root))
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic)
    return trainer_class(cfg)(cfg, run_dir, runtime, **kwargs)


def _metric(trainer: Trainer) -> MAUMUnidirectional:
    return next(loss.fn for loss in trainer.losses if loss.name == "maum_metric")


@pytest.mark.slow
def test_interrupted_and_resumed_run_is_bit_identical(tiny_sysu: Path, tmp_path: Path) -> None:
    reference = _trainer(tiny_sysu, tmp_path / "ref")
    assert isinstance(reference, MAUMTrainer)
    reference.fit()
    ref_metric = _metric(reference)
    # warm-up epoch 1 pushes nothing; epochs 2-3 push once per step: 6 pushes, 2 and 4 kept
    assert int(ref_metric.memory_rgb.num_pushed) == int(ref_metric.memory_ir.num_pushed) == 6
    assert len(ref_metric.memory_rgb) == 2 and len(ref_metric.memory_ir) == 4
    assert int(ref_metric.num_calls) == 9
    values = [r for r in reference.history]
    assert values[0]["maum_metric"] == 0.0 and values[1]["maum_metric"] > 0.0
    assert values[0]["maum_metric_warmup"] == 1.0 and values[1]["maum_metric_warmup"] == 0.0

    def stop(epoch: int, iteration: int) -> None:
        if (epoch, iteration) == (1, 2):  # inside epoch 2, after 2 pushes into the memories
            raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        _trainer(tiny_sysu, run_dir, on_iteration=stop).fit()
    resumed = _trainer(tiny_sysu, run_dir)
    resumed.resume(run_dir / "last.pt")
    assert len(_metric(resumed).memory_rgb) == 2 and int(_metric(resumed).num_calls) == 5
    resumed.fit()
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key, value in ref_metric.state_dict().items():
        assert torch.equal(value, _metric(resumed).state_dict()[key]), key
    assert [r["maum_metric"] for r in resumed.history] == [r["maum_metric"] for r in reference.history]


def test_warmup_epochs_need_the_maum_trainer() -> None:
    loss = MAUMUnidirectional(warmup_epochs=2)
    x = torch.randn(2, 4)
    out = ModelOutput(x, x, None, {"proxies_rgb": torch.randn(3, 4), "proxies_ir": torch.randn(3, 4)})
    batch = Batch(torch.zeros(2, 3, 4, 2), torch.tensor([0, 1]), torch.zeros(2, dtype=torch.long),
                  torch.tensor([0, 1]), torch.arange(2))
    with pytest.raises(ConfigError, match="warmup_epochs needs the epoch; set the recipe's `trainer: maum`"):
        loss(out, batch)
    loss.set_epoch(1)
    assert loss(out, batch).item() == 0.0 and len(loss.memory_rgb) == 0
    loss.set_epoch(2)
    assert loss(out, batch).item() > 0.0 and len(loss.memory_rgb) == 1
