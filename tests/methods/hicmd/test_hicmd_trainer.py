"""The Hi-CMD trainer: alternating discriminator / generator steps, each on its own parameters, and
an exact resume of the discriminators and their optimiser (tiny synthetic data, CPU, seconds)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from vireid.config import config_from_dict
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.runtime import setup_runtime
from vireid.methods.hicmd.trainer import HiCMDTrainer


def _trainer(recipe: Callable[..., dict], root: Path, run: Path, epochs: int = 2) -> HiCMDTrainer:
    values = recipe(root, run.parent, epochs)
    return HiCMDTrainer(config_from_dict(values), run, setup_runtime("cpu", seed=0, deterministic=True))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def test_discriminator_then_generator_steps_each_update_only_their_own_parameters(
        tiny_sysu: Path, hicmd_recipe: Callable[..., dict], tmp_path: Path) -> None:
    trainer = _trainer(hicmd_recipe, tiny_sysu, tmp_path / "run")
    disc = trainer.adversarial.discriminators
    model_params = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    events: list[tuple[str, set[str], set[str]]] = []
    real_d_step = trainer.discriminator_step

    def d_step(out, batch):  # record what the discriminator step alone changes
        m0, d0 = _snapshot(trainer.model), _snapshot(disc)
        value = real_d_step(out, batch)
        events.append(("D", _changed(m0, trainer.model), _changed(d0, disc)))
        snapshots.update(model=_snapshot(trainer.model), disc=_snapshot(disc))
        return value

    snapshots: dict[str, dict[str, torch.Tensor]] = {}
    trainer.discriminator_step = d_step
    batch = next(iter(trainer._train_loader(0)))
    for _ in range(2):
        values = trainer._step(batch)
        # what changed between the end of the discriminator step and the end of the whole step: the G step
        events.append(("G", _changed(snapshots["model"], trainer.model), _changed(snapshots["disc"], disc)))
    assert [e[0] for e in events] == ["D", "G", "D", "G"]  # alternating, D first in each iteration
    for kind, model_changed, disc_changed in events:
        if kind == "D":
            assert model_changed == set() and disc_changed == set(_snapshot(disc))
        else:
            assert disc_changed == set()
            # every trainable weight of the model moved (BN running statistics are buffers, moved as well)
            assert {n for n in model_params} <= model_changed
    for key in ("d_loss", "hicmd_cross", "hicmd_same", "hicmd_cycle", "hicmd_code", "hicmd_kl", "hicmd_adv",
                "hicmd_generated_id", "loss"):
        assert key in values and torch.isfinite(torch.tensor(values[key])), key


def test_resume_restores_the_discriminators_and_their_optimiser_exactly(tiny_sysu: Path, tmp_path: Path,
                                                                       hicmd_recipe: Callable[..., dict]) -> None:
    straight = _trainer(hicmd_recipe, tiny_sysu, tmp_path / "straight", epochs=2)
    straight.fit()
    first = _trainer(hicmd_recipe, tiny_sysu, tmp_path / "resumed", epochs=1)
    first.fit()
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")
    resumed = _trainer(hicmd_recipe, tiny_sysu, tmp_path / "resumed", epochs=2)
    resumed.resume(tmp_path / "resumed" / "last.pt")
    for k, v in saved["losses_state"]["hicmd_adv"].items():  # restored exactly before training on
        assert torch.equal(resumed.adversarial.state_dict()[k], v), k
    state = resumed.d_optimizer.state_dict()
    assert state["state"] and all(torch.equal(state["state"][i]["exp_avg"], s["exp_avg"])
                                  for i, s in saved["hicmd"]["d_optimizer"]["state"].items())
    resumed.fit()
    a, b = straight.adversarial.discriminators.state_dict(), resumed.adversarial.discriminators.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    oa, ob = straight.d_optimizer.state_dict()["state"], resumed.d_optimizer.state_dict()["state"]
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa)
    rec = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rec] == [1, 2] and "d_loss" in rec[-1]
