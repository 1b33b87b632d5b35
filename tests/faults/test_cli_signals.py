"""The ``vireid train`` process under signals: SIGTERM saves and exits 143; kill -9 at random points, resumed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vireid
from vireid.engine.checkpoint import load_checkpoint

from .conftest import assert_same_state, leftovers, read_records, tiny_values

SRC = str(Path(vireid.__file__).resolve().parents[1])


def start_train(recipe: Path, run_dir: Path, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vireid.cli", "train", "--config", str(recipe), "--run-dir", str(run_dir)]
    return subprocess.Popen(cmd + (["--resume"] if resume else []), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_training(proc: subprocess.Popen) -> list[str]:
    """Read stderr until the trainer has installed its signal handlers and starts the first epoch."""
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "vireid.engine.trainer: training " in line:
            return lines
    raise AssertionError("the run ended before training started:\n" + "".join(lines))


def write_recipe(tmp_path: Path, root: Path) -> Path:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_values(root)))
    return recipe


def saved_state(run_dir: Path) -> dict:
    ckpt = load_checkpoint(run_dir / "last.pt")
    return {"model": ckpt["model"], "optimizer": ckpt["optimizer"]}


@pytest.mark.slow
def test_sigterm_saves_exits_143_and_resume_is_exact(tiny_sysu, tmp_path, reference):
    recipe, run_dir = write_recipe(tmp_path, tiny_sysu), tmp_path / "run"
    proc = start_train(recipe, run_dir, resume=False)
    wait_for_training(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert f"interrupted (SIGTERM); saved {run_dir / 'last.pt'} (continue with --resume)" in err
    assert "Traceback" not in err
    assert leftovers(run_dir) == []
    resumed = start_train(recipe, run_dir, resume=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert_same_state(saved_state(run_dir), reference["state"])
    assert [(r["kind"], r["epoch"]) for r in read_records(run_dir)] == [("train", 1), ("val", 1), ("train", 2),
                                                                       ("val", 2)]
    assert leftovers(run_dir) == []


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_ends_bit_identical(tiny_sysu, tmp_path, reference):
    """kill -9 (no handler runs) at random times of the training, up to 3 times, resuming each time."""
    recipe, run_dir = write_recipe(tmp_path, tiny_sysu), tmp_path / "run"
    rng = random.Random(11)
    kills = []
    for _ in range(3):
        proc = start_train(recipe, run_dir, resume=(run_dir / "last.pt").is_file())
        wait_for_training(proc)
        delay = rng.uniform(0.0, 2.0)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            kills.append(round(delay, 2))
        proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL
    assert kills, "no kill landed during training"
    final = start_train(recipe, run_dir, resume=(run_dir / "last.pt").is_file())
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert_same_state(saved_state(run_dir), reference["state"])
    assert [(r["kind"], r["epoch"]) for r in read_records(run_dir)] == [("train", 1), ("val", 1), ("train", 2),
                                                                       ("val", 2)]
    assert leftovers(run_dir) == [], kills
