"""``vireid test --run RUN_DIR``: score a trained run under its dataset's official protocol.

Test-time options (flip augmentation, re-ranking) are off unless given, and every output
records them next to the protocol, sampling and direction that produced the numbers.
"""

from __future__ import annotations

import argparse
import json

from vireid.commands._common import load_run_config
from vireid.errors import ConfigError


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", action="append", default=[], metavar="KEY=VALUE",
                        help="protocol setting overriding the run's eval.protocol, e.g. mode=indoor, shots=10, "
                             "sampling=seeded, direction=thermal-to-visible (repeatable)")


def parse_protocol(base: dict, items: list[str]) -> dict:
    import yaml

    from vireid.config import yaml_load

    settings = dict(base)
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--protocol {item!r} must look like key=value")
        key, value = item.split("=", 1)
        try:
            settings[key.strip()] = yaml_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--protocol {item!r}: the value is not valid YAML ({exc})") from None
    return settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vireid.rerank import add_rerank_arguments

    parser.add_argument("--run", required=True, help="run folder written by vireid train")
    parser.add_argument("--checkpoint", default="best", help="best (validation-selected, default), last, or a path")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation (reported)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.root=/data/SYSU-MM01")
    add_protocol_arguments(parser)
    add_rerank_arguments(parser)
    from vireid.commands._distance import add_distance_arguments

    add_distance_arguments(parser)
    parser.add_argument("--no-normalize", action="store_true",
                        help="compare the raw embeddings (default: L2-normalised, except for --distance jaccard)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", nargs="?", const="", metavar="DIR",
                        help="also write the run's report (results.md, cmc.png, ranked_list.png, curves, t-SNE, "
                             "Grad-CAM; see vireid report) into DIR (default RUN_DIR/report)")
    parser.add_argument("--out", help="also write the JSON result to this file")


def run(args: argparse.Namespace) -> int:
    from vireid.engine.evaluate import evaluate_model, load_trained_model, resolve_checkpoint
    from vireid.config import dataset_errors
    from vireid.engine.runtime import runtime_from_config
    from vireid.evaluation.protocols import format_table
    from vireid.commands._distance import (check_distance_args, jaccard_from_args, needs_prior, penalty_form,
                                          record_distance)
    from vireid.rerank import reranker_from_args
    from vireid.rerank.registry import bind_run
    from vireid.utils.io import atomic_write_json

    cfg = load_run_config(args.run, args.overrides)
    protocol = parse_protocol(cfg.eval.protocol, args.protocol)
    errors = dataset_errors(cfg.data, protocol, "data", "--protocol")
    if errors:
        raise ConfigError("\n".join(errors))
    distance_fn, rerank_settings = reranker_from_args(args)
    check_distance_args(args, distance_fn)
    if args.report is not None and (args.distance != "euclidean" or args.no_normalize):
        raise ConfigError("--report scores L2-normalised features by Euclidean distance; drop --report to test "
                          f"--distance {args.distance}{' --no-normalize' if args.no_normalize else ''}")
    bind_run(distance_fn, rerank_settings, args.run, args.checkpoint)  # a refiner reading the run's model (nformer)
    if args.report is not None:  # one evaluation feeds the table and the report
        from pathlib import Path

        from vireid.report.from_run import evaluate_run
        from vireid.report.run_report import write_run_report

        ev = evaluate_run(args.run, checkpoint=args.checkpoint, protocol=protocol, overrides=args.overrides,
                          flip=args.flip, distance_fn=distance_fn, rerank_settings=rerank_settings)
        write_run_report(ev, Path(args.report or Path(args.run) / "report"))
        result = {k: v for k, v in ev.result.items() if k not in ("cmc", "ranked")}
    else:
        with runtime_from_config(cfg.runtime, deterministic=False) as runtime:
            model, ckpt = load_trained_model(cfg, resolve_checkpoint(args.run, args.checkpoint), runtime)
            if args.distance == "jaccard":
                prior, source = None, ""
                if needs_prior(args):  # from the run's own training images (its recipe, without --set)
                    from vireid.methods.mos.run_prior import training_prior

                    prior, source = training_prior(model, load_run_config(args.run), runtime,
                                                   top_k=args.jaccard_top_k or 32, batch_size=cfg.eval.batch_size,
                                                   form=penalty_form(args))
                distance_fn = jaccard_from_args(args, prior, source)
            result = evaluate_model(model, cfg, runtime, protocol=protocol, flip=args.flip, distance_fn=distance_fn,
                                    rerank_settings=rerank_settings,
                                    distance="euclidean" if args.distance == "jaccard" else args.distance,
                                    normalize=args.distance != "jaccard" and not args.no_normalize)
            record_distance(result, args, distance_fn)
        result["settings"]["checkpoint"] = {"which": args.checkpoint, "epoch": ckpt["epoch"]}
    if args.out:
        atomic_write_json(args.out, result)
    print(json.dumps(result) if args.json else format_table(result))
    return 0
