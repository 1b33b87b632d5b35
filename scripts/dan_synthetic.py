"""DAN verification on synthetic domains: source-only, DBSCAN, DAN and the target-supervised upper bound.

Source: one procedural synthetic dataset (``vireid synth``). Targets: its ``noise``, ``lighting``,
``color`` and ``occlusion`` versions (``vireid domains``; same identities, new appearance, as DAN's
Syn-RegDB / Syn-SYSU and occluded sets, seeds/000 Tables 2-3 and 5) and an ``independent`` domain
generated with another seed (other identities, other cameras). Every method trains on the labelled
source plus the unlabelled target training split and is scored on the target's test protocol
(SYSU-MM01 all-search, single-shot, the dataset's own 10 gallery draws). Writes ``results.md`` and
``results.json`` (mean and std over the seeds of R1/R5/R10/mAP/mINP, and the proxy A-distance).

The grid is resumable: finished runs (their ``target_result.json``) are read, not retrained.

Full grid, 3 seeds (``--profile cpu``, the default: 200 ids at 64x32, 14 epochs x 20 batches, AdamW,
bf16, one compute thread; about 8 min per DAN or DBSCAN run and 3 per source-only or target run with
three processes on a 2-core CPU, 16 runs per seed: about 100 minutes for the grid when the seeds run
side by side into the same ``--out``; ``--profile gpu``: 100 ids at 128x64 on CUDA)::

    for s in 0 1 2; do .venv/bin/python scripts/dan_synthetic.py --out runs/dan_synthetic --seeds $s & done; wait
    .venv/bin/python scripts/dan_synthetic.py --out runs/dan_synthetic --seeds 0 1 2   # reads the runs, writes the table

(Generate the data first, or start one process alone until ``data/`` exists: the processes share it.)

Smoke run (one seed, tiny data, one short epoch per run; about a minute or two)::

    .venv/bin/python scripts/dan_synthetic.py --out /tmp/dan_smoke --smoke
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vireid.config import dump_config
from vireid.methods.dan.domains import KINDS, transform_dataset
from vireid.data.synthetic import SyntheticConfig, generate_dataset
from vireid.methods.dan.trainer import evaluate_on_target, read_result, run_adaptation, run_domain_gap
from vireid.methods.dan.config import AdaptConfig, load_adapt_config, target_view, variant_overrides
from vireid.engine.evaluate import load_trained_model
from vireid.engine.runtime import setup_runtime
from vireid.utils.io import atomic_write_json, atomic_write_text

logger = logging.getLogger("dan_synthetic")

TARGETS = (*KINDS, "independent")
METHOD_NAMES = {"baseline": "Source only (baseline)", "dbscan": "DBSCAN pseudo labels", "daa": "+DAA",
                "hard": "+hard label", "soft": "+soft label", "cma": "+CMA", "dan": "DAN (DAA+soft+CMA)",
                "target": "Target model (upper bound)"}
METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")
# Sizes of the data and the training, by machine. Explicit --ids/--images-per-camera/--image-*/--set win.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {  # the 3-seed grid on a 2-core CPU: ~4 min per run, 1 compute thread (see the module docstring)
        "ids": 200, "images_per_camera": 3, "image_height": 64, "image_width": 32, "seeds": [0, 1, 2],
        "overrides": ["data.height=64", "data.width=32", "data.pad=4", "data.batches_per_epoch=20",
                      "data.channel_augment=ca", "data.channel_exchange_p=0.5",
                      "optim.name=adamw", "optim.lr=0.001", "optim.epochs=14", "optim.warmup_epochs=1",
                      "optim.milestones=[10]", "optim.clip_grad_norm=5.0", "runtime.precision=bf16", "runtime.channels_last=true",
                      "runtime.num_threads=1", "dan.soft_start_epoch=3", "dan.dbscan_start_epoch=3",
                      "dan.refresh_every=2"],
    },
    "gpu": {  # configs/dan_synthetic_cpu.yaml as written (128x64, 16 x 40 batches), on CUDA
        "ids": 100, "images_per_camera": 6, "image_height": 128, "image_width": 64, "seeds": [0, 1, 2],
        "overrides": ["runtime.device=cuda", "runtime.num_threads=null", "data.num_workers=4"],
    },
    "smoke": {  # proves the pipeline end to end in a minute or two; the numbers mean nothing
        "ids": 12, "images_per_camera": 2, "image_height": 48, "image_width": 24, "seeds": [0],
        "overrides": ["data.height=48", "data.width=24", "data.num_ids=4", "data.num_instances=2", "data.pad=4",
                      "data.batches_per_epoch=2", "optim.epochs=1", "optim.warmup_epochs=0", "optim.milestones=[]",
                      "model.params.non_local=false", "target.num_per_modality=8", "target.num_ids=4",
                      "target.num_instances=2", "dan.soft_start_epoch=0", "dan.dbscan_start_epoch=0",
                      "dan.discriminator_hidden=[64]", "dan.pad_max_samples=200", "eval.protocol.trials=2",
                      "target.protocol.trials=2"],
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for data/, runs/, results.md, results.json")
    p.add_argument("--config", default="configs/dan_synthetic_cpu.yaml", help="base adaptation recipe")
    p.add_argument("--profile", choices=list(PROFILES), default="cpu",
                   help="data and training sizes: cpu (default), gpu, smoke (see PROFILES)")
    p.add_argument("--smoke", action="store_true", help="same as --profile smoke")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the profile's, 0 1 2)")
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    p.add_argument("--methods", nargs="+", choices=list(METHOD_NAMES), default=["baseline", "dbscan", "dan", "target"],
                   help="rows: baseline, dbscan, dan, target (add daa hard soft cma for the Table 4 ablation)")
    p.add_argument("--ids", type=int, help="identities of the synthetic source")
    p.add_argument("--images-per-camera", type=int)
    p.add_argument("--image-height", type=int, help="height of the generated images")
    p.add_argument("--image-width", type=int)
    p.add_argument("--data-seed", type=int, default=100, help="seed of the source; independent target: +1000")
    p.add_argument("--recompute-domain-gap", action="store_true",
                   help="recompute the proxy A-distance of every finished run from its last.pt (after a change "
                        "to how it is measured; the retrieval numbers are kept)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override of the base recipe for every run, after the profile's (repeatable)")
    args = p.parse_args(argv)
    if args.smoke:
        args.profile = "smoke"
    profile = PROFILES[args.profile]
    for key in ("ids", "images_per_camera", "image_height", "image_width", "seeds"):
        if getattr(args, key) is None:
            setattr(args, key, profile[key])
    args.overrides = list(profile["overrides"]) + args.overrides
    return args


# ----------------------------------------------------------------------------- data


def make_data(args: argparse.Namespace, root: Path) -> dict[str, Path]:
    """Source, its four synthetic domains and an independent domain (each built once; reused when present)."""
    size = dict(num_ids=args.ids, images_per_camera=args.images_per_camera, height=args.image_height,
                width=args.image_width)
    paths = {"source": root / "source", **{t: root / t for t in TARGETS}}
    if not (paths["source"] / "meta.json").is_file():
        generate_dataset(paths["source"], SyntheticConfig(seed=args.data_seed, **size), force=True)
    for kind in KINDS:
        if kind in args.targets and not (paths[kind] / "domain.json").is_file():
            transform_dataset(paths["source"], paths[kind], kind, seed=args.data_seed + 1, force=True)
    if "independent" in args.targets and not (paths["independent"] / "meta.json").is_file():
        generate_dataset(paths["independent"], SyntheticConfig(seed=args.data_seed + 1000, **size), force=True)
    return paths


# ----------------------------------------------------------------------------- runs


def recipe(args: argparse.Namespace, paths: dict[str, Path], target: str, method: str, seed: int) -> AdaptConfig:
    overrides = list(args.overrides) + variant_overrides(method) + [
        f"data.root={paths['source']}", f"target.root={paths[target]}", f"runtime.seed={seed}"]
    return load_adapt_config(args.config, overrides)


def train_and_score(cfg: AdaptConfig, run_dir: Path) -> dict[str, Any]:
    if (run_dir / "target_result.json").is_file():
        return read_result(run_dir)
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic, r.num_threads)
    start = time.perf_counter()
    result = run_adaptation(cfg, run_dir, runtime)
    logger.info("%s: %.0f s", run_dir, time.perf_counter() - start)
    return result


def score_baseline(args: argparse.Namespace, paths: dict[str, Path], seed: int, runs: Path) -> dict[str, dict]:
    """One source-only model per seed, scored on every target."""
    first = args.targets[0]
    base_dir = runs / "baseline" / f"seed{seed}"
    out = {first: train_and_score(recipe(args, paths, first, "baseline", seed), base_dir)}
    cfg0 = recipe(args, paths, first, "baseline", seed)
    r = cfg0.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic, r.num_threads)
    model = None
    for target in args.targets[1:]:
        path = base_dir / f"target_result_{target}.json"
        if path.is_file():
            out[target] = json.loads(path.read_text())
            continue
        cfg = recipe(args, paths, target, "baseline", seed)
        if model is None:
            model, _ = load_trained_model(target_view(cfg), base_dir / "last.pt", runtime)
        result = evaluate_on_target(model, cfg, runtime)
        result.update(method="source_only", components=["source"])
        if cfg.dan.proxy_a_distance:
            result["domain_gap"] = run_domain_gap(model, cfg, runtime)
        atomic_write_json(path, result)
        out[target] = result
    return out


def recompute_domain_gap(args: argparse.Namespace, paths: dict[str, Path], runs: Path) -> int:
    """Rewrite ``domain_gap`` in every finished run's result file from its ``last.pt``; return the count."""
    done = 0
    for seed in args.seeds:
        for target in args.targets:
            for method in args.methods:
                if method == "baseline":
                    run_dir = runs / "baseline" / f"seed{seed}"
                    name = "target_result.json" if target == args.targets[0] else f"target_result_{target}.json"
                else:
                    run_dir, name = runs / target / method / f"seed{seed}", "target_result.json"
                path = run_dir / name
                if not path.is_file():
                    continue
                cfg = recipe(args, paths, target, method, seed)
                if not cfg.dan.proxy_a_distance:
                    continue
                r = cfg.runtime
                runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic, r.num_threads)
                model, _ = load_trained_model(target_view(cfg), run_dir / "last.pt", runtime)
                result = json.loads(path.read_text())
                result["domain_gap"] = run_domain_gap(model, cfg, runtime)
                atomic_write_json(path, result)
                logger.info("%s: domain gap %s", path, result["domain_gap"])
                done += 1
    return done


# ----------------------------------------------------------------------------- report


def summarise(results: dict[str, dict[str, list[dict]]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for target, rows in results.items():
        table[target] = {}
        for method, runs in rows.items():
            cell: dict[str, Any] = {"seeds": len(runs)}
            for key in METRICS:
                values = [r["mean"][key] for r in runs]
                std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0  # sample std over seeds
                cell[key] = {"mean": float(np.mean(values)), "std": std, "values": values}
            gaps = [r["domain_gap"] for r in runs if "domain_gap" in r]
            if gaps:
                cell["proxy_a_distance"] = {k: float(np.mean([g[k] for g in gaps])) for k in gaps[0]}
            table[target][method] = cell
    return table


def markdown(table: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    lines = ["# DAN on synthetic target domains", "",
             f"Profile `{args.profile}`. Source: `vireid synth --ids {args.ids} --seed {args.data_seed} --images-per-camera "
             f"{args.images_per_camera} --height {args.image_height} --width {args.image_width}`; targets: its "
             f"`vireid domains` versions (seed {args.data_seed + 1}) and an independent synth (seed "
             f"{args.data_seed + 1000}). Test: target SYSU-MM01-layout protocol (all-search, single-shot, the "
             f"dataset's own gallery draws). Mean ± sample std over training seeds {args.seeds}; percent.", ""]
    for target, rows in table.items():
        lines += [f"## source -> {target}", "",
                  "| method | R1 | R5 | R10 | mAP | mINP | PAD vis / IR |", "|---|---|---|---|---|---|---|"]
        for method, cell in rows.items():
            pad = cell.get("proxy_a_distance")
            pad_text = f"{pad.get('pad_visible', float('nan')):.2f} / {pad.get('pad_infrared', float('nan')):.2f}" \
                if pad else "-"
            values = " | ".join(f"{cell[k]['mean']:.2f} ± {cell[k]['std']:.2f}" for k in METRICS)
            lines.append(f"| {METHOD_NAMES[method]} | {values} | {pad_text} |")
        lines.append("")
    lines += ["PAD: proxy A-distance (seeds/000 Eq. 1) between source and target training embeddings "
              "after training (0 = indistinguishable, 2 = separable).", "", "Produced by:", "",
              f"    {command}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    out = Path(args.out)
    paths = make_data(args, out / "data")
    runs = out / "runs"
    if args.recompute_domain_gap:
        logger.info("recomputed the domain gap of %d results", recompute_domain_gap(args, paths, runs))
    results: dict[str, dict[str, list[dict]]] = {t: {m: [] for m in args.methods} for t in args.targets}
    for seed in args.seeds:
        if "baseline" in args.methods:
            for target, result in score_baseline(args, paths, seed, runs).items():
                results[target]["baseline"].append(result)
        for target in args.targets:
            for method in args.methods:
                if method == "baseline":
                    continue
                cfg = recipe(args, paths, target, method, seed)
                results[target][method].append(train_and_score(cfg, runs / target / method / f"seed{seed}"))
    table = summarise(results)
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    atomic_write_json(out / "results.json", {"command": command, "args": vars(args), "table": table,
                                             "base_config": dump_config(recipe(args, paths, args.targets[0],
                                                                               "dan", args.seeds[0]))})
    report = markdown(table, args, command)
    atomic_write_text(out / "results.md", report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
