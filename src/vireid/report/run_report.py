"""A report for any evaluated run, and two or more runs side by side.

Every number and every ranked list comes from the evaluator's own output
(:func:`vireid.evaluation.protocols.evaluate_plan` with ``curves=True`` and ``ranked_top``): the
report draws them, it never ranks again. Files written into the report folder:

- ``results.md`` / ``results.json``: the protocol, the mean and per-trial metrics, the ranked
  lists of the shown queries with their file names;
- ``cmc.png``: mean CMC over the trials; ``ranked_list.png``: queries of the first trial with
  their top matches (green = same identity, red = wrong) and file names under each image;
- ``curves.png``: training losses, accuracy and validation metrics from ``metrics.jsonl``;
- ``tsne.png``: t-SNE of the first trial's query and gallery features (up to 20 identities),
  colour = identity, marker = modality; ``distances.png``: intra- vs inter-class query-gallery
  distances (pairs the protocol excludes left out);
- ``gradcam.png`` and ``activations.png`` (when the model is given): Grad-CAM of each shown
  query's similarity to its identity's mean gallery feature, and its 4 most active channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid.evaluation.protocols import EvalPlan, evaluate_plan
from vireid.report import figures
from vireid.report.plots import plot_cmc, ranked_list_image
from vireid.types import Sample
from vireid.utils.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

RANKED_TOP = 10
TSNE_IDS = 20


@dataclass
class RunEvaluation:
    """One evaluated model: the evaluator's result and what produced it.

    ``result`` must come from ``evaluate_plan(..., curves=True, ranked_top=k)``; ``features`` (N, D)
    are the raw features of ``samples`` (the plan's sample list).
    """

    label: str
    result: dict[str, Any]
    samples: list[Sample]
    features: np.ndarray
    plan: EvalPlan
    run_dir: Path | None = None
    model: nn.Module | None = None
    height: int = 0
    width: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def score(plan: EvalPlan, samples: list[Sample], features: np.ndarray, *, distance: str = "euclidean",
          normalize: bool = True, distance_fn: Any = None, ranked_top: int = RANKED_TOP) -> dict[str, Any]:
    """The evaluator's result with the CMC curve and the first trial's ranked lists."""
    return evaluate_plan(plan, samples, features, distance=distance, normalize=normalize, distance_fn=distance_fn,
                         curves=True, ranked_top=ranked_top)


def choose_queries(result: dict[str, Any], n: int, seed: int = 0) -> list[int]:
    """Rows of ``result["ranked"]`` to show: ``n`` seeded draws without replacement (the demo's rule)."""
    count = len(result["ranked"]["query"])
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(count, size=min(n, count), replace=False)]


def ranked_rows(ev: RunEvaluation, rows: list[int]) -> dict[str, list]:
    """Paths, file names and correctness of the evaluator's ranked lists for ``rows``."""
    ranked, s = ev.result["ranked"], ev.samples
    out: dict[str, list] = {"query": [], "gallery": [], "correct": [], "names": []}
    for r in rows:
        qi = ranked["query"][r]
        gal = [g for g in ranked["gallery"][r] if g >= 0]
        out["query"].append(s[qi].path)
        out["gallery"].append([s[g].path for g in gal])
        out["correct"].append([s[g].pid == s[qi].pid for g in gal])
        out["names"].append([s[qi].relpath] + [s[g].relpath for g in gal])
    return out


def _first_trial_subset(ev: RunEvaluation, max_ids: int = TSNE_IDS) -> np.ndarray:
    t = ev.plan.trials[0]
    ids = sorted({ev.samples[i].pid for i in t.query})[:max_ids]
    keep = set(ids)
    return np.array([i for i in np.concatenate([t.query, t.gallery]) if ev.samples[i].pid in keep], dtype=np.int64)


def tsne_panel(ev: RunEvaluation) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    idx = _first_trial_subset(ev)
    pids = np.array([ev.samples[i].pid for i in idx])
    mods = np.array([int(ev.samples[i].modality) for i in idx])
    return f"{ev.label}: t-SNE, trial 1, {len(set(pids.tolist()))} identities", ev.features[idx], pids, mods


def distance_panel(ev: RunEvaluation) -> tuple[str, np.ndarray, np.ndarray]:
    t = ev.plan.trials[0]
    pid = np.array([x.pid for x in ev.samples])
    cam = np.array([x.camid for x in ev.samples])
    mask = ev.plan.exclusion.mask(torch.as_tensor(pid[t.query]), torch.as_tensor(cam[t.query]),
                                  torch.as_tensor(pid[t.gallery]), torch.as_tensor(cam[t.gallery]))
    intra, inter = figures.distance_distributions(ev.features[t.query], ev.features[t.gallery], pid[t.query],
                                                  pid[t.gallery], None if mask is None else mask.numpy())
    title = f"{ev.label}: trial 1, mean intra {intra.mean():.3f} vs inter {inter.mean():.3f}"
    return title, intra, inter


def _query_tensors(ev: RunEvaluation, sample_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    from vireid.data.loader import decode_image
    from vireid.data.transforms import build_test_transform

    transform = build_test_transform(ev.height, ev.width)
    imgs, raw = [], []
    for i in sample_ids:
        pil = decode_image(ev.samples[i].path).convert("RGB")
        imgs.append(transform(pil))
        raw.append(np.asarray(pil.resize((ev.width, ev.height))))
    mods = torch.as_tensor([int(ev.samples[i].modality) for i in sample_ids])
    return torch.stack(imgs), mods, raw


def write_heatmaps(ev: RunEvaluation, rows: list[int], out: Path) -> list[Path]:
    """``gradcam.png`` and ``activations.png`` for the queries of ``rows`` (model on the CPU, fp32)."""
    from vireid.report.gradcam import channel_activations, grad_cam, similarity_score

    model = ev.model
    device = next(model.parameters()).device
    ranked, s = ev.result["ranked"], ev.samples
    q_ids = [ranked["query"][r] for r in rows]
    images, mods, raw = _query_tensors(ev, q_ids)
    images, mods = images.to(device), mods.to(device)
    gallery = ev.plan.trials[0].gallery
    g_pids = np.array([s[g].pid for g in gallery])
    refs = []
    for qi in q_ids:  # the mean gallery feature of the query's identity
        same = gallery[g_pids == s[qi].pid]
        refs.append(ev.features[same].mean(axis=0) if len(same) else np.zeros(ev.features.shape[1], np.float32))
    reference = torch.as_tensor(np.stack(refs), dtype=torch.float32, device=device)  # (n, D)
    cams = grad_cam(model, images, mods, similarity_score(reference)).cpu().numpy()  # (n, H, W)
    captions = [f"{Path(s[qi].relpath).parent}\n{Path(s[qi].relpath).name}" for qi in q_ids]
    paths = [out / "gradcam.png", out / "activations.png"]
    figures.plot_heatmaps(raw, {"Grad-CAM": cams}, captions, paths[0],
                          title=f"{ev.label}: Grad-CAM of each query's similarity to its identity's mean gallery feature")
    maps, idx = channel_activations(model, images, mods, top=4)
    rows_maps = {f"channel #{k + 1}": maps[:, k].cpu().numpy() for k in range(maps.shape[1])}
    figures.plot_heatmaps(raw, rows_maps, captions, paths[1],
                          title=f"{ev.label}: the 4 most active channels of the final map (by mean activation)")
    return paths


def protocol_line(settings: dict[str, Any]) -> str:
    """One line naming what produced the numbers (the evaluator's settings)."""
    skip = {"max_rank", "distance_fn", "trials", "query", "gallery"}
    parts = [f"{k}={v}" for k, v in settings.items() if k not in skip and v is not None]
    return ", ".join(parts)


def metrics_table(named: list[tuple[str, dict[str, float]]]) -> list[str]:
    keys = [k for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP") if k in named[0][1]]
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.2f}" for k in keys) + " |" for name, m in named]
    return lines


def results_markdown(ev: RunEvaluation, shown: dict[str, list], pictures: list[str]) -> str:
    r = ev.result
    lines = [f"# vireid report: {ev.label}", "", f"Dataset: {r['dataset']} ({len(ev.samples)} test images)."
             + (f" Run: `{ev.run_dir}`." if ev.run_dir else ""),
             f"Protocol and test-time options: {protocol_line(r['settings'])}.", ""]
    lines += metrics_table([(ev.label, r["mean"])])
    lines += ["", "Per trial:", "", "| trial | rank1 | mAP | mINP | queries | gallery |", "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {t['rank1']:.2f} | {t['mAP']:.2f} | {t['mINP']:.2f} | {t['num_query']} | "
              f"{t['num_gallery']} |" for i, t in enumerate(r["trials"])]
    lines += ["", "Ranked lists (trial 1, as the evaluator ranked them; + = same identity):", ""]
    for names, ok in zip(shown["names"], shown["correct"]):
        lines.append(f"- `{names[0]}`: " + ", ".join(f"{'+' if good else '-'}`{n}`" for n, good in zip(names[1:], ok)))
    lines += ["", "Pictures: " + ", ".join(f"`{p}`" for p in pictures) + ".", ""]
    return "\n".join(lines)


def write_run_report(ev: RunEvaluation, out: str | Path, *, queries: int = 8, seed: int = 0,
                     heatmaps: bool = True, cmc_curves: dict[str, list[float]] | None = None,
                     cmc_title: str | None = None, markdown: bool = True) -> dict[str, Any]:
    """Write the report of ``ev`` into ``out``; returns ``{"files": [...], "shown": ranked rows}``.

    ``cmc_curves`` replaces the single CMC line by several (the demo's three methods), each
    taken from an evaluator result. ``markdown=False`` leaves results.md/json to the caller.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    plot_cmc(cmc_curves or {ev.label: ev.result["cmc"]}, out / "cmc.png",
             title=cmc_title or protocol_line(ev.result["settings"])[:110])
    files.append("cmc.png")
    rows = choose_queries(ev.result, queries, seed)
    shown = ranked_rows(ev, rows)
    ranked_list_image(shown["query"], shown["gallery"], shown["correct"], out / "ranked_list.png",
                      names=shown["names"])
    files.append("ranked_list.png")
    metrics = ev.run_dir / "metrics.jsonl" if ev.run_dir else None
    if metrics is not None and metrics.is_file():
        figures.plot_training_curves(figures.read_metrics(metrics), out / "curves.png", title=ev.label)
        files.append("curves.png")
    figures.plot_tsne([tsne_panel(ev)], out / "tsne.png")
    figures.plot_distances([distance_panel(ev)], out / "distances.png")
    files += ["tsne.png", "distances.png"]
    if heatmaps and ev.model is not None:
        files += [p.name for p in write_heatmaps(ev, rows, out)]
    if markdown:
        payload = {k: v for k, v in ev.result.items() if k != "ranked"}
        payload.update(label=ev.label, run_dir=str(ev.run_dir) if ev.run_dir else None,
                       shown_ranked_lists=[{"query": n[0], "ranked": n[1:], "correct": c}
                                           for n, c in zip(shown["names"], shown["correct"])])
        atomic_write_json(out / "results.json", payload)
        atomic_write_text(out / "results.md", results_markdown(ev, shown, files))
        files = ["results.md", "results.json"] + files
    logger.info("report for %s in %s: %s", ev.label, out, ", ".join(files))
    return {"files": files, "shown": shown}


def write_comparison(evs: list[RunEvaluation], out: str | Path, *, queries: int = 8, seed: int = 0) -> list[str]:
    """Runs side by side (e.g. baseline vs method) on the same test set: one table, one CMC plot, the
    same queries' ranked lists one run under the other, t-SNE and distance panels next to each other."""
    if len(evs) < 2:
        raise ValueError("write_comparison needs at least two runs")
    first = [s.relpath for s in evs[0].samples]
    for ev in evs[1:]:
        if [s.relpath for s in ev.samples] != first:
            raise ValueError(f"runs {evs[0].label!r} and {ev.label!r} were evaluated on different test sets")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_cmc({ev.label: ev.result["cmc"] for ev in evs}, out / "cmc.png",
             title=protocol_line(evs[0].result["settings"])[:110])
    rows = choose_queries(evs[0].result, queries, seed)
    query_ids = [evs[0].result["ranked"]["query"][r] for r in rows]
    q, g, ok, names, labels = [], [], [], [], []
    for qi in query_ids:  # the same query in every run, one row per run
        for ev in evs:
            row = ev.result["ranked"]["query"].index(qi)
            shown = ranked_rows(ev, [row])
            q += shown["query"]
            g += shown["gallery"]
            ok += shown["correct"]
            names += shown["names"]
            labels.append(ev.label)
    ranked_list_image(q, g, ok, out / "ranked_list.png", names=names, row_labels=labels)
    figures.plot_tsne([tsne_panel(ev) for ev in evs], out / "tsne.png")
    figures.plot_distances([distance_panel(ev) for ev in evs], out / "distances.png")
    lines = ["# vireid comparison", "", f"Dataset: {evs[0].result['dataset']}.", ""]
    for ev in evs:
        lines.append(f"- {ev.label}: {protocol_line(ev.result['settings'])}" + (f" (run `{ev.run_dir}`)" if ev.run_dir else ""))
    lines += [""] + metrics_table([(ev.label, ev.result["mean"]) for ev in evs])
    files = ["compare.md", "cmc.png", "ranked_list.png", "tsne.png", "distances.png"]
    lines += ["", "Pictures: " + ", ".join(f"`{f}`" for f in files[1:]) + " (ranked lists: the same trial-1 queries, "
              "one row per run).", ""]
    atomic_write_text(out / "compare.md", "\n".join(lines))
    return files
