"""``vireid search-text --run RUN [--query TEXT ...] [--top K] [--split test|val] [--gallery-dir DIR ...] [--json]``.

Text -> image retrieval with a trained MCMA run (``vireid train-text``). Without ``--query``: the
text-to-image protocol on the run dataset's split (every caption against every image of the split,
no camera filtering, L2-normalised features, cosine; R1/R5/R10/R20, mAP, mINP). With ``--query``:
the ``--top`` images of the split closest to each free-text query, with their identities.
``--gallery-dir``: only the images under these first-level folders of the image tree (and, for the
protocol, only their captions as queries), e.g. the visible cameras of the synthetic layout.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder written by vireid train-text")
    parser.add_argument("--query", action="append", default=[], metavar="TEXT", help="a caption to search for (repeatable)")
    parser.add_argument("--top", type=int, default=10, help="images listed per query (default 10)")
    parser.add_argument("--split", choices=["test", "val"], default="test", help="evaluated split / gallery (default test)")
    parser.add_argument("--gallery-dir", dest="gallery_dirs", action="append", default=[], metavar="DIR",
                        help="keep only the images under this first-level folder, e.g. cam1 (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.root=/data/CUHK-PEDES")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="also write the JSON result to this file")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from vireid.engine.runtime import runtime_from_config
    from vireid.errors import ConfigError
    from vireid.evaluation.protocols import format_table
    from vireid.methods.mcma.config import load_mcma_config
    from vireid.methods.mcma.train import (embed_captions, embed_images, evaluate_mcma, image_folder,
                                           load_mcma_run, load_text_dataset, text_encode_fn)
    from vireid.types import Modality
    from vireid.utils.io import atomic_write_json

    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    from pathlib import Path

    if not (Path(args.run) / "config.yaml").is_file():
        raise ConfigError(f"{args.run} is not a vireid train-text run folder: config.yaml is missing")
    cfg = load_mcma_config(Path(args.run) / "config.yaml", args.overrides)
    with runtime_from_config(cfg.runtime, deterministic=False) as runtime:
        model, tokenizer, cfg = load_mcma_run(args.run, runtime, args.overrides)
        if not args.query:
            result = evaluate_mcma(model, tokenizer, cfg, runtime, split=args.split, gallery_dirs=args.gallery_dirs)
            text = format_table(result)
        else:
            ds = load_text_dataset(cfg, args.split)
            images = [s for s in ds.test if int(s.modality) != int(Modality.TEXT)
                      and (not args.gallery_dirs or image_folder(s.relpath) in args.gallery_dirs)]
            if not images:
                raise ConfigError(f"--gallery-dir {', '.join(args.gallery_dirs)}: no {args.split} image lies there")
            g = embed_images(model, images, cfg, runtime)
            q = embed_captions(model, text_encode_fn(model, tokenizer), list(args.query), cfg.data.caption_length, runtime)
            g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            scores = q @ g.T  # (nq, ng) cosine
            result = {"split": args.split, "gallery": len(images), "queries": []}
            lines = []
            for text_q, row in zip(args.query, scores):
                top = np.argsort(-row, kind="stable")[: args.top]
                hits = [{"path": images[i].relpath, "identity": images[i].pid, "score": round(float(row[i]), 4)}
                        for i in top]
                result["queries"].append({"query": text_q, "results": hits})
                lines.append(f"query: {text_q}")
                lines += [f"  {k + 1:2d}. {h['path']}  id {h['identity']}  cos {h['score']:.3f}" for k, h in enumerate(hits)]
            text = "\n".join(lines)
    if args.out:
        atomic_write_json(args.out, result)
    print(json.dumps(result) if args.json else text)
    return 0
