"""``vireid ablate --config RECIPE.yaml [--seeds 0 1 2] [--out DIR] [--variants ...] [--set k=v ...]``.

Runs MRDA's ablation grid (Zhang et al., seeds/003 §3.3 Table 2 and §2.4 Table 1; METHODS.md §1
"Numbers") on an MRDA recipe: every variant overrides ``model.params.use_mrm`` and
``model.params.attention``, is trained with the engine's :class:`~vireid.engine.trainer.Trainer`
and scored with :func:`~vireid.engine.evaluate.evaluate_model` under the recipe's test protocol,
once per seed. The table (``ablation.md`` and ``ablation.json`` in ``--out``) gives the mean and the
sample standard deviation over seeds beside the paper's numbers, which are SYSU-MM01 all-search
results and not comparable with runs on other data.

Variants without MRM drop the losses that need the masked copies (``region_centre``). Each run
lives in ``OUT/<variant>/seed<S>``; a finished run with the same configuration is reused and an
interrupted one resumed, so an interrupted grid continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vireid.commands._common import TqdmProgress, add_config_arguments
from vireid.config import TrainConfig, dump_config, load_config
from vireid.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    """One row of the grid: the MRM switch, the pooler, and the paper's SYSU-MM01 all-search R1/mAP."""

    use_mrm: bool
    attention: str
    paper_rank1: float
    paper_mAP: float
    paper_table: str


VARIANTS: dict[str, Variant] = {
    "baseline": Variant(False, "none", 63.21, 59.87, "Table 2"),
    "mrm": Variant(True, "none", 68.39, 61.82, "Table 2"),
    "dam": Variant(False, "dam", 68.47, 63.09, "Table 2"),
    "mrm+dam": Variant(True, "dam", 70.55, 63.89, "Tables 1-2"),
    "mrm+bam": Variant(True, "bam", 66.63, 62.17, "Table 1"),
    "mrm+cbam": Variant(True, "cbam", 66.74, 60.95, "Table 1"),
    "mrm+iwpam": Variant(True, "iwpam", 67.79, 61.29, "Table 1"),
}
METRICS: tuple[str, ...] = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
PROTOCOL_KEYS: tuple[str, ...] = ("mode", "shots", "sampling", "direction", "num_trials")
PAPER_NOTE = ("Paper: seeds/003 Tables 1-2 (MRDA, ResNet-50 with ImageNet weights, SYSU-MM01 all-search "
              "single-shot). They are the paper's numbers, on another dataset and scale: NOT comparable "
              "with runs on synthetic data; compare the rows of this table with each other.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S",
                        help="runtime seeds, one training run per variant and seed (default: 0)")
    parser.add_argument("--out", help="output folder (default: OUTPUT_DIR/NAME_ablation from the config)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="V",
                        help=f"variants to run, of: {', '.join(VARIANTS)} (default: all)")


def command_line(args: argparse.Namespace) -> str:
    """The ``vireid ablate`` command that reproduces ``args``."""
    parts = ["vireid", "ablate", "--config", str(args.config)]
    for item in args.overrides:
        parts += ["--set", item]
    parts += ["--seeds", *map(str, args.seeds)]
    if args.out:
        parts += ["--out", str(args.out)]
    if list(args.variants) != list(VARIANTS):
        parts += ["--variants", *args.variants]
    return shlex.join(parts)


def variant_config(config: str | Path, overrides: list[str], name: str, seed: int) -> TrainConfig:
    """The recipe with the variant's model switches and the seed; without MRM, the MRM-only losses dropped."""
    from vireid.methods.mrda.losses import MRM_LOSSES

    v = VARIANTS[name]
    base = load_config(config, overrides)
    if base.model.name != "mrda":
        raise ConfigError(f"vireid ablate runs MRDA's grid; {config} has model.name={base.model.name!r}, "
                          "expected 'mrda'")
    cfg = load_config(config, [*overrides, f"model.params.use_mrm={str(v.use_mrm).lower()}",
                               f"model.params.attention={v.attention}", f"runtime.seed={seed}",
                               f"name={base.name}_{name}_seed{seed}"])
    if not v.use_mrm:
        cfg.losses = [loss for loss in cfg.losses if loss.name not in MRM_LOSSES]
        if not cfg.losses:
            raise ConfigError(f"{config}: variant {name!r} drops the MRM losses {MRM_LOSSES} and none is left")
    return cfg


def train_and_test(cfg: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (reusing a finished run, resuming an interrupted one) and test it."""
    from vireid.engine.evaluate import evaluate_model, load_trained_model
    from vireid.engine.runtime import setup_runtime, teardown_runtime
    from vireid.engine.trainer import Trainer
    from vireid.utils.io import atomic_write_json

    saved = run_dir / "config.yaml"
    if saved.is_file() and saved.read_text() != dump_config(cfg):
        raise ConfigError(f"{run_dir} holds a run of another configuration; choose another --out or remove it")
    result_file = run_dir / "test.json"
    if result_file.is_file() and (run_dir / "summary.json").is_file():
        return json.loads(result_file.read_text())
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, r.deterministic, r.num_threads)
    try:
        if not (run_dir / "summary.json").is_file():
            trainer = Trainer(cfg, run_dir, runtime, progress=TqdmProgress)
            if (run_dir / "last.pt").is_file():
                trainer.resume(run_dir / "last.pt")
            trainer.fit()
        model, ckpt = load_trained_model(cfg, run_dir / "best.pt", runtime)
        result = evaluate_model(model, cfg, runtime)
    finally:
        teardown_runtime(runtime)
    result["settings"]["checkpoint"] = {"which": "best", "epoch": ckpt["epoch"]}
    atomic_write_json(result_file, result)
    return result


def summarize(per_seed: dict[str, list[dict[str, Any]]], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """Mean, sample standard deviation (0 for one seed) and per-seed values of every metric, per variant."""
    rows: dict[str, dict[str, Any]] = {}
    for name, results in per_seed.items():
        v = VARIANTS[name]
        row: dict[str, Any] = {"use_mrm": v.use_mrm, "attention": v.attention, "seeds": list(seeds)}
        for metric in METRICS:
            values = [float(res["mean"][metric]) for res in results if metric in res["mean"]]
            if values:
                row[metric] = {"mean": statistics.fmean(values),
                               "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}
        row["paper"] = {"rank1": v.paper_rank1, "mAP": v.paper_mAP, "source": f"seeds/003 {v.paper_table}",
                        "dataset": "SYSU-MM01 all-search single-shot", "comparable": False}
        rows[name] = row
    return rows


def _cell(row: dict[str, Any], metric: str) -> str:
    m = row.get(metric)
    return "n/a" if m is None else f"{m['mean']:.2f} ± {m['std']:.2f}"


def format_markdown(report: dict[str, Any]) -> str:
    """The ablation table in Markdown, with the command, the data and the paper note."""
    lines = [
        f"# MRDA ablation: {report['config']}",
        "",
        f"Data: {report['dataset']} at `{report['root']}`; test protocol {report['protocol']}; "
        f"seeds {report['seeds']}. Mean ± sample standard deviation over seeds, in percent.",
        "",
        "| Variant | MRM | Attention | Rank-1 | mAP | mINP | Paper R1 / mAP* |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in report["rows"].items():
        p = row["paper"]
        lines.append(f"| {name} | {'yes' if row['use_mrm'] else 'no'} | {row['attention']} | {_cell(row, 'rank1')} "
                     f"| {_cell(row, 'mAP')} | {_cell(row, 'mINP')} | {p['rank1']:.2f} / {p['mAP']:.2f} "
                     f"({p['source'].split(' ', 1)[1]}) |")
    lines += ["", f"\\* {PAPER_NOTE}", "", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vireid.utils.io import atomic_write_json, atomic_write_text

    base = load_config(args.config, args.overrides)
    variant_config(args.config, args.overrides, args.variants[0], args.seeds[0])  # fail early on a bad recipe
    out = Path(args.out) if args.out else Path(base.output_dir) / f"{base.name}_ablation"
    total, done = len(args.variants) * len(args.seeds), 0
    per_seed: dict[str, list[dict[str, Any]]] = {}
    protocol: dict[str, Any] = {}
    for name in args.variants:
        for seed in args.seeds:
            cfg = variant_config(args.config, args.overrides, name, seed)
            start = time.perf_counter()
            result = train_and_test(cfg, out / name / f"seed{seed}")
            done += 1
            protocol = protocol or {k: result["settings"][k] for k in PROTOCOL_KEYS
                                    if k in result["settings"]}
            per_seed.setdefault(name, []).append(result)
            m = result["mean"]
            print(f"[{done}/{total}] {name} seed {seed}: rank1 {m['rank1']:.2f} mAP {m['mAP']:.2f} "
                  f"mINP {m['mINP']:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    report = {
        "config": str(args.config), "command": command_line(args), "dataset": base.data.dataset,
        "root": base.data.root, "protocol": protocol, "seeds": list(args.seeds),
        "rows": summarize(per_seed, list(args.seeds)), "paper_note": PAPER_NOTE,
    }
    atomic_write_json(out / "ablation.json", report)
    text = format_markdown(report)
    atomic_write_text(out / "ablation.md", text)
    print(text)
    print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")
    return 0
