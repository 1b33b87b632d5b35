"""``vireid report --run D [--run D2 ...]``: the report of an evaluated run, or runs side by side.

One run: ``D/report/`` (or ``--out``) gets results.md/json, cmc.png, ranked_list.png with file
names, curves.png (from metrics.jsonl), tsne.png, distances.png, gradcam.png and activations.png
(:mod:`vireid.report.run_report`). Several runs (e.g. baseline vs method, same dataset): one report
per run plus ``compare.md`` and side-by-side figures in ``--out`` (default ``report_compare``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vireid.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.commands.test import add_protocol_arguments

    parser.add_argument("--run", action="append", required=True, metavar="RUN_DIR",
                        help="run folder written by vireid train (repeat to compare runs side by side)")
    parser.add_argument("--label", action="append", default=[], help="name of each run in the figures (default: "
                        "recipe name, model, epoch)")
    parser.add_argument("--checkpoint", default="best", help="best (validation-selected, default), last, or a path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.root=/data/RegDB")
    add_protocol_arguments(parser)
    parser.add_argument("--out", help="report folder (default RUN_DIR/report; report_compare for several runs)")
    parser.add_argument("--queries", type=int, default=8, help="queries shown in ranked lists and heatmaps (default 8)")
    parser.add_argument("--no-heatmaps", action="store_true", help="skip Grad-CAM and activation maps")


def run(args: argparse.Namespace) -> int:
    from vireid.commands._common import load_run_config
    from vireid.commands.test import parse_protocol
    from vireid.report.from_run import evaluate_run
    from vireid.report.run_report import write_comparison, write_run_report

    if args.label and len(args.label) != len(args.run):
        raise ConfigError(f"--label given {len(args.label)} times for {len(args.run)} --run folders")
    evs = []
    for i, run_dir in enumerate(args.run):
        cfg = load_run_config(run_dir, args.overrides)
        protocol = parse_protocol(cfg.eval.protocol, args.protocol)
        ev = evaluate_run(run_dir, checkpoint=args.checkpoint, protocol=protocol, overrides=args.overrides,
                          label=args.label[i] if args.label else None)
        out = Path(args.out) / f"run{i + 1}" if args.out and len(args.run) > 1 else \
            Path(args.out or Path(run_dir) / "report")
        written = write_run_report(ev, out, queries=args.queries, heatmaps=not args.no_heatmaps)
        print(f"{ev.label}: rank-1 {ev.result['mean']['rank1']:.2f}, mAP {ev.result['mean']['mAP']:.2f}, "
              f"mINP {ev.result['mean']['mINP']:.2f}; report: {out} ({', '.join(written['files'])})")
        evs.append(ev)
    if len(evs) > 1:
        out = Path(args.out or "report_compare")
        files = write_comparison(evs, out, queries=args.queries)
        print(f"comparison: {out} ({', '.join(files)})")
    return 0
