"""Evaluation plans: which images are queries and gallery in each trial, and how to score them.

A dataset reader (``vireid.data.datasets``) turns its official protocol (PROTOCOLS.md: SYSU-MM01,
RegDB, LLCM) into an :class:`EvalPlan`: trials of query/gallery indices into its ``test`` sample
list, the CMC definition and the exclusion rule. :func:`evaluate_plan` scores features under it and
reports every trial and the mean over trials (PROTOCOLS.md "Metrics", step 7), in percent, with
the settings that produced the numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vireid.types import Sample
from vireid.errors import FeaturesError
from vireid.evaluation.exclusion import Exclusion
from vireid.evaluation.metrics import (CMC_MODES, DISTANCES, RankingResult, evaluate_distance_chunks,
                                      evaluate_distances, evaluate_features, evaluate_features_shared)

__all__ = ["Exclusion", "Trial", "EvalPlan", "evaluate_plan", "format_table", "METRIC_KEYS"]

logger = logging.getLogger(__name__)

RANKS = (1, 5, 10, 20)
METRIC_KEYS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Trial:
    """One query/gallery draw: int64 indices into the plan's sample list."""

    query: np.ndarray
    gallery: np.ndarray

    def __post_init__(self) -> None:
        for name in ("query", "gallery"):
            value = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            object.__setattr__(self, name, value)


@dataclass
class EvalPlan:
    """A dataset's protocol under given settings.

    Attributes:
        dataset: registry name of the dataset ("sysu-mm01", "regdb", ...).
        settings: everything that defines the numbers (mode, direction, sampling table or seeds,
            trial ids, ...); :func:`evaluate_plan` adds the distance and test-time options.
        trials: the query/gallery draws; the reported numbers are their mean.
        cmc_mode: "identity" or "image" (PROTOCOLS.md "Metrics", step 3).
        exclusion: gallery entries removed per query.
    """

    dataset: str
    settings: dict[str, Any]
    trials: list[Trial]
    cmc_mode: str
    exclusion: Exclusion = Exclusion.NONE

    def __post_init__(self) -> None:
        if self.cmc_mode not in CMC_MODES:
            raise ValueError(f"cmc_mode must be one of {CMC_MODES}, got {self.cmc_mode!r}")
        self.exclusion = Exclusion.parse(self.exclusion)
        if not self.trials:
            raise ValueError(f"plan for {self.dataset!r} has no trials")

    def used_indices(self) -> np.ndarray:
        """Sorted unique sample indices that some trial uses."""
        parts = [t.query for t in self.trials] + [t.gallery for t in self.trials]
        return np.unique(np.concatenate(parts))

    def remap(self, mapping: np.ndarray) -> "EvalPlan":
        """The same plan with every index ``i`` replaced by ``mapping[i]`` (which must be >= 0)."""
        trials = [Trial(mapping[t.query], mapping[t.gallery]) for t in self.trials]
        if any((t.query < 0).any() or (t.gallery < 0).any() for t in trials):
            raise ValueError("remap: the mapping leaves some used sample without a new index")
        return EvalPlan(self.dataset, dict(self.settings), trials, self.cmc_mode, self.exclusion)

    def compact(self, samples: Sequence[Sample]) -> tuple["EvalPlan", list[Sample]]:
        """The plan over only the samples it uses, and those samples (for feature extraction)."""
        used = self.used_indices()
        mapping = np.full(len(samples), -1, dtype=np.int64)
        mapping[used] = np.arange(len(used))
        return self.remap(mapping), [samples[i] for i in used]


def _percent(result: RankingResult) -> dict[str, float]:
    out = {f"rank{k}": 100.0 * result.rank(k) for k in RANKS if k <= len(result.cmc)}
    out["mAP"] = 100.0 * result.mAP
    out["mINP"] = 100.0 * result.mINP
    return out


def _rows(features: np.ndarray | torch.Tensor, index: np.ndarray) -> np.ndarray | torch.Tensor:
    """``features[index]``; a view, not a copy, when ``index`` is a contiguous ascending range
    (a manifest's query rows then its gallery rows: at MSMT17 size a copy is 190 MB at D = 512)."""
    if index.size and index[-1] - index[0] == index.size - 1 and (index.size == 1 or bool((np.diff(index) == 1).all())):
        return features[int(index[0]): int(index[-1]) + 1]
    return features[index]


def _check_features(features: np.ndarray | torch.Tensor, samples: Sequence[Sample], used: np.ndarray) -> None:
    if features.ndim != 2 or features.shape[0] != len(samples):
        raise FeaturesError(f"features must be (num_samples={len(samples)}, dim), got shape {tuple(features.shape)}")
    if used.size and used.max() >= len(samples):
        raise FeaturesError(f"plan refers to sample {int(used.max())} but only {len(samples)} samples were given")
    finite = np.ones(len(used), dtype=bool)
    for s in range(0, len(used), 8192):  # in pieces: no copy of the whole set
        block = _rows(features, used[s : s + 8192])
        finite[s : s + 8192] = torch.isfinite(block).all(dim=1).cpu().numpy() if isinstance(block, torch.Tensor) \
            else np.isfinite(block).all(axis=1)
    if not finite.all():
        bad = used[~finite][:5]
        raise FeaturesError(f"features have NaN/inf values in {int((~finite).sum())} rows used by the protocol; "
                            f"first: {', '.join(samples[i].relpath for i in bad)}")


def _shared_queries(plan: EvalPlan) -> bool:
    """Whether every trial has the same queries in the same order (SYSU-MM01, LLCM)."""
    first = plan.trials[0].query
    return len(plan.trials) > 1 and all(np.array_equal(t.query, first) for t in plan.trials[1:])


def evaluate_plan(plan: EvalPlan, samples: Sequence[Sample], features: np.ndarray | torch.Tensor, *,
                  distance: str = "euclidean", normalize: bool = False, distance_fn: DistanceFn | None = None,
                  max_rank: int = 20, device: torch.device | str | None = None,
                  chunk_size: int | None = None, shared_distances: bool = True, curves: bool = False,
                  ranked_top: int = 0) -> dict[str, Any]:
    """Score ``features`` (N, D), row i the feature of ``samples[i]``, under every trial of ``plan``.

    ``distance_fn(qf, gf) -> (nq, ng)`` replaces the built-in distance (re-ranking and other
    test-time options plug in here); it receives the (normalised, if asked) query and gallery
    features as NumPy arrays. When it also has a ``stream(qf, gf)`` method yielding ``(rows,
    block)`` pieces of query rows (every registered re-ranker: :class:`vireid.rerank.Reranker`),
    the blocks go straight into the evaluator and the (nq, ng) matrix is never held.

    With the built-in distance and trials that share their queries (the 10 SYSU-MM01 draws),
    ``shared_distances`` computes the distances once against the union of the trials' galleries
    and ranks each trial's columns of it (in its gallery order); ``False`` computes them per trial.

    Returns ``{"dataset", "settings", "trials": [...], "mean": {...}}`` with rank-1/5/10/20, mAP and
    mINP in percent; per trial also the query, gallery and valid-query counts. ``settings``
    records the distance and the test-time options.

    ``curves``: also ``result["cmc"]``, the mean CMC curve over the trials (percent, ranks
    1..max_rank). ``ranked_top`` > 0: also ``result["ranked"] = {"trial": 1, "query": [sample
    index], "gallery": [[sample index or -1] * ranked_top]}``, the first trial's ranked lists as
    the metrics ranked them (exclusion applied); reports draw ranked lists from it.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    used = plan.used_indices()
    _check_features(features, samples, used)
    pids = np.array([s.pid for s in samples], dtype=np.int64)
    camids = np.array([s.camid for s in samples], dtype=np.int64)
    feats = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) and distance_fn else features
    if distance_fn is not None and normalize:
        feats = np.asarray(feats, dtype=np.float64)
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    common = dict(cmc_mode=plan.cmc_mode, exclusion=plan.exclusion, max_rank=max_rank)
    if distance_fn is None and shared_distances and _shared_queries(plan):
        q = plan.trials[0].query
        pool = np.unique(np.concatenate([t.gallery for t in plan.trials]))
        galleries = [np.searchsorted(pool, t.gallery) for t in plan.trials]
        tops = [ranked_top] + [0] * (len(galleries) - 1)
        results = evaluate_features_shared(feats[q], feats[pool], pids[q], pids[pool], camids[q], camids[pool],
                                           galleries, distance=distance, normalize=normalize, device=device,
                                           chunk_size=chunk_size, top_k=tops, **common)
    else:
        results = []
        for i, trial in enumerate(plan.trials):
            q, g = trial.query, trial.gallery
            common["top_k"] = ranked_top if i == 0 else 0
            if distance_fn is None:
                results.append(evaluate_features(_rows(feats, q), _rows(feats, g), pids[q], pids[g], camids[q], camids[g],
                                                 distance=distance, normalize=normalize, device=device,
                                                 chunk_size=chunk_size, **common))
            elif hasattr(distance_fn, "stream"):
                blocks = distance_fn.stream(np.asarray(_rows(feats, q)), np.asarray(_rows(feats, g)))
                results.append(evaluate_distance_chunks(blocks, pids[q], pids[g], camids[q], camids[g],
                                                        num_gallery=len(g), **common))
            else:
                dist = np.asarray(distance_fn(np.asarray(_rows(feats, q)), np.asarray(_rows(feats, g))))
                if dist.shape != (len(q), len(g)):
                    raise ValueError(f"distance_fn returned shape {dist.shape}, expected {(len(q), len(g))}")
                results.append(evaluate_distances(dist, pids[q], pids[g], camids[q], camids[g],
                                                  chunk_size=chunk_size, **common))
    trials, cmcs, ranked = [], [], None
    for i, (trial, result) in enumerate(zip(plan.trials, results)):
        cmcs.append(100.0 * result.cmc)
        if result.ranked is not None:
            positions = result.ranked  # (nq, ranked_top) gallery positions of this trial, -1: none
            ranked = {"trial": 1, "query": [int(x) for x in trial.query],
                      "gallery": np.where(positions >= 0, trial.gallery[positions.clip(min=0)], -1).tolist()}
        row = _percent(result)
        row.update(num_query=int(len(trial.query)), num_gallery=int(len(trial.gallery)), num_valid=result.num_valid)
        trials.append(row)
        logger.debug("%s trial %d: %s", plan.dataset, i + 1, row)
    metric_keys = [k for k in METRIC_KEYS if k in trials[0]]
    mean = {k: float(np.mean([t[k] for t in trials])) for k in metric_keys}
    settings = dict(plan.settings)
    fn_name = None if distance_fn is None else getattr(distance_fn, "__name__", type(distance_fn).__name__)
    settings.update(cmc=plan.cmc_mode, exclusion=plan.exclusion.value, num_trials=len(plan.trials),
                    distance=distance if distance_fn is None else f"custom:{fn_name}",
                    normalize=bool(normalize), distance_fn=fn_name, max_rank=max_rank)
    out: dict[str, Any] = {"dataset": plan.dataset, "settings": settings, "trials": trials, "mean": mean}
    if curves:
        out["cmc"] = [float(x) for x in np.mean(cmcs, axis=0)]
    if ranked is not None:
        out["ranked"] = ranked
    return out


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) > 12:
            return ", ".join(str(v) for v in value[:12]) + f", ... ({len(value)} in all)"
        return ", ".join(str(v) for v in value)
    return str(value)


def format_table(result: dict[str, Any]) -> str:
    """Readable report of :func:`evaluate_plan`'s result: the settings, then one row per trial and the mean."""
    lines = [f"dataset: {result['dataset']}"]
    for key, value in result["settings"].items():
        if value is None:
            continue
        lines.append(f"{key}: {_format_value(value)}")
    keys = [k for k in METRIC_KEYS if k in result["mean"]]
    header = ["trial"] + keys + ["queries", "gallery"]
    rows = [[str(i + 1)] + [f"{t[k]:.2f}" for k in keys] + [str(t.get("num_query", "")), str(t.get("num_gallery", ""))]
            for i, t in enumerate(result["trials"])]
    rows.append(["mean"] + [f"{result['mean'][k]:.2f}" for k in keys] + ["", ""])
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    lines.append("")
    lines.append("| " + " | ".join(h.rjust(w) for h, w in zip(header, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(v.rjust(w) for v, w in zip(r, widths)) + " |")
    return "\n".join(lines)
