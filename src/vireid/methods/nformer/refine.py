"""NFormer's test-time refinement as a re-ranker: ``--rerank nformer`` (seeds/001 §3; METHODS.md §8).

The paper refines every query and gallery representation jointly before retrieval. Here it is a
registered re-ranker (:mod:`vireid.rerank.registry`): :func:`nformer_stream` receives the query
and gallery features of one trial (the CNN embeddings the NFormer model gives in eval mode),
stacks them into one set of N = nq + ng rows, runs the trained NFormer encoder over the set
(chunked: O(chunk_size * N) memory for the top-k, O(N * k) for the neighbour lists, never an
(N, N) matrix), L2-normalises the refined rows and yields Euclidean query-gallery distances
block by block.

How the refiner reaches the weights: the stream takes ``run`` (a run folder trained with model
``nformer``) and ``checkpoint`` (``best``/``last``/a path). ``vireid test --run D --rerank nformer``
fills both from its own ``--run``/``--checkpoint``; ``vireid evaluate-features F.npz --rerank nformer``
reads them from the features file's metadata (``vireid extract`` writes ``run`` and ``checkpoint``)
unless ``--nformer-run``/``--nformer-checkpoint`` are given. The encoder is loaded once per
(checkpoint file, modification time) and kept for the trials that follow.

Modality of the rows (for ``cross_modal_quota``): the query rows count as one modality and the
gallery rows as the other. Every VI-ReID protocol here (SYSU-MM01, RegDB, LLCM) queries one
modality against the other, so this is the images' modality there; on a single-modality dataset
the quota reserves neighbours from the other *set*.

Landmarks are drawn with ``torch.Generator().manual_seed(seed)`` (recorded), so a refinement is
reproducible; ``topk``/``landmarks``/``cross_modal_quota`` default (None) to the trained values.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vireid.errors import ConfigError
from vireid.rerank._distance import as_features, check_pair, distance_block, resolve_device

logger = logging.getLogger(__name__)

__all__ = ["RECORDED", "load_nformer", "nformer_stream", "refine_features"]

RECORDED: tuple[str, ...] = ("run", "checkpoint", "topk", "landmarks", "cross_modal_quota", "seed")


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, run: str) -> torch.nn.Module:
    from vireid.config import load_config
    from vireid.engine.build import build_model_from_config
    from vireid.engine.checkpoint import load_checkpoint, load_model_state
    from vireid.methods.nformer.model import NFormerNet

    cfg = load_config(Path(run) / "config.yaml")
    if cfg.model.name != "nformer":
        raise ConfigError(f"--rerank nformer needs a run trained with model nformer; {run} trained {cfg.model.name!r}")
    ckpt = load_checkpoint(path, map_location="cpu")
    model_cfg = cfg.model.model_copy(update={"params": {**cfg.model.params, "pretrained": None}})
    model = build_model_from_config(model_cfg, ckpt["num_classes"])
    assert isinstance(model, NFormerNet)
    load_model_state(model, ckpt["model"])
    logger.info("nformer refiner: loaded %s (epoch %s)", path, ckpt.get("epoch"))
    return model.eval()


def load_nformer(run: str | Path | None, checkpoint: str = "best") -> torch.nn.Module:
    """The trained :class:`~vireid.methods.nformer.model.NFormerNet` of ``run`` (eval mode, CPU)."""
    if run is None:
        raise ConfigError("--rerank nformer needs the trained NFormer: give --nformer-run RUN "
                          "(vireid test passes its --run; evaluate-features reads the features file's run)")
    from vireid.engine.evaluate import resolve_checkpoint

    if not (Path(run) / "config.yaml").is_file():
        raise ConfigError(f"--nformer-run {run} is not a vireid run folder: {Path(run) / 'config.yaml'} is missing")
    path = resolve_checkpoint(run, checkpoint).resolve()
    return _load(str(path), path.stat().st_mtime_ns, str(run))


def refine_features(
    model: torch.nn.Module,
    feats: Tensor,
    modality: Tensor | None,
    *,
    topk: int | None = None,
    landmarks: int | None = None,
    cross_modal_quota: int | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
) -> Tensor:
    """(N, D) CNN embeddings -> (N, d) refined, L2-normalised embeddings (float32, no gradient)."""
    enc = model.nformer
    m = enc.landmarks if landmarks is None else int(landmarks)
    if m < 1:
        raise ConfigError(f"nformer landmarks must be >= 1, got {m}")
    gen = torch.Generator().manual_seed(int(seed))
    n = feats.shape[0]
    lms = [torch.randperm(n, generator=gen)[: min(m, n)].to(feats.device) for _ in enc.blocks]
    refined = model.refine(feats.float(), modality, topk=topk, cross_modal_quota=cross_modal_quota,
                           landmarks=lms, chunk_size=chunk_size)  # (N, d)
    return F.normalize(refined.float(), dim=1)


def nformer_stream(
    qf: Tensor | np.ndarray,
    gf: Tensor | np.ndarray,
    *,
    run: str | None = None,
    checkpoint: str = "best",
    topk: int | None = None,
    landmarks: int | None = None,
    cross_modal_quota: int | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> Iterator[tuple[slice, Tensor]]:
    """Refine the query and gallery features jointly with the run's NFormer, then yield
    ``(rows, (len(rows), ng) float32 Euclidean distances)`` of the refined, L2-normalised rows."""
    dev = resolve_device(qf, device)
    q = as_features(qf, "query features", dev).float()  # (nq, D)
    g = as_features(gf, "gallery features", dev).float()  # (ng, D)
    check_pair(q, g)
    model = load_nformer(run, checkpoint).to(dev)
    feats = torch.cat([q, g])  # (N, D)
    sides = torch.cat([torch.zeros(len(q), dtype=torch.long), torch.ones(len(g), dtype=torch.long)]).to(dev)  # (N,)
    refined = refine_features(model, feats, sides, topk=topk, landmarks=landmarks, cross_modal_quota=cross_modal_quota,
                              seed=seed, chunk_size=chunk_size).double()  # (N, d)
    rq, rg = refined[: len(q)], refined[len(q):]
    rq_sq, rg_sq = (rq * rq).sum(1), (rg * rg).sum(1)  # (nq,), (ng,)
    for start in range(0, len(q), chunk_size):
        rows = slice(start, min(start + chunk_size, len(q)))
        yield rows, distance_block(rq[rows], rg, rq_sq[rows], rg_sq, squared=False)
