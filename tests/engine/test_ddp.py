"""Two-process DistributedDataParallel training on CPU (gloo, loopback) through torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_train_agree_and_only_rank0_writes(tiny_sysu, tmp_path):
    recipe = {
        "data": {"dataset": "sysu-mm01", "root": str(tiny_sysu), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 4},
        "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "runtime": {"device": "cpu", "seed": 1},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path / "r.yaml"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "ddp_report.json").read_text())
    assert report["world_size"] == 2
    assert report["max_param_diff"] == 0.0  # every rank holds the same weights after training
    assert report["batches_per_rank"] == 2  # 4 batches per epoch split over 2 ranks
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["train", "val"]  # one writer, not two
    assert "joined process group: rank 0 of 2 (gloo)" in proc.stderr
