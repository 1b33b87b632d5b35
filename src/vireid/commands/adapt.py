"""``vireid adapt --config RECIPE.yaml [--variant NAME] [--set key=value ...] [--run-dir DIR]``.

Cross-modal cross-domain adaptation from a labelled source (``data``) to an unlabelled target
(``target``): DAN (Fu et al., TCSVT 2022, seeds/000; METHODS.md §2), its Table 4 ablation rows,
and the baselines (source only, target-supervised upper bound, DBSCAN pseudo labels), chosen by
``dan.method`` and the ``dan`` switches, or by ``--variant``. Prints the target's test numbers
and writes them to RUN_DIR/target_result.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.commands._common import add_config_arguments
    from vireid.methods.dan.config import VARIANTS

    add_config_arguments(parser)
    parser.add_argument("--variant", choices=list(VARIANTS),
                        help="shorthand for the dan.* switches of one comparison row: "
                             + ", ".join(f"{k} ({', '.join(f'{a}={b}' for a, b in v.items())})"
                                         for k, v in VARIANTS.items()))
    parser.add_argument("--run-dir", help="output folder (default: OUTPUT_DIR/NAME from the config)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    parser.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="model to score on the target: last (default; no target labels pick it) or best "
                             "(selected on held-out source identities)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from vireid.commands._common import TqdmProgress, locked_run_dir
    from vireid.engine.runtime import runtime_from_config
    from vireid.methods.dan.config import load_adapt_config, variant_overrides
    from vireid.methods.dan.trainer import run_adaptation
    from vireid.evaluation.protocols import format_table

    overrides = (variant_overrides(args.variant) if args.variant else []) + list(args.overrides)
    cfg = load_adapt_config(args.config, overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.output_dir) / cfg.name
    with locked_run_dir(run_dir, args.resume), runtime_from_config(cfg.runtime) as runtime:  # one writer per run folder
        result = run_adaptation(cfg, run_dir, runtime, progress=TqdmProgress, resume=args.resume,
                                checkpoint=args.checkpoint)
    if not runtime.is_main:
        return 0
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{cfg.dan.method} ({', '.join(result['components'])}): {cfg.data.root} -> {cfg.target.root}")
        print(format_table(result))
        if "domain_gap" in result:
            print("proxy A-distance (source vs target train): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in result["domain_gap"].items()))
        print(f"run folder: {run_dir} (target_result.json; `vireid test --run {run_dir}` scores the target)")
    return 0
