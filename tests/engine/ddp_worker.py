"""Run by tests/engine/test_ddp.py under torchrun: train, then check that the ranks agree."""

import json
import logging
import sys

import torch
import torch.distributed as dist

import vireid.methods  # noqa: F401  registers the built-in methods, as the command line does
from vireid.config import load_config
from vireid.engine.runtime import setup_runtime, teardown_runtime
from vireid.engine.trainer import Trainer

logging.basicConfig(level=logging.INFO)
cfg = load_config(sys.argv[1])
out = sys.argv[2]
torch.set_num_threads(1)
r = cfg.runtime
runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic)
trainer = Trainer(cfg, out, runtime)
trainer.fit()
flat = torch.cat([p.detach().flatten() for p in trainer.model.module.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(runtime.world_size)]
dist.all_gather(gathered, flat)
batches = torch.tensor([trainer.steps_per_epoch])
if runtime.is_main:
    report = {"world_size": runtime.world_size,
              "max_param_diff": max(float((g - flat).abs().max()) for g in gathered),
              "batches_per_rank": int(batches)}
    with open(f"{out}/ddp_report.json", "w") as f:
        json.dump(report, f)
teardown_runtime(runtime)
