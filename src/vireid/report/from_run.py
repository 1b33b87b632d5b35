"""Evaluate a trained run folder for a report: the model, its test features and the evaluator's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vireid.report.run_report import RANKED_TOP, RunEvaluation, score


def evaluate_run(run_dir: str | Path, *, checkpoint: str = "best", protocol: dict[str, Any] | None = None,
                 overrides: list[str] | None = None, label: str | None = None, flip: bool = False,
                 ranked_top: int = RANKED_TOP, distance_fn: Any = None,
                 rerank_settings: dict[str, Any] | None = None) -> RunEvaluation:
    """Load ``run_dir``'s checkpoint, extract the test features, score them under the run's protocol
    (``protocol`` overrides ``eval.protocol``) with the CMC curve and ranked lists kept."""
    from vireid.commands._common import load_run_config
    from vireid.engine import build
    from vireid.engine.evaluate import load_trained_model, resolve_checkpoint
    from vireid.engine.inference import extract_features
    from vireid.engine.runtime import setup_runtime

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, overrides)
    r = cfg.runtime
    runtime = setup_runtime(r.device, r.precision, r.channels_last, r.seed, False, r.num_threads)
    model, ckpt = load_trained_model(cfg, resolve_checkpoint(run_dir, checkpoint), runtime)
    dataset = build.build_dataset_from_config(cfg.data)
    settings = dict(cfg.eval.protocol if protocol is None else protocol)
    plan = build.build_eval_plan(dataset, settings)
    samples = list(dataset.test)
    feats = extract_features(model, samples, cfg.data, runtime, batch_size=cfg.eval.batch_size, flip=flip)
    result = score(plan, samples, feats, ranked_top=ranked_top, distance_fn=distance_fn)
    result["settings"].update(flip=bool(flip), rerank=rerank_settings or {"method": "none"},
                              checkpoint={"which": checkpoint, "epoch": ckpt["epoch"]})
    name = label or f"{cfg.name} ({cfg.model.name}-{cfg.model.params.get('arch', '?')}, epoch {ckpt['epoch']})"
    return RunEvaluation(name, result, samples, feats, plan, run_dir=run_dir, model=model,
                         height=cfg.data.height, width=cfg.data.width)
