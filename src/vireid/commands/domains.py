"""``vireid domains --source ROOT --kind noise|lighting|color|occlusion --out DIR [--seed S]``.

Writes a synthetic target domain of a dataset (DAN, seeds/000 "合成目标域"; METHODS.md §2) in the
source's own layout, plus ``domain.json`` and a before/after ``domain_contact_sheet.png``. See
:mod:`vireid.methods.dan.domains`.
"""

from __future__ import annotations

import argparse
import sys
import time

from vireid.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.methods.dan.domains import KINDS, PARAMS

    defaults = "; ".join(f"{k}: " + ", ".join(f"{f}={v}" for f, v in vars(PARAMS[k]()).items()) for k in KINDS)
    parser.add_argument("--source", required=True, help="dataset root to derive the domain from")
    parser.add_argument("--kind", required=True, choices=KINDS, help="the synthetic domain")
    parser.add_argument("--out", required=True, help="folder to create (same layout as --source)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; each image draws from (seed, kind, relpath)")
    parser.add_argument("--dataset", default="auto",
                        help="reader of --source (sysu-mm01, regdb, llcm, manifest; default: auto-detect)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a parameter of the kind (repeatable). Defaults: {defaults}")
    parser.add_argument("--force", action="store_true", help="replace an --out this command wrote before")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def parse_params(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r} must look like key=value")
        try:
            out[key.strip()] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise ConfigError(f"--param {item!r}: {value!r} is not a number") from None
    return out


def run(args: argparse.Namespace) -> int:
    from vireid.methods.dan.domains import transform_dataset

    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % max(1, total // 20) == 0):
            print(f"\rvireid domains: images {done}/{total}", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    meta = transform_dataset(args.source, args.out, args.kind, args.seed, dataset=args.dataset,
                             params=parse_params(args.param), force=args.force, progress=progress)
    print(f"wrote the {args.kind} domain of {meta['source']} ({meta['dataset']}) to {args.out} "
          f"in {time.perf_counter() - start:.1f} s: {meta['transformed']} images transformed, "
          f"{meta['unchanged_images']} unchanged, {meta['copied_files']} other files copied")
    print(f"  parameters: {meta['params']}; look at {args.out}/{meta['contact_sheet']}")
    return 0
