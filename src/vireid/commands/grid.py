"""``vireid grid GRID.yaml [--out DIR] [--seeds S ...] [--jobs N] [--set k=v ...] [--table-only]``.

Runs a grid file's recipes x variants x seeds (``configs/grids/``: the MRDA ablation, the
AGW/CAJ/MRDA comparison, DAN on synthetic target domains) as ``vireid train``/``test``/``adapt``
subprocesses, ``--jobs`` at a time (one compute thread each), skipping cells that finished with
the same resolved configuration, and writes ``OUT/table.md`` and ``OUT/table.json``: mean ±
sample standard deviation over seeds, the evaluator's protocol line and this command. Exit code
1 when a cell failed (the table is still written, without it), 2 on a bad grid file or override.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from vireid.engine.grid.runner import CellOutcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", help="grid file (configs/grids/*.yaml)")
    parser.add_argument("--out", help="output folder: run folders, table.md, table.json (default: the grid's out)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds (default: the grid's)")
    parser.add_argument("--recipes", nargs="+", metavar="R", help="only these recipes of the grid")
    parser.add_argument("--variants", nargs="+", metavar="V", help="only these variants (recipes without variants "
                                                                   "are kept)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every cell, after the grid's own (repeatable), e.g. --set optim.epochs=1")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="cells run side by side, each a single-threaded process (default 1)")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: write the table from the cells already finished")


def command_line(args: argparse.Namespace) -> str:
    """The ``vireid grid`` command that reproduces ``args`` (``--jobs`` changes no number, so it is left out)."""
    parts = ["vireid", "grid", str(args.grid)]
    if args.out:
        parts += ["--out", str(args.out)]
    for flag, values in (("--seeds", args.seeds), ("--recipes", args.recipes), ("--variants", args.variants)):
        if values:
            parts += [flag, *map(str, values)]
    for item in args.overrides:
        parts += ["--set", item]
    return shlex.join(parts)


def _progress(outcome: CellOutcome, done: int, total: int) -> None:
    result = outcome.result
    if result is not None:
        m = result["mean"]
        text = f"rank1 {m['rank1']:.2f} mAP {m['mAP']:.2f} mINP {m.get('mINP', float('nan')):.2f}"
    else:
        text = f"exit {outcome.returncode}, log {outcome.log}" if outcome.status == "failed" else "no result"
    print(f"[{done}/{total}] {outcome.cell.key}: {outcome.status}, {text} ({outcome.seconds:.0f} s)", flush=True)


def run(args: argparse.Namespace) -> int:
    from vireid.engine.grid import expand, load_grid, run_grid
    from vireid.engine.grid.runner import collect_cells
    from vireid.engine.grid.experiment import write_table

    spec = load_grid(args.grid)
    out = args.out or spec.out
    cells = expand(spec, out, seeds=args.seeds, overrides=args.overrides, recipes=args.recipes,
                   variants=args.variants)
    command = command_line(args)
    if args.table_only:
        report = write_table(spec, collect_cells(spec, cells), out, command)
    else:
        print(f"vireid grid: {len(cells)} cells of {spec.path} into {out}, {args.jobs} at a time", flush=True)
        report = run_grid(spec, cells, out, command, jobs=args.jobs, on_done=_progress)
    print(report["markdown"])
    print(f"wrote {out}/table.md and {out}/table.json")
    if report["failed"]:
        print(f"vireid grid: {len(report['failed'])} cell(s) did not finish: {', '.join(report['failed'])}",
              file=sys.stderr)
        return 1
    return 0
