"""Fixtures of the Hi-CMD tests: a tiny recipe on the suite's tiny synthetic dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

LOSSES = [
    {"name": "cross_entropy", "params": {"epsilon": 0.1}},
    {"name": "triplet_hard", "params": {"margin": 0.3}},
    {"name": "hicmd_cross", "weight": 10.0},
    {"name": "hicmd_same", "weight": 10.0},
    {"name": "hicmd_cycle", "weight": 10.0},
    {"name": "hicmd_code", "weight": 1.0},
    {"name": "hicmd_kl", "weight": 0.01},
    {"name": "hicmd_adv", "weight": 1.0, "params": {"dim": 4, "num_layers": 2, "lr": 1e-3}},
    {"name": "hicmd_generated_id", "weight": 1.0},
]


def tiny_recipe(root: Path, out: Path, epochs: int = 2) -> dict:
    return {
        "name": "hicmd", "output_dir": str(out), "trainer": "hicmd",
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 32, "width": 16, "num_ids": 2,
                 "num_instances": 1, "pad": 2, "num_workers": 0, "val_fraction": 0.0, "batches_per_epoch": 2,
                 "in_memory": True},
        "model": {"name": "hicmd", "params": {"dim": 4, "style_dim": 3, "illum_dim": 2, "pose_dim": 2, "num_res": 1,
                                              "feat_dim": 16}},
        "losses": LOSSES,
        "optim": {"name": "adamw", "lr": 1e-3, "epochs": epochs, "warmup_epochs": 0, "milestones": [],
                  "backbone_lr_mult": 1.0},
        "eval": {"batch_size": 32, "protocol": {"mode": "all", "shots": 1, "trials": 2}},
        "runtime": {"device": "cpu", "seed": 0, "deterministic": True},
    }



@pytest.fixture
def hicmd_recipe() -> Callable[..., dict]:
    """``hicmd_recipe(root, out, epochs=2)`` -> a recipe dict: the tiny Hi-CMD with every loss."""
    return tiny_recipe


@pytest.fixture(autouse=True)
def _restore_determinism() -> Iterator[None]:
    """The trainer tests build their runtime with ``deterministic=True``, a process-wide torch switch."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)
