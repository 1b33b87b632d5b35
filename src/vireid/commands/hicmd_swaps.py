"""``vireid hicmd-swaps --run D --out SHEET.png [--count N] [--checkpoint best|last] [--split test|train]``.

The contact sheet of a trained Hi-CMD run (seeds/001 §9; METHODS.md §12): N identities, one visible
and one infrared image each, heading both the rows and the columns; cell (i, j) is the identity
(prototype + style codes) of row i with the pose and illumination of column j. See
:mod:`vireid.methods.hicmd.sheet`.
"""

from __future__ import annotations

import argparse

from vireid.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder of a model: hicmd recipe")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--count", type=int, default=4, help="identities (2 images each; default 4)")
    parser.add_argument("--checkpoint", default="best", help="best, last or a checkpoint path (default best)")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="images from (default test)")
    parser.add_argument("--seed", type=int, default=0, help="which images (default 0)")


def run(args: argparse.Namespace) -> int:
    from vireid.commands._common import load_run_config
    from vireid.engine import build
    from vireid.engine.evaluate import load_trained_model, resolve_checkpoint
    from vireid.engine.runtime import runtime_from_config
    from vireid.methods.hicmd.model import HiCMD
    from vireid.methods.hicmd.sheet import pick_pairs, write_swap_sheet

    if args.count < 1:
        raise ConfigError(f"--count must be >= 1, got {args.count}")
    cfg = load_run_config(args.run)
    if cfg.model.name != "hicmd":
        raise ConfigError(f"{args.run}: model {cfg.model.name!r} is not hicmd; the swap sheet needs Hi-CMD's generator")
    dataset = build.build_dataset_from_config(cfg.data)
    pool = dataset.test if args.split == "test" else dataset.train
    try:
        samples = pick_pairs(pool, args.count, args.seed)
    except ValueError as exc:
        raise ConfigError(f"{args.run}: {args.split} split: {exc}") from None
    with runtime_from_config(cfg.runtime, deterministic=False) as runtime:
        model, ckpt = load_trained_model(cfg, resolve_checkpoint(args.run, args.checkpoint), runtime)
        assert isinstance(model, HiCMD)
        out = write_swap_sheet(model, samples, args.out, cfg.data.height, cfg.data.width)
    print(f"wrote {out}: {len(samples)} x {len(samples)} swaps ({args.split} images of "
          f"{len(samples) // 2} identities, visible then infrared each; checkpoint epoch {ckpt['epoch']})")
    return 0
