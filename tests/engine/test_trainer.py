"""Trainer: exact resume, Ctrl-C, model selection on validation, files written."""

from __future__ import annotations

import json

import pytest
import torch

from vireid.config import config_from_dict
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.runtime import setup_runtime
from vireid.engine.build import build_model_from_config
from vireid.engine.trainer import Trainer, validate


def tiny_config(root, **optim):
    return config_from_dict({
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "pad": 4, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 3},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "losses": [{"name": "cross_entropy", "params": {"epsilon": 0.1}}, {"name": "wrt"}],
        "optim": {"lr": 0.01, "epochs": 2, "warmup_epochs": 1, "milestones": [1], **optim},
        "eval": {"every": 1, "batch_size": 32},
        "runtime": {"device": "cpu", "seed": 3, "deterministic": True},
    })


def _runtime(cfg):
    r = cfg.runtime
    return setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic)


class _Interrupt:
    def __init__(self, epoch, iteration):
        self.at = (epoch, iteration)

    def __call__(self, epoch, iteration):
        if (epoch, iteration) == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [(0, 2), (1, 1)], ids=["mid-epoch-0", "mid-epoch-1"])
def test_resumed_run_ends_with_the_same_weights(tiny_sysu, tmp_path, stop_at):
    cfg = tiny_config(tiny_sysu)
    full = Trainer(cfg, tmp_path / "full", _runtime(cfg))
    full.fit()
    reference = {k: v.clone() for k, v in full.model.state_dict().items()}

    first = Trainer(cfg, tmp_path / "resumed", _runtime(cfg), on_iteration=_Interrupt(*stop_at))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert (saved["epoch"], saved["iteration"]) == stop_at  # Ctrl-C saved where it stopped

    second = Trainer(cfg, tmp_path / "resumed", _runtime(cfg))
    second.resume(tmp_path / "resumed" / "last.pt")
    second.fit()
    state = second.model.state_dict()
    assert state.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)
    history = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [h["kind"] for h in history] == ["train", "val", "train", "val"]


def test_run_folder_and_validation_selection(tiny_sysu, tmp_path):
    cfg = tiny_config(tiny_sysu, epochs=1, warmup_epochs=0, milestones=[])
    trainer = Trainer(cfg, tmp_path / "run", _runtime(cfg))
    summary = trainer.fit()
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["best.pt", "config.yaml", "last.pt", "metrics.jsonl", "summary.json"]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == 1 and summary["best"]["epoch"] == 1
    # the recorded validation score is that of best.pt, recomputed independently here
    model = build_model_from_config(cfg.model, best["num_classes"])
    model.load_state_dict(best["model"])
    again = validate(model, trainer.val_samples, cfg, trainer.runtime)
    assert again["mAP"] == summary["best"]["mAP"] and again["rank1"] == summary["best"]["rank1"]
    # the held-out identities are training identities, disjoint from the classifier's and from the test set
    val_ids = {s.pid for s in trainer.val_samples}
    test_ids = {s.pid for s in trainer.dataset.test}
    assert val_ids and not val_ids & set(trainer.pid_map) and not val_ids & test_ids
    assert best["num_classes"] == len(trainer.pid_map) == trainer.model.head.classifier.out_features


def test_nan_loss_is_a_clear_error(tiny_sysu, tmp_path):
    cfg = tiny_config(tiny_sysu, epochs=1, warmup_epochs=0, milestones=[], lr=1e30)
    with pytest.raises(FloatingPointError, match="is (nan|inf)"):
        Trainer(cfg, tmp_path / "run", _runtime(cfg)).fit()


def test_subclass_hooks_add_a_loss_term_and_see_every_step(tiny_sysu, tmp_path):
    """The public hooks: compute_losses may add weighted terms; on_epoch_start and after_step are called."""
    calls = {"epochs": [], "steps": 0}

    class WithPenalty(Trainer):
        def on_epoch_start(self, epoch, skip):
            calls["epochs"].append((epoch, skip))
            return {"hook_epoch": float(epoch)}

        def compute_losses(self, batch):
            terms, extras = super().compute_losses(batch)
            penalty = sum(p.square().sum() for p in self.model.parameters())
            return [*terms, ("l2", 1e-4, penalty)], {**extras, "rows_seen": float(len(batch))}

        def after_step(self, batch):
            calls["steps"] += 1

    cfg = tiny_config(tiny_sysu, epochs=1, milestones=[])
    trainer = WithPenalty(cfg, tmp_path / "run", _runtime(cfg))
    trainer.fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert calls == {"epochs": [(0, 0)], "steps": 3}
    assert record["hook_epoch"] == 0.0 and record["rows_seen"] == 8.0 and record["l2"] > 0
    # the logged total is the weighted sum of the terms (averaged over the epoch's steps)
    total = record["cross_entropy"] + record["wrt"] + 1e-4 * record["l2"]
    assert record["loss"] == pytest.approx(total, rel=1e-5)


def test_step_logs_exactly_the_per_term_floats_of_one_host_read(tiny_sysu, tmp_path):
    """The step reads every loss value and the total in one transfer (issue 17: one sync, not two per
    term and one after the optimiser step); the logged numbers are bit-for-bit the ``float()`` of each
    term and of the weighted sum built term by term, a bf16 term included."""
    seen = []

    class Spy(Trainer):
        def compute_losses(self, batch):
            terms, extras = super().compute_losses(batch)
            norm = sum(p.square().sum() for p in self.model.parameters()).bfloat16()
            terms = [*terms, ("bf16_norm", 1e-4, norm)]
            seen.append(terms)
            return terms, extras

        def _step(self, batch):
            values = super()._step(batch)
            terms = seen[-1]
            total = None
            for _, weight, value in terms:
                total = weight * value if total is None else total + weight * value
            expected = {name: float(value.detach()) for name, _, value in terms}
            assert {k: values[k] for k in expected} == expected
            assert values["loss"] == float(total.detach())
            return values

    cfg = tiny_config(tiny_sysu, epochs=1, milestones=[])
    Spy(cfg, tmp_path / "run", _runtime(cfg)).fit()
    assert len(seen) == 3


def test_fused_optimizer_option_trains(tiny_sysu, tmp_path):
    """optim.implementation: fused reaches the trainer's optimiser (and the GradScaler path) and trains."""
    cfg = tiny_config(tiny_sysu, epochs=1, milestones=[], implementation="fused")
    trainer = Trainer(cfg, tmp_path / "run", _runtime(cfg))
    assert trainer.optimizer.defaults["fused"] is True
    before = [p.detach().clone() for p in trainer.model.parameters()]
    record = trainer.fit()["final"]
    assert record["loss"] > 0 and record["loss"] == record["loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
