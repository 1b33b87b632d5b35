"""``vireid train-text --config RECIPE.yaml [--set key=value ...] [--run-dir DIR]``: train MCMA
(text -> image re-ID, seeds/002 §6; METHODS.md §15) on a caption + image dataset, then score the
test split under the text-to-image protocol (written to RUN_DIR/result.json and printed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.commands._common import add_config_arguments

    add_config_arguments(parser)
    parser.add_argument("--run-dir", help="output folder (default: OUTPUT_DIR/NAME from the config)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe (YAML) and exit")


def run(args: argparse.Namespace) -> int:
    from vireid.config import dump_config
    from vireid.methods.mcma.config import load_mcma_config

    cfg = load_mcma_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    from vireid.commands._common import check_run_dir
    from vireid.engine.run_lock import run_lock
    from vireid.engine.runtime import runtime_from_config
    from vireid.evaluation.protocols import format_table
    from vireid.methods.mcma.train import train_mcma

    run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.output_dir) / cfg.name
    with run_lock(run_dir), runtime_from_config(cfg.runtime) as runtime:
        check_run_dir(run_dir, resume=False)
        result = train_mcma(cfg, run_dir, runtime)
    print(json.dumps(result) if args.json else format_table(result))
    return 0
