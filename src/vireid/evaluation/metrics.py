"""Ranking metrics: CMC (identity- or image-level), mAP and mINP, vectorised and chunked over queries.

Definitions (PROTOCOLS.md "Metrics"; mINP from Ye et al.'s survey, seeds/001 §1, METHODS.md §3):

1. each query's gallery is sorted by ascending distance, ties keeping gallery order (stable sort);
2. the entries its protocol excludes (:class:`~vireid.evaluation.exclusion.Exclusion`) are removed;
3. CMC, identity-level (SYSU-MM01 kit ``get_cmc_multi_cam.m``, DEEN's LLCM code): the filtered list
   is stably de-duplicated by identity and rank-k = 1 if the query identity is among the first k
   identities; image-level (``eval_regdb``): rank-k = 1 if a true match is among the first k images;
4. ``AP = mean_j (j / rank_j)`` over the j-th true match of the filtered list (kit ``get_map_multi_cam.m``);
5. ``INP = |G| / R_hard``, ``|G|`` the true matches left, ``R_hard`` the 1-based rank of the last one;
6. queries with no true match left are skipped, and CMC, mAP and mINP all divide by the number of
   valid queries.

The ranking itself (no row is sorted; fused passes over cache-sized blocks) lives in
:mod:`vireid.evaluation.ranking`; this module checks the inputs, chunks the queries and computes the
distances.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from vireid.evaluation.exclusion import Exclusion
from vireid.evaluation.ranking import RankingResult, _Accumulator, _Labels, _rank_chunk

logger = logging.getLogger(__name__)

CMC_MODES = ("identity", "image")
DISTANCES = ("euclidean", "cosine")
# Bytes of working memory per distance-matrix entry of a chunk (the distances, the exclusion mask
# of a block, the per-row histograms, headroom); the automatic chunk size keeps one chunk near
# _CHUNK_BUDGET bytes.
_BYTES_PER_ENTRY = 24
_CHUNK_BUDGET = 384 * 2**20

__all__ = ["CMC_MODES", "DISTANCES", "RankingResult", "auto_chunk_size", "evaluate_distance_chunks",
           "evaluate_distances", "evaluate_features", "evaluate_features_shared", "pairwise_distance"]


def auto_chunk_size(num_gallery: int, budget_bytes: int = _CHUNK_BUDGET) -> int:
    """Query rows per chunk so that one chunk's working memory stays near ``budget_bytes``."""
    return max(1, int(budget_bytes // (_BYTES_PER_ENTRY * max(1, num_gallery))))


def _check_labels(name: str, values: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of length {n}, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_options(cmc_mode: str, max_rank: int, chunk_size: int | None) -> None:
    if cmc_mode not in CMC_MODES:
        raise ValueError(f"cmc_mode must be one of {CMC_MODES}, got {cmc_mode!r}")
    if not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def evaluate_distances(distmat: np.ndarray | torch.Tensor, q_pids: np.ndarray, g_pids: np.ndarray,
                       q_camids: np.ndarray, g_camids: np.ndarray, *, cmc_mode: str = "identity",
                       exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                       chunk_size: int | None = None, top_k: int = 0) -> RankingResult:
    """CMC, mAP and mINP of a query x gallery distance matrix (PROTOCOLS.md "Metrics", steps 1-6).

    Args:
        distmat: (nq, ng) finite distances, smaller = more similar.
        q_pids, g_pids: (nq,), (ng,) identity labels.
        q_camids, g_camids: (nq,), (ng,) camera labels (used by the exclusion rule).
        cmc_mode: "identity" (SYSU-MM01 kit, LLCM) or "image" (RegDB, Market-style).
        exclusion: gallery entries removed per query.
        max_rank: length of the returned CMC curve.
        chunk_size: query rows per chunk (default: about 384 MB of working memory per chunk).
        top_k: also return each query's first ``top_k`` gallery positions (``RankingResult.ranked``).
    """
    _check_options(cmc_mode, max_rank, chunk_size)
    dist_all = distmat if isinstance(distmat, torch.Tensor) else torch.from_numpy(np.asarray(distmat))
    if dist_all.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {tuple(dist_all.shape)}")
    if not dist_all.is_floating_point():
        dist_all = dist_all.to(torch.float64)
    nq, ng = dist_all.shape
    step = chunk_size or auto_chunk_size(ng)
    chunks = ((slice(s, min(s + step, nq)), dist_all[s:s + step].clone()) for s in range(0, nq, step))
    return evaluate_distance_chunks(chunks, q_pids, g_pids, q_camids, g_camids, cmc_mode=cmc_mode,
                                    exclusion=exclusion, max_rank=max_rank, num_gallery=ng, top_k=top_k)


DistanceChunks = Iterable[tuple[slice, "np.ndarray | torch.Tensor"]]


def evaluate_distance_chunks(chunks: DistanceChunks, q_pids: np.ndarray, g_pids: np.ndarray,
                             q_camids: np.ndarray, g_camids: np.ndarray, *, cmc_mode: str = "identity",
                             exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                             num_gallery: int | None = None, top_k: int = 0) -> RankingResult:
    """Metrics of a distance matrix that arrives as consecutive blocks of query rows (a stream).

    ``chunks`` yields ``(rows, dist)``: ``rows`` a slice of query indices, ``dist`` the (len(rows),
    ng) distances of those queries to the whole gallery. The slices must tile ``0..nq`` in order;
    each block is ranked and dropped, so memory holds one block (re-rankers stream their output
    here: :meth:`vireid.rerank.registry.Reranker.stream`). A block handed over as a tensor is owned
    by the evaluator and may be overwritten. The result equals :func:`evaluate_distances` on the
    concatenated blocks bit for bit, whatever the block sizes (every per-query value is computed
    row by row; sums are taken once, correctly rounded). ``top_k`` as :func:`evaluate_distances`.
    """
    _check_options(cmc_mode, max_rank, None)
    exclusion = Exclusion.parse(exclusion)
    q_pids = np.asarray(q_pids.cpu() if isinstance(q_pids, torch.Tensor) else q_pids)
    nq = int(q_pids.shape[0]) if q_pids.ndim == 1 else -1
    ng = num_gallery if num_gallery is not None else len(np.asarray(g_pids))
    labels: _Labels | None = None
    acc = _Accumulator(max_rank, top_k)
    expected = 0
    for rows, dist in chunks:
        t = dist if isinstance(dist, torch.Tensor) else torch.from_numpy(np.array(dist))
        if not t.is_floating_point():
            t = t.to(torch.float64)
        if rows.start != expected or t.ndim != 2 or t.shape != (rows.stop - rows.start, ng):
            raise ValueError(f"distance stream: block for query rows {rows.start}:{rows.stop} has shape "
                             f"{tuple(t.shape)}; expected rows from {expected} and {ng} gallery columns")
        if labels is None:
            labels = _Labels(_check_labels("q_pids", q_pids, nq), _check_labels("g_pids", g_pids, ng),
                             _check_labels("q_camids", q_camids, nq), _check_labels("g_camids", g_camids, ng),
                             t.device)
        _rank_chunk(t, rows, labels, exclusion, cmc_mode, acc)
        expected = rows.stop
        del t, dist  # hold no block while the producer computes the next
    if expected != nq:
        raise ValueError(f"distance stream ended after {expected} of {nq} query rows")
    return acc.result(exclusion)


def _as_tensor(x: np.ndarray | torch.Tensor, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num, dim), got shape {tuple(t.shape)}")
    return t.detach().to(device=device, dtype=dtype)


def pairwise_distance(qf: torch.Tensor, gf: torch.Tensor, distance: str = "euclidean",
                      g_sq: torch.Tensor | None = None, *, out: torch.Tensor | None = None,
                      squared: bool = False) -> torch.Tensor:
    """(nq, ng) distances between rows of ``qf`` (nq, D) and ``gf`` (ng, D).

    "euclidean": ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))``; "cosine": ``1 - q.g / (|q| |g|)``.
    ``g_sq`` optionally passes the precomputed squared gallery norms (ng,); ``out`` a (nq, ng)
    buffer to write into (reused across chunks: no fresh pages to fault in); ``squared`` stops
    the euclidean distance before the clamp and square root (``|q|^2 + |g|^2 - 2 q.g``).
    """
    if distance == "euclidean":
        g_sq = (gf * gf).sum(dim=1) if g_sq is None else g_sq  # (ng,)
        q_sq = (qf * qf).sum(dim=1, keepdim=True)  # (nq, 1)
        d2 = torch.add(q_sq, g_sq.unsqueeze(0), out=out).addmm_(qf, gf.t(), alpha=-2.0)  # (nq, ng) in place
        return d2 if squared else d2.clamp_min_(0.0).sqrt_()
    if distance == "cosine":
        qn = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (nq, D)
        gn = gf / gf.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (ng, D)
        if out is None:
            out = torch.ones(qf.shape[0], gf.shape[0], dtype=qf.dtype, device=qf.device)  # (nq, ng)
        else:
            out.fill_(1.0)
        return out.addmm_(qn, gn.t(), alpha=-1.0)
    raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def _row_sq(x: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    """(n,) ``(x * x).sum(dim=1)`` of (n, D) ``x``, a block of rows at a time (no n x D temporary);
    each row is reduced alone, so the values equal those of ``pairwise_distance``."""
    return torch.cat([(x[s:s + rows] * x[s:s + rows]).sum(dim=1) for s in range(0, x.shape[0], rows)]) \
        if x.shape[0] else x.new_zeros(0)


def _prepare_features(qf: np.ndarray | torch.Tensor, gf: np.ndarray | torch.Tensor, distance: str, normalize: bool,
                      device: torch.device | str | None, dtype: torch.dtype
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """Checked (and normalised, if asked) query/gallery tensors, squared gallery norms, and whether
    distance chunks need a finiteness pass."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if device is None:
        device = qf.device if isinstance(qf, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    q = _as_tensor(qf, "qf", device, dtype)  # (nq, D)
    g = _as_tensor(gf, "gf", device, dtype)  # (ng, D)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf must have the same feature dimension, got {q.shape[1]} and {g.shape[1]}")
    for name, t in (("qf", q), ("gf", g)):
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):  # the sum: one cheap pass
            bad_row = int((~torch.isfinite(t)).any(1).nonzero()[0])
            raise ValueError(f"{name} has non-finite values (first bad row {bad_row})")
    if normalize:
        q = torch.nn.functional.normalize(q, dim=1)  # (nq, D)
        g = torch.nn.functional.normalize(g, dim=1)  # (ng, D)
    g_sq = _row_sq(g) if distance == "euclidean" else None  # (ng,)
    # finite features this small cannot overflow a distance: skip the per-chunk finiteness pass
    bound = max((max(-float(t.min()), float(t.max())) if t.numel() else 0.0) for t in (q, g))
    check_finite = not bound**2 * q.shape[1] < 1e30
    return q, g, g_sq, check_finite


def evaluate_features(qf: np.ndarray | torch.Tensor, gf: np.ndarray | torch.Tensor, q_pids: np.ndarray,
                      g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray, *,
                      distance: str = "euclidean", normalize: bool = False, cmc_mode: str = "identity",
                      exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                      chunk_size: int | None = None, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float64, top_k: int = 0) -> RankingResult:
    """Metrics of query features against gallery features, the distances computed chunk by chunk.

    Never materialises the (nq, ng) matrix: each chunk of query rows gets its distances (one
    matmul), is ranked and dropped. ``normalize`` L2-normalises both sides first. ``dtype``
    (default float64) is the precision of the distances; ``device`` where they are computed
    (default: the query tensor's device, else the CPU). Other arguments as :func:`evaluate_distances`.
    """
    _check_options(cmc_mode, max_rank, chunk_size)
    exclusion = Exclusion.parse(exclusion)
    q, g, g_sq, check_finite = _prepare_features(qf, gf, distance, normalize, device, dtype)
    nq, ng = q.shape[0], g.shape[0]
    labels = _Labels(_check_labels("q_pids", q_pids, nq), _check_labels("g_pids", g_pids, ng),
                     _check_labels("q_camids", q_camids, nq), _check_labels("g_camids", g_camids, ng), q.device)
    step = chunk_size or auto_chunk_size(ng)
    acc = _Accumulator(max_rank, top_k)
    q_sq = _row_sq(q) if g_sq is not None else None  # (nq,) euclidean: ranked as sqrt(max(d2, 0)), d2 in cache
    buf = torch.empty(min(step, nq), ng, dtype=q.dtype, device=q.device)  # one chunk, reused
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        out = buf[: rows.stop - start]
        if q_sq is None:
            dist = pairwise_distance(q[rows], g, distance, out=out)  # (c, ng) cosine distances
            _rank_chunk(dist, rows, labels, exclusion, cmc_mode, acc, check_finite=check_finite)
        else:
            dist = torch.mm(q[rows], g.t(), out=out)  # (c, ng) inner products: the GEMM alone
            _rank_chunk(dist, rows, labels, exclusion, cmc_mode, acc, check_finite=check_finite,
                        norms=(q_sq[rows], g_sq))
    return acc.result(exclusion)


def evaluate_features_shared(qf: np.ndarray | torch.Tensor, gf: np.ndarray | torch.Tensor, q_pids: np.ndarray,
                             g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray,
                             galleries: Sequence[np.ndarray], *, distance: str = "euclidean",
                             normalize: bool = False, cmc_mode: str = "identity",
                             exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                             chunk_size: int | None = None, device: torch.device | str | None = None,
                             dtype: torch.dtype = torch.float64, top_k: Sequence[int] | int = 0
                             ) -> list[RankingResult]:
    """One evaluation per gallery subset, with one distance computation for all of them.

    For protocols whose trials share their queries and draw their galleries from one pool (the
    10 SYSU-MM01 trials: 3,803 queries, galleries drawn from the visible test images): each chunk
    of query rows gets its distances to the whole pool ``gf`` (ng, D) once, and every trial ranks
    the columns ``galleries[t]`` (int indices into the pool, in the trial's gallery order, so
    exact ties keep that order). Equals :func:`evaluate_features` on ``gf[galleries[t]]`` per trial
    up to the rounding of the distance GEMM (to 1e-9 on the official SYSU table: tested).
    ``top_k``: per gallery subset (or one value for all), as :func:`evaluate_distances`.
    """
    _check_options(cmc_mode, max_rank, chunk_size)
    exclusion = Exclusion.parse(exclusion)
    q, g, g_sq, check_finite = _prepare_features(qf, gf, distance, normalize, device, dtype)
    nq, ng = q.shape[0], g.shape[0]
    q_pids, q_camids = _check_labels("q_pids", q_pids, nq), _check_labels("q_camids", q_camids, nq)
    g_pids, g_camids = _check_labels("g_pids", g_pids, ng), _check_labels("g_camids", g_camids, ng)
    cols = []
    for t, columns in enumerate(galleries):
        columns = np.asarray(columns, dtype=np.int64).reshape(-1)
        if columns.size and (columns.min() < 0 or columns.max() >= ng):
            raise ValueError(f"gallery subset {t} refers to pool column {int(columns.max())}; the pool has {ng}")
        cols.append(columns)
    labels = [_Labels(q_pids, g_pids[c], q_camids, g_camids[c], q.device) for c in cols]
    index = [torch.as_tensor(c, device=q.device) for c in cols]
    widest = max((len(c) for c in cols), default=1)
    step = chunk_size or auto_chunk_size(ng + widest)
    tops = [top_k] * len(cols) if isinstance(top_k, int) else list(top_k)
    accs = [_Accumulator(max_rank, k) for k in tops]
    q_sq = _row_sq(q) if g_sq is not None else None  # (nq,) euclidean
    buf = torch.empty(min(step, nq), ng, dtype=q.dtype, device=q.device)  # one chunk, reused
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        out = buf[: rows.stop - start]
        if q_sq is None:
            dist = pairwise_distance(q[rows], g, distance, out=out)  # (c, ng) cosine, against the pool
        else:
            dist = torch.mm(q[rows], g.t(), out=out)  # (c, ng) inner products against the pool
        for lab, idx, acc in zip(labels, index, accs):
            part = dist.index_select(1, idx)  # (c, ng_t) owned copy, the trial's gallery order
            norms = None if q_sq is None else (q_sq[rows], g_sq.index_select(0, idx))
            _rank_chunk(part, rows, lab, exclusion, cmc_mode, acc, check_finite=check_finite, norms=norms)
    return [acc.result(exclusion) for acc in accs]
