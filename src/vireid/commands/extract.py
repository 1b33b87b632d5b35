"""``vireid extract --run RUN_DIR --out FEATS.npz``: the test features that ``vireid evaluate-features`` reads.

The file holds ``features`` (N, D) float32 (post-BN embeddings, not normalised: choose
``--normalize``/``--distance`` at evaluation) and ``paths`` (N,) dataset-relative paths.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder written by vireid train")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, or a path")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--split", choices=["test", "train"], default="test", help="which images (default test)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored image's embedding")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.root=/data/SYSU-MM01")


def run(args: argparse.Namespace) -> int:
    from vireid.commands._common import load_run_config
    from vireid.engine.build import build_dataset_from_config
    from vireid.engine.evaluate import load_trained_model, resolve_checkpoint
    from vireid.engine.inference import extract_features
    from vireid.engine.runtime import runtime_from_config
    from vireid.evaluation.features import save_features

    cfg = load_run_config(args.run, args.overrides)
    with runtime_from_config(cfg.runtime, deterministic=False) as runtime:
        model, ckpt = load_trained_model(cfg, resolve_checkpoint(args.run, args.checkpoint), runtime)
        dataset = build_dataset_from_config(cfg.data)
        samples = dataset.test if args.split == "test" else dataset.train
        feats = extract_features(model, samples, cfg.data, runtime, batch_size=cfg.eval.batch_size, flip=args.flip)
    save_features(args.out, feats, [s.relpath for s in samples],
                  metadata={"run": str(args.run), "checkpoint": args.checkpoint, "epoch": ckpt["epoch"],
                            "flip": bool(args.flip), "embedding": "post-BNNeck, not normalised"})
    print(f"wrote {args.out}: {feats.shape[0]} x {feats.shape[1]} features of the {args.split} images")
    return 0
