"""Run by tests/engine/test_ddp.py under torchrun: train, then check that the ranks agree.

Everything that holds the process group (the DDP wrapper's reducer, the trainer) lives inside
``main()`` and is released before the process group is destroyed and the interpreter exits. Left
in module globals, it was freed during interpreter finalisation, where a gloo worker thread that
needs the GIL is terminated ("terminate called without an active exception", SIGABRT): seen once
in CI, on rank 1, after training had finished.
"""

import gc
import json
import logging
import sys

import torch
import torch.distributed as dist

import vireid.methods  # noqa: F401  registers the built-in methods, as the command line does
from vireid.config import load_config
from vireid.engine.runtime import setup_runtime, teardown_runtime
from vireid.engine.trainer import Trainer


def train_and_report(cfg, out: str, runtime) -> None:
    trainer = Trainer(cfg, out, runtime)
    trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.module.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(runtime.world_size)]
    dist.all_gather(gathered, flat)
    if runtime.is_main:
        report = {"world_size": runtime.world_size,
                  "max_param_diff": max(float((g - flat).abs().max()) for g in gathered),
                  "batches_per_rank": int(trainer.steps_per_epoch)}
        with open(f"{out}/ddp_report.json", "w") as f:
            json.dump(report, f)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    cfg = load_config(sys.argv[1])
    torch.set_num_threads(1)
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic)
    try:
        train_and_report(cfg, sys.argv[2], runtime)
        gc.collect()  # the trainer and its DDP wrapper are gone before the group is destroyed
    finally:
        teardown_runtime(runtime)


if __name__ == "__main__":
    main()
