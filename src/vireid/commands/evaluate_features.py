"""``vireid evaluate-features FEATS.npz --dataset NAME ...``: score a features file under a dataset's official protocol.

FEATS.npz holds ``features`` (N, D) float and ``paths`` (N,) dataset-relative paths (``vireid
extract`` writes it). The plan comes from vireid's vendored split files, or from ``--root`` (a
dataset folder, e.g. synthetic data in the SYSU layout that ships its own gallery table). The
output states the dataset, protocol, sampling table or seeds, direction, distance and trial count;
``--json`` prints exactly one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vireid.errors import ConfigError

# flag -> (datasets it applies to, plan setting name)
_PLAN_FLAGS = {
    "mode": (("sysu-mm01",), "mode"),
    "shots": (("sysu-mm01",), "shots"),
    "gallery_sampling": (("sysu-mm01",), "sampling"),
    "direction": (("regdb", "llcm", "manifest"), "direction"),
    "trials": (("regdb",), "trials"),
    "allow_other_trials": (("regdb",), "allow_other_trials"),
    "exclusion": (("manifest",), "exclusion"),
    "cmc": (("manifest",), "cmc_mode"),
}
_OPTION_FLAGS = {"trial": (("regdb",), "trial"), "image_root": (("manifest",), "image_root")}
# the single-modality, occluded/partial and text-to-image readers (PROTOCOLS.md, last section)
_NEW_DATASETS = ("market1501", "dukemtmc", "msmt17", "cuhk03-np", "occluded-duke", "occluded-reid", "partial-reid",
                 "partial-ilids", "p-ethz", "cuhk-pedes", "icfg-pedes", "rstpreid")
_TEXT_DATASETS = ("cuhk-pedes", "icfg-pedes", "rstpreid")
_OPTION_FLAGS.update({"counts": (_NEW_DATASETS, "counts"), "version": (("cuhk03-np",), "version"),
                      "split": (_TEXT_DATASETS, "split")})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.data.datasets import dataset_names

    parser.add_argument("features", metavar="FEATS.npz", help="features file: 'features' (N, D), 'paths' (N,)")
    parser.add_argument("--dataset", required=True, choices=dataset_names(), help="protocol to evaluate under")
    parser.add_argument("--root", default="", help="dataset root (needed for manifest; for SYSU-layout data with "
                        "its own exp/rand_perm_cam.mat); default: vireid's vendored split files")
    sysu = parser.add_argument_group("sysu-mm01")
    sysu.add_argument("--mode", choices=["all", "indoor"], help="all-search (default) or indoor-search")
    sysu.add_argument("--shots", type=int, choices=[1, 10], help="gallery images per identity and camera (default 1)")
    sysu.add_argument("--gallery-sampling", choices=["official", "seeded"],
                      help="official kit table (default) or mangye16's random.seed(trial) scheme")
    other = parser.add_argument_group("regdb / llcm / manifest")
    other.add_argument("--direction", help="regdb: visible-to-thermal (default) | thermal-to-visible; "
                       "llcm, manifest: infrared-to-visible (default) | visible-to-infrared")
    other.add_argument("--trial", type=int,
                       help="regdb: the trial (1..10) whose split the model was trained on (default 1)")
    other.add_argument("--trials", help="regdb: trials to evaluate, 'all' or e.g. 1,2,3 (default: --trial)")
    other.add_argument("--allow-other-trials", action="store_const", const=True, default=None,
                       help="regdb: score trials other than --trial (only for a model that never trained on "
                            "--trial's split: each trial's test identities are other trials' training identities)")
    other.add_argument("--exclusion", choices=["none", "same-id-same-camera", "sysu-same-location"],
                       help="manifest: gallery entries removed per query (default same-id-same-camera)")
    other.add_argument("--cmc", choices=["identity", "image"], help="manifest: CMC definition (default image)")
    other.add_argument("--image-root", help="manifest: folder the paths are relative to (default: the manifest's)")
    new = parser.add_argument_group("market1501, dukemtmc, msmt17, cuhk03-np, occluded/partial and text sets")
    new.add_argument("--counts", choices=["warn", "strict", "off"],
                     help="check of the image/identity counts against the official ones (default warn)")
    new.add_argument("--version", choices=["labeled", "detected"], help="cuhk03-np: the boxes (default labeled)")
    new.add_argument("--split", choices=["test", "val"], help="cuhk-pedes, rstpreid: evaluated split (default test); "
                     "the paths of captions are '<image path>#<k>'; features are L2-normalised, cosine distance")
    from vireid.commands._distance import add_distance_arguments

    add_distance_arguments(parser)
    parser.add_argument("--normalize", action="store_true", help="L2-normalise the features first")
    parser.add_argument("--device", default="cpu", help="where distances are computed (default cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    from vireid.rerank import add_rerank_arguments

    add_rerank_arguments(parser)


def _collect(args: argparse.Namespace, flags: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, (datasets, key) in flags.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if args.dataset not in datasets:
            raise ConfigError(f"--{flag.replace('_', '-')} does not apply to --dataset {args.dataset} "
                              f"(only to {', '.join(datasets)})")
        out[key] = value
    return out


def _parse_trials(text: str) -> str | list[int]:
    if text.strip().lower() == "all":
        return "all"
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--trials must be 'all' or comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from vireid.data.datasets import plan_for_relpaths
    from vireid.engine.runtime import resolve_device
    from vireid.evaluation.features import load_features
    from vireid.evaluation.protocols import evaluate_plan, format_table
    from vireid.commands._distance import check_distance_args, jaccard_from_args, needs_prior, record_distance
    from vireid.rerank import reranker_from_args

    device = resolve_device(args.device, "--device")
    settings = _collect(args, _PLAN_FLAGS)
    options = _collect(args, _OPTION_FLAGS)
    if "trials" in settings:
        settings["trials"] = _parse_trials(settings["trials"])
    distance_fn, rerank_settings = reranker_from_args(args)
    check_distance_args(args, distance_fn)
    if args.distance == "jaccard":
        if args.dataset in _TEXT_DATASETS:
            raise ConfigError(f"--distance jaccard does not apply to --dataset {args.dataset} (the text-to-image "
                              "protocol compares L2-normalised features by cosine)")
        if needs_prior(args):
            raise ConfigError("--jaccard-lambda > 0 needs --jaccard-prior FILE.npz (a co-occurrence prior of "
                              "training features) with evaluate-features")
        distance_fn = jaccard_from_args(args)
    feats = load_features(args.features)
    if feats.metadata and feats.metadata.get("run") is not None:  # a refiner reading the run's model (nformer)
        from vireid.rerank.registry import bind_run

        bind_run(distance_fn, rerank_settings, feats.metadata["run"], feats.metadata.get("checkpoint") or "best")
    if args.dataset in _TEXT_DATASETS:  # the text-to-image protocol: L2-normalised features, dot product
        args.distance, args.normalize = "cosine", True
    plan, samples = plan_for_relpaths(args.dataset, feats.paths, args.root, options=options, **settings)
    result = evaluate_plan(plan, samples, feats.features, distance="euclidean" if args.distance == "jaccard"
                           else args.distance, normalize=args.normalize, device=device, distance_fn=distance_fn)
    record_distance(result, args, distance_fn)
    result["settings"]["rerank"] = rerank_settings
    result["settings"]["features_file"] = str(args.features)
    result["settings"]["features"] = f"{feats.features.shape[0]} x {feats.features.shape[1]}"
    if feats.metadata:
        result["settings"]["features_metadata"] = feats.metadata
    if args.json:
        print(json.dumps(result, sort_keys=False))
    else:
        print(format_table(result))
    return 0
