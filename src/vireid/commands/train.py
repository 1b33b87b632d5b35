"""``vireid train --config RECIPE.yaml [--set key=value ...] [--run-dir DIR] [--resume]``.

Works alone or under ``torchrun --nproc-per-node N -m vireid.cli train ...`` (DDP: gloo on CPU,
NCCL on CUDA; only rank 0 writes). One process writes a run folder at a time (a lock file
``RUN_DIR/.vireid.lock`` names it); SIGINT and SIGTERM save ``last.pt`` at the last completed
step and exit with 130 / 143.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vireid.commands._common import TqdmProgress, add_config_arguments, locked_run_dir
from vireid.config import dump_config, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--run-dir", help="output folder (default: OUTPUT_DIR/NAME from the config)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration (YAML, as the run's config.yaml) and exit")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    from vireid.engine.runtime import runtime_from_config
    from vireid.engine.trainer import trainer_class

    run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.output_dir) / cfg.name
    with locked_run_dir(run_dir, args.resume) as last, runtime_from_config(cfg.runtime) as runtime:
        trainer = trainer_class(cfg)(cfg, run_dir, runtime, progress=TqdmProgress)  # one writer per run folder
        if args.resume:
            trainer.resume(last)
        summary = trainer.fit()
        del trainer  # its DDP wrapper holds the process group: release it before the group is destroyed
    if runtime.is_main:
        print(json.dumps({"run_dir": str(run_dir), "best": summary["best"]}, indent=2))
    return 0
