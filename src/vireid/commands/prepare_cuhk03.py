"""``vireid prepare-cuhk03 --root ROOT [--versions labeled detected] [--overwrite]``: extract the
images of the original ``ROOT/cuhk-03.mat`` (HDF5) into ``ROOT/images_{labeled,detected}/``, the folders
``cuhk03_new_protocol_config_{labeled,detected}.mat`` names (:mod:`vireid.data.datasets.cuhk03_mat`)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="CUHK03 folder holding cuhk-03.mat (or cuhk03_release/cuhk-03.mat)")
    parser.add_argument("--versions", nargs="+", choices=("labeled", "detected"), default=["labeled", "detected"],
                        help="which boxes to extract (default both)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing images_<version>/ folders")


def run(args: argparse.Namespace) -> int:
    from vireid.data.datasets.cuhk03_mat import extract_cuhk03

    counts = extract_cuhk03(args.root, tuple(args.versions), overwrite=args.overwrite)
    print(json.dumps({"root": args.root, "images": counts}))
    return 0
