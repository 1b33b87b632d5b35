"""MoS partial-to-holistic table on the synthetic data: every finished run of the MoS grid
(configs/grids/mos_partial.yaml) scored on the synthetic Partial_REID set (partial queries vs whole-body
gallery) with each distance on the same features, then mean ± sample std over seeds.

    PYTHONPATH=src python scripts/mos_partial_synthetic.py --grid-out runs/mos_partial --data runs/extras200

Each row is what `vireid test --run CELL --set data.dataset=partial-reid --set data.root=DATA/Partial_REID
[--no-normalize | --distance cosine | --distance jaccard [--jaccard-lambda L [--jaccard-penalty normalized]]]`
prints, computed in one
process with the same functions (the features of a run are extracted once, the prior once); the table goes to
stdout and GRID_OUT/partial_table.md, the per-cell results to GRID_OUT/partial_results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from vireid.commands._common import load_run_config
from vireid.engine import build
from vireid.engine.evaluate import load_trained_model, resolve_checkpoint
from vireid.engine.inference import extract_features
from vireid.engine.runtime import runtime_from_config
from vireid.evaluation.protocols import evaluate_plan
import vireid.methods  # noqa: F401  registers MoS
from vireid.methods.mos.distance import JaccardDistance
from vireid.methods.mos.run_prior import training_prior

METRICS = ("rank1", "rank5", "mAP", "mINP")
LAMBDAS = (0.1, 0.01, 0.001)
NORMALIZED_LAMBDAS = (1.0, 0.1, 0.01)  # the bounded form (CP < 1.72, on the scale of 1 - J)


def score_cell(cell: Path, data: Path) -> dict[str, dict]:
    overrides = ["data.dataset=partial-reid", f"data.root={data / 'Partial_REID'}"]
    cfg = load_run_config(cell, overrides)
    out: dict[str, dict] = {}
    with runtime_from_config(cfg.runtime, deterministic=False) as runtime:
        model, _ = load_trained_model(cfg, resolve_checkpoint(cell, "best"), runtime)
        ds = build.build_dataset_from_config(cfg.data)
        plan = build.build_eval_plan(ds, {})
        feats = extract_features(model, ds.test, cfg.data, runtime, batch_size=cfg.eval.batch_size)
        prior, source = training_prior(model, load_run_config(cell), runtime, top_k=32)
        nprior, nsource = training_prior(model, load_run_config(cell), runtime, top_k=32, form="normalized")
    out["Euclidean, raw g"] = evaluate_plan(plan, ds.test, feats, distance="euclidean", normalize=False)
    out["cosine (= Euclidean on L2-normalised g)"] = evaluate_plan(plan, ds.test, feats, distance="cosine", normalize=True)
    out["Jaccard, 1 - J"] = evaluate_plan(plan, ds.test, feats, distance_fn=JaccardDistance())
    for lam in LAMBDAS:
        fn = JaccardDistance(lam=lam, prior=prior, top_k=32, eps=0.05, prior_source=source)
        out[f"Jaccard + conflict penalty (lambda {lam}, top 32, eps 0.05)"] = evaluate_plan(plan, ds.test, feats,
                                                                                           distance_fn=fn)
    for lam in NORMALIZED_LAMBDAS:
        fn = JaccardDistance(lam=lam, prior=nprior, top_k=32, eps=0.05, prior_source=nsource, form="normalized")
        out[f"Jaccard + normalized conflict penalty (lambda {lam}, top 32, eps 0.05)"] = evaluate_plan(
            plan, ds.test, feats, distance_fn=fn)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid-out", default="runs/mos_partial")
    parser.add_argument("--data", default="runs/extras200")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root, data = Path(args.grid_out), Path(args.data)
    rows, raw, settings = [], {}, {}
    for variant in sorted((root / "mos").iterdir()):
        cells = sorted(c for c in variant.glob("seed*") if (c / "best.pt").is_file() and (c / "test.json").is_file())
        per_cell = {c.name: score_cell(c, data) for c in cells}
        raw[variant.name] = {c: {k: r["mean"] for k, r in res.items()} for c, res in per_cell.items()}
        for name in next(iter(per_cell.values()), {}):
            results = [res[name] for res in per_cell.values()]
            settings = results[0]["settings"]
            row = {"variant": variant.name, "distance": name, "seeds": len(results)}
            for m in METRICS:
                vals = [r["mean"][m] for r in results]
                row[m] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
            rows.append(row)
    lines = ["| training losses | distance | seeds | " + " | ".join(METRICS) + " |",
             "|---|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['distance']} | {r['seeds']} | "
                     + " | ".join(f"{r[m][0]:.2f} ± {r[m][1]:.2f}" for m in METRICS) + " |")
    text = "\n".join(lines) + (f"\n\nProtocol: {settings.get('protocol')}; query {settings.get('query')}, gallery "
                               f"{settings.get('gallery')}; no flip; no re-ranking; best.pt.\n")
    (root / "partial_table.md").write_text(text)
    (root / "partial_results.json").write_text(json.dumps(raw, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
