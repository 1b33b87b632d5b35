"""SIGINT and SIGTERM at several points of a tiny CPU run, each resumed to the uninterrupted result.

Every case: the interrupted run raises TrainingInterrupted (a KeyboardInterrupt) carrying the
signal and the checkpoint it saved; the resumed run ends with weights and optimizer state
``torch.equal`` to the uninterrupted run's, metrics.jsonl holds each epoch's train and val
record once (train losses equal to the uninterrupted ones), and no temporary or lock file is left.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

import vireid.engine.checkpoint as checkpoint_module
import vireid.engine.trainer as trainer_module
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.interrupt import TrainingInterrupted
from vireid.engine.trainer import Trainer

from .conftest import assert_same_state, final_state, leftovers, make_trainer, read_records

SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


class SignalMidStep(Trainer):
    """Sends ``signum`` to itself inside step number ``at`` (1-based over the run), after the forward
    pass and before backward/optimizer.step; ``times`` = 2 sends it twice (a forced stop)."""

    at: int = 0
    signum: int = signal.SIGINT
    times: int = 1

    def compute_losses(self, batch):  # type: ignore[no-untyped-def]
        terms, extras = super().compute_losses(batch)
        self.steps_seen = getattr(self, "steps_seen", 0) + 1
        if self.steps_seen == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)
        return terms, extras


def resume_to_end(root: Path, run_dir: Path) -> Trainer:
    trainer = make_trainer(root, run_dir)
    trainer.resume(run_dir / "last.pt")
    trainer.fit()
    return trainer


def check_resumed(trainer: Trainer, run_dir: Path, reference: dict[str, Any]) -> None:
    assert_same_state(final_state(trainer), reference["state"])
    records = read_records(run_dir)
    assert [(r["kind"], r["epoch"]) for r in records] == [("train", 1), ("val", 1), ("train", 2), ("val", 2)]
    for got, want in zip(records, reference["records"]):
        for key in ("loss", "cross_entropy", "wrt", "train_acc", "mAP", "rank1"):
            if key in want:
                assert got[key] == want[key], (got["kind"], got["epoch"], key)
    assert leftovers(run_dir) == []
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2


@pytest.mark.parametrize(("signum", "step"), [pytest.param(signal.SIGINT, 2, id="SIGINT-epoch1-step2"),
                                              pytest.param(signal.SIGTERM, 4, id="SIGTERM-epoch2-step1")])
def test_signal_mid_step_saves_the_completed_step(tiny_sysu, tmp_path, reference, signum, step):
    run_dir = tmp_path / "run"
    cls = type("Sig", (SignalMidStep,), {"at": step, "signum": signum})
    first = make_trainer(tiny_sysu, run_dir, cls)
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.signum == signum and info.value.exit_code == 128 + signum
    assert info.value.saved == str(run_dir / "last.pt")
    saved = load_checkpoint(run_dir / "last.pt")
    # the step the signal arrived in was completed and is the saved position (3 steps per epoch)
    assert (saved["epoch"], saved["iteration"]) == ((step - 1) // 3, (step - 1) % 3 + 1)
    assert saved["epoch_partial"]["count"] == saved["iteration"]
    assert leftovers(run_dir) == []
    check_resumed(resume_to_end(tiny_sysu, run_dir), run_dir, reference)


@pytest.mark.parametrize("signum", SIGNALS)
def test_signal_during_validation_saves_the_epoch_with_validation_pending(tiny_sysu, tmp_path, reference,
                                                                          monkeypatch, signum):
    run_dir = tmp_path / "run"
    original = trainer_module.validate

    def validate_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signum)  # raises inside the interruptible validation
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "validate", validate_then_signal)
    with pytest.raises(TrainingInterrupted) as info:
        make_trainer(tiny_sysu, run_dir).fit()
    monkeypatch.setattr(trainer_module, "validate", original)
    assert info.value.signum == signum
    saved = load_checkpoint(run_dir / "last.pt")
    assert (saved["epoch"], saved["iteration"], saved["validated"]) == (1, 0, False)
    assert [(r["kind"], r["epoch"]) for r in read_records(run_dir)] == [("train", 1)]
    assert not (run_dir / "best.pt").exists() and leftovers(run_dir) == []
    check_resumed(resume_to_end(tiny_sysu, run_dir), run_dir, reference)
    assert load_checkpoint(run_dir / "best.pt")["best"]["epoch"] in (1, 2)


class _SignalOnWrite:
    """A file object that sends ``signum`` after its first chunk: the signal lands inside torch.save."""

    def __init__(self, f, signum: int) -> None:
        self.f, self.signum, self.writes = f, signum, 0

    def write(self, data):  # type: ignore[no-untyped-def]
        self.writes += 1
        n = self.f.write(data)
        if self.writes == 1:
            os.kill(os.getpid(), self.signum)
        return n

    def flush(self) -> None:
        self.f.flush()


@pytest.mark.parametrize(("signum", "which"), [pytest.param(signal.SIGTERM, "best.pt", id="SIGTERM-best.pt"),
                                               pytest.param(signal.SIGINT, "last.pt", id="SIGINT-last.pt")])
def test_signal_during_a_checkpoint_write_completes_it_then_stops(tiny_sysu, tmp_path, reference,
                                                                 monkeypatch, signum, which):
    run_dir = tmp_path / "run"
    original = torch.save
    hit = []

    def save(obj, target, *args, **kwargs):  # the first write of `which` is signalled mid-write
        if Path(target).name.startswith(f".{which}.") and not hit:
            hit.append(target)
            with open(target, "wb") as f:
                return original(obj, _SignalOnWrite(f, signum), *args, **kwargs)
        return original(obj, target, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", save)
    with pytest.raises(TrainingInterrupted) as info:
        make_trainer(tiny_sysu, run_dir).fit()
    monkeypatch.setattr(checkpoint_module.torch, "save", original)
    assert hit and info.value.signum == signum
    saved = load_checkpoint(run_dir / "last.pt")  # complete and readable
    assert (saved["epoch"], saved["iteration"], saved["validated"]) == (1, 0, True)
    assert load_checkpoint(run_dir / "best.pt")["epoch"] == 1
    assert [(r["kind"], r["epoch"]) for r in read_records(run_dir)] == [("train", 1), ("val", 1)]
    assert leftovers(run_dir) == []
    check_resumed(resume_to_end(tiny_sysu, run_dir), run_dir, reference)


def test_second_signal_inside_a_step_stops_at_once_and_keeps_the_last_consistent_checkpoint(
        tiny_sysu, tmp_path, reference):
    run_dir = tmp_path / "run"
    cls = type("Sig", (SignalMidStep,), {"at": 5, "signum": signal.SIGTERM, "times": 2})
    first = make_trainer(tiny_sysu, run_dir, cls)
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.saved is None  # the half-done step 2 of epoch 2 was not saved...
    saved = load_checkpoint(run_dir / "last.pt")
    assert (saved["epoch"], saved["iteration"]) == (1, 0)  # ...the end of epoch 1 is kept
    check_resumed(resume_to_end(tiny_sysu, run_dir), run_dir, reference)


def test_handlers_are_restored_after_fit(tiny_sysu, tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    trainer = make_trainer(tiny_sysu, tmp_path / "run")
    trainer.cfg.optim.epochs = 1
    trainer.fit()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_temp_files_of_a_killed_write_are_removed_on_resume(tiny_sysu, tmp_path, reference):
    """kill -9 inside a checkpoint write leaves ``.last.pt.XXXXXXXX.tmp.pt``; the next writer removes it."""
    run_dir = tmp_path / "run"
    cls = type("Sig", (SignalMidStep,), {"at": 2, "signum": signal.SIGINT})
    with pytest.raises(TrainingInterrupted):
        make_trainer(tiny_sysu, run_dir, cls).fit()
    stale = [run_dir / ".last.pt.q1w2e3r4.tmp.pt", run_dir / ".metrics.jsonl.a_b_c_d_.tmp.jsonl"]
    for path in stale:
        path.write_bytes(b"half a file")
    check_resumed(resume_to_end(tiny_sysu, run_dir), run_dir, reference)
