"""Run-folder lock: one writer, the owner named to a second, stale locks taken over, re-entrant."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import vireid
from vireid.engine import run_lock
from vireid.engine.checkpoint import remove_stale_temp_files
from vireid.engine.run_lock import LOCK_NAME, RunLockedError

SRC = str(Path(vireid.__file__).resolve().parents[1])
HOLDER = """
import sys, time
from vireid.engine import run_lock
run_lock.acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], env={**os.environ, "PYTHONPATH": SRC},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


def test_second_writer_gets_a_clear_error_naming_the_owner(tmp_path, holder):
    with pytest.raises(RunLockedError, match=rf"run folder .*run is in use by pid {holder.pid} on host "
                                             rf"{socket.gethostname()}"):
        run_lock.acquire(tmp_path / "run")
    assert not run_lock.holds(tmp_path / "run")


def test_two_train_commands_on_one_run_dir(tmp_path, holder, capsys):
    from vireid.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    rc = main(["train", "--run-dir", str(tmp_path / "run"), "--config", str(recipe)])
    err = capsys.readouterr().err
    assert rc == 2 and f"is in use by pid {holder.pid}" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]  # nothing written


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], env={**os.environ, "PYTHONPATH": SRC},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    proc.kill()  # kill -9: the lock file stays, its flock goes with the process
    proc.wait(timeout=30)
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == proc.pid
    with run_lock.run_lock(run_dir):
        owner = json.loads((run_dir / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert f"replacing the stale lock of pid {proc.pid}" in caplog.text
    assert not (run_dir / LOCK_NAME).exists()


def test_reentrant_and_a_created_folder_is_removed_when_left_empty(tmp_path):
    run_dir = tmp_path / "new" / "run"
    with run_lock.run_lock(run_dir):
        with run_lock.run_lock(run_dir):
            assert run_lock.holds(run_dir)
        assert (run_dir / LOCK_NAME).is_file()
    assert not run_dir.exists()  # created by the lock, nothing written: gone again
    existing = tmp_path / "kept"
    existing.mkdir()
    with run_lock.run_lock(existing):
        pass
    assert existing.is_dir() and list(existing.iterdir()) == []


def test_stale_temp_files_of_atomic_writes_are_removed(tmp_path):
    names = [".last.pt.k3j_x9a1.tmp.pt", ".best.pt.abcdefgh.tmp.pt", ".metrics.jsonl.0123abcd.tmp.jsonl",
             ".config.yaml.zzzzzzzz.tmp.yaml"]
    keep = ["last.pt", "notes.tmp.txt", ".hidden", ".last.pt.short.tmp.pt"]
    for name in names + keep:
        (tmp_path / name).write_text("x")
    assert remove_stale_temp_files(tmp_path) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
