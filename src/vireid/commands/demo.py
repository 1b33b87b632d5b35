"""``vireid demo``: the main job on the built-in synthetic dataset (what ``make demo`` runs).

Generates the synthetic dataset (once), trains the CPU recipe, evaluates it under the SYSU-MM01
protocol next to an untrained network and a colour-histogram matcher, and writes a report
folder (results.md/json, cmc.png, ranked_list.png). Re-running reuses the data and a finished run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vireid.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo", help="output folder (data/, run/, report/); default demo")
    parser.add_argument("--config", default="configs/demo_cpu.yaml", help="training recipe (default the CPU demo)")
    parser.add_argument("--ids", type=int, default=200, help="synthetic identities (default 200)")
    parser.add_argument("--images-per-camera", type=int, default=8, help="most images per identity and camera")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic dataset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set optim.epochs=5")
    parser.add_argument("--fresh", action="store_true", help="retrain even if a finished run exists")


def run(args: argparse.Namespace) -> int:
    from vireid.commands._common import TqdmProgress
    from vireid.report.demo import DemoSettings, results_markdown, run_demo

    config = Path(args.config)
    if not config.is_file():
        raise ConfigError(f"demo recipe {config} not found (run from the repository root or pass --config)")
    summary = run_demo(DemoSettings(out=Path(args.out), config=config, num_ids=args.ids,
                                    images_per_camera=args.images_per_camera, data_seed=args.data_seed,
                                    overrides=args.overrides, fresh=args.fresh), progress=TqdmProgress)
    print(results_markdown(summary))
    print(f"report: {Path(args.out) / 'report'} (results.md, results.json, cmc.png, ranked_list.png)")
    return 0
