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

Implementation: one sort per query row, ties in gallery order (excluded entries pushed to
``+inf`` so the kept entries form a prefix of the sorted row; on the CPU a NumPy quicksort, rows
with tied finite distances re-sorted stably); the true matches are read with one ``nonzero``; the
identity-level rank counts, with one ``scatter_reduce``, the identities whose first kept position
precedes the first true match. No Python loop runs per query; memory is bounded by ``chunk_size``
query rows, and :func:`evaluate_features` never holds more than one chunk of the distance matrix.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from vireid.evaluation.exclusion import Exclusion

logger = logging.getLogger(__name__)

CMC_MODES = ("identity", "image")
DISTANCES = ("euclidean", "cosine")
# Bytes of working memory per distance-matrix entry of a chunk (distances, sorted values, order,
# gathered identities, masks); the automatic chunk size keeps one chunk near _CHUNK_BUDGET bytes.
_BYTES_PER_ENTRY = 48
_CHUNK_BUDGET = 384 * 2**20


@dataclass(frozen=True)
class RankingResult:
    """Metrics of one query/gallery evaluation, as fractions in [0, 1].

    Attributes:
        cmc: (max_rank,) cumulative match characteristic; ``cmc[k - 1]`` is rank-k accuracy.
        mAP: mean average precision over valid queries.
        mINP: mean inverse negative penalty over valid queries.
        num_valid: queries with at least one true match left after exclusion.
        num_queries: all queries.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_queries: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy (1-based k)."""
        return float(self.cmc[k - 1])


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


class _Labels:
    """Query/gallery labels as tensors on one device, identities mapped to 0..n_ids-1 (-1: not in gallery)."""

    def __init__(self, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                 g_camids: np.ndarray, device: torch.device) -> None:
        ids, g_index = np.unique(g_pids, return_inverse=True)
        if len(ids):
            pos = np.searchsorted(ids, q_pids).clip(0, len(ids) - 1)
            q_index = np.where(ids[pos] == q_pids, pos, -1)
        else:
            q_index = np.full(len(q_pids), -1)
        self.num_ids = len(ids)
        self.q_pids = torch.as_tensor(q_pids, device=device)
        self.g_pids = torch.as_tensor(g_pids, device=device)
        self.q_camids = torch.as_tensor(q_camids, device=device)
        self.g_camids = torch.as_tensor(g_camids, device=device)
        index_dtype = np.int32 if len(ids) < 2**31 else np.int64  # int32 halves the (c, ng) gathers
        self.q_index = torch.as_tensor(q_index.astype(index_dtype), device=device)
        self.g_index = torch.as_tensor(g_index.reshape(-1).astype(index_dtype), device=device)


class _Accumulator:
    """Sums over valid queries, chunk by chunk."""

    def __init__(self, max_rank: int) -> None:
        self.first_rank_counts = np.zeros(max_rank, dtype=np.int64)
        self.ap_sum = 0.0
        self.inp_sum = 0.0
        self.num_valid = 0
        self.num_queries = 0
        self.max_rank = max_rank

    def result(self, exclusion: Exclusion) -> RankingResult:
        if self.num_valid == 0:
            raise ValueError(f"none of the {self.num_queries} queries has a true match in the gallery "
                             f"after exclusion {exclusion.value!r}; check the query/gallery identities")
        cmc = np.cumsum(self.first_rank_counts) / self.num_valid
        return RankingResult(cmc=cmc.astype(np.float64), mAP=self.ap_sum / self.num_valid,
                             mINP=self.inp_sum / self.num_valid, num_valid=self.num_valid,
                             num_queries=self.num_queries)


def _rank_chunk(dist: torch.Tensor, rows: slice, labels: _Labels, exclusion: Exclusion,
                cmc_mode: str, acc: _Accumulator, check_finite: bool = True) -> None:
    """Add one chunk of query rows to ``acc``. ``dist`` (c, ng) is owned and may be overwritten."""
    c, ng = dist.shape
    device = dist.device
    if check_finite:
        finite = torch.isfinite(dist)  # (c, ng)
        if not bool(finite.all()):
            bad = (~finite).nonzero()[0].tolist()
            raise ValueError(f"distance matrix has a non-finite entry at query {rows.start + bad[0]}, "
                             f"gallery {bad[1]}")
        del finite
    q_index = labels.q_index[rows]  # (c,)
    excluded = exclusion.mask(labels.q_pids[rows], labels.q_camids[rows], labels.g_pids, labels.g_camids)
    if excluded is not None:
        dist.masked_fill_(excluded, math.inf)  # excluded entries sort after every kept one
        del excluded
    order, num_kept = _stable_argsort(dist)  # (c, ng), (c,): the distances are finite but the excluded
    del dist
    pid_sorted = labels.g_index[order]  # (c, ng)
    del order
    positions = torch.arange(ng, device=device)  # (ng,)
    match = (pid_sorted == q_index.unsqueeze(1)) & (positions.unsqueeze(0) < num_kept.unsqueeze(1))  # (c, ng)
    match_rows, match_cols = match.nonzero(as_tuple=True)  # (M,), row-major so columns ascend per row
    del match
    num_matches = torch.bincount(match_rows, minlength=c)  # (c,)
    valid = num_matches > 0  # (c,)
    starts = torch.cumsum(num_matches, 0) - num_matches  # (c,)
    j = torch.arange(match_rows.numel(), device=device) - starts[match_rows] + 1  # (M,) 1-based match index
    precision = j.to(torch.float64) / (match_cols + 1).to(torch.float64)  # (M,)
    ap = torch.zeros(c, dtype=torch.float64, device=device).index_add_(0, match_rows, precision)  # (c,)
    g_count = num_matches[valid].to(torch.float64)  # (v,)
    first_col = match_cols[starts[valid]]  # (v,) 0-based position of the first true match
    last_col = match_cols[starts[valid] + num_matches[valid] - 1]  # (v,) hardest true match
    ap_valid = ap[valid] / g_count  # (v,)
    inp_valid = g_count / (last_col + 1).to(torch.float64)  # (v,)
    if cmc_mode == "image":
        first_rank = first_col  # (v,) images before the first true match
    else:
        first_rank = _identity_ranks(pid_sorted[valid], first_col, labels.num_ids)  # (v,)
    first_rank = first_rank.clamp(max=acc.max_rank)  # rank >= max_rank lands in an overflow bin
    counts = torch.bincount(first_rank, minlength=acc.max_rank + 1)[: acc.max_rank]  # (max_rank,)
    acc.first_rank_counts += counts.cpu().numpy()
    acc.ap_sum += float(ap_valid.sum())
    acc.inp_sum += float(inp_valid.sum())
    acc.num_valid += int(valid.sum())
    acc.num_queries += c


def _argsort_rows(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable row-wise argsort of ``d`` (c, ng) and the finite count per row.

    Quicksort first, then a stable re-sort of the rows where equal finite values may have moved.
    """
    order = np.argsort(d, axis=1)  # (c, ng) SIMD quicksort: fast, not stable
    sorted_d = np.take_along_axis(d, order, axis=1)  # (c, ng)
    finite = np.isfinite(sorted_d)  # (c, ng)
    tied = ((sorted_d[:, 1:] == sorted_d[:, :-1]) & finite[:, 1:]).any(axis=1)  # (c,)
    if tied.any():
        rows = np.flatnonzero(tied)
        order[rows] = np.argsort(d[rows], axis=1, kind="stable")
    return order, np.count_nonzero(finite, axis=1)


def _stable_argsort(dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise argsort, ties in gallery order (PROTOCOLS.md "Metrics", step 1).

    On the CPU, NumPy's (SIMD) quicksort is several times faster than a stable sort; rows where
    it may have reordered equal finite distances are sorted again stably (excluded entries are
    +inf and their order never matters). Row blocks run on ``torch.get_num_threads()`` threads
    (NumPy releases the GIL while sorting). Elsewhere, ``torch.sort(stable=True)``.
    Returns the order (c, ng) and the number of finite distances per row (c,).
    """
    if dist.device.type != "cpu":
        return torch.sort(dist, dim=1, stable=True).indices, torch.isfinite(dist).sum(dim=1)
    d = dist.numpy()
    workers = max(1, min(torch.get_num_threads(), 16, d.shape[0] // 16))
    if workers == 1:
        order, finite = _argsort_rows(d)
    else:
        bounds = np.linspace(0, d.shape[0], workers + 1).astype(int)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            blocks = list(pool.map(lambda i: _argsort_rows(d[bounds[i]:bounds[i + 1]]), range(workers)))
        order, finite = np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
    return torch.from_numpy(order), torch.from_numpy(finite)


def _identity_ranks(pid_sorted: torch.Tensor, first_col: torch.Tensor, num_ids: int) -> torch.Tensor:
    """Distinct identities before each row's first true match (0 = the query identity comes first).

    The kept entries form a prefix of each sorted row and the first true match lies inside it, so
    only positions ``< first_col`` matter: each identity's first position there is found with one
    ``scatter_reduce`` (amin) over a window as wide as the latest first match of the chunk.
    """
    v = pid_sorted.shape[0]
    if v == 0:
        return first_col
    width = int(first_col.max()) + 1
    window = pid_sorted[:, :width].long()  # (v, W)
    positions = torch.arange(width, device=pid_sorted.device).unsqueeze(0).expand(v, width)  # (v, W)
    before = positions < first_col.unsqueeze(1)  # (v, W)
    src = torch.where(before, positions, width)  # (v, W)
    first_pos = torch.full((v, num_ids), width, dtype=torch.int64, device=pid_sorted.device)  # (v, n_ids)
    first_pos.scatter_reduce_(1, window, src, reduce="amin", include_self=True)
    return (first_pos < width).sum(dim=1)  # (v,)


def evaluate_distances(distmat: np.ndarray | torch.Tensor, q_pids: np.ndarray, g_pids: np.ndarray,
                       q_camids: np.ndarray, g_camids: np.ndarray, *, cmc_mode: str = "identity",
                       exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                       chunk_size: int | None = None) -> RankingResult:
    """CMC, mAP and mINP of a query x gallery distance matrix (PROTOCOLS.md "Metrics", steps 1-6).

    Args:
        distmat: (nq, ng) finite distances, smaller = more similar.
        q_pids, g_pids: (nq,), (ng,) identity labels.
        q_camids, g_camids: (nq,), (ng,) camera labels (used by the exclusion rule).
        cmc_mode: "identity" (SYSU-MM01 kit, LLCM) or "image" (RegDB, Market-style).
        exclusion: gallery entries removed per query.
        max_rank: length of the returned CMC curve.
        chunk_size: query rows per chunk (default: about 384 MB of working memory per chunk).
    """
    _check_options(cmc_mode, max_rank, chunk_size)
    exclusion = Exclusion.parse(exclusion)
    dist_all = distmat if isinstance(distmat, torch.Tensor) else torch.from_numpy(np.asarray(distmat))
    if dist_all.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {tuple(dist_all.shape)}")
    if not dist_all.is_floating_point():
        dist_all = dist_all.to(torch.float64)
    nq, ng = dist_all.shape
    labels = _Labels(_check_labels("q_pids", q_pids, nq), _check_labels("g_pids", g_pids, ng),
                     _check_labels("q_camids", q_camids, nq), _check_labels("g_camids", g_camids, ng),
                     dist_all.device)
    step = chunk_size or auto_chunk_size(ng)
    acc = _Accumulator(max_rank)
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        _rank_chunk(dist_all[rows].clone(), rows, labels, exclusion, cmc_mode, acc)
    return acc.result(exclusion)


def _as_tensor(x: np.ndarray | torch.Tensor, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num, dim), got shape {tuple(t.shape)}")
    return t.detach().to(device=device, dtype=dtype)


def pairwise_distance(qf: torch.Tensor, gf: torch.Tensor, distance: str = "euclidean",
                      g_sq: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, ng) distances between rows of ``qf`` (nq, D) and ``gf`` (ng, D).

    "euclidean": ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))``; "cosine": ``1 - q.g / (|q| |g|)``.
    ``g_sq`` optionally passes the precomputed squared gallery norms (ng,).
    """
    if distance == "euclidean":
        g_sq = (gf * gf).sum(dim=1) if g_sq is None else g_sq  # (ng,)
        q_sq = (qf * qf).sum(dim=1, keepdim=True)  # (nq, 1)
        d2 = torch.addmm(q_sq + g_sq.unsqueeze(0), qf, gf.t(), alpha=-2.0)  # (nq, ng)
        return d2.clamp_min_(0.0).sqrt_()
    if distance == "cosine":
        qn = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (nq, D)
        gn = gf / gf.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (ng, D)
        return torch.addmm(torch.ones(1, dtype=qf.dtype, device=qf.device), qn, gn.t(), alpha=-1.0)  # (nq, ng)
    raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def evaluate_features(qf: np.ndarray | torch.Tensor, gf: np.ndarray | torch.Tensor, q_pids: np.ndarray,
                      g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray, *,
                      distance: str = "euclidean", normalize: bool = False, cmc_mode: str = "identity",
                      exclusion: Exclusion | str = Exclusion.NONE, max_rank: int = 20,
                      chunk_size: int | None = None, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float64) -> RankingResult:
    """Metrics of query features against gallery features, the distances computed chunk by chunk.

    Never materialises the (nq, ng) matrix: each chunk of query rows gets its distances (one
    matmul), is ranked and dropped. ``normalize`` L2-normalises both sides first. ``dtype``
    (default float64) is the precision of the distances; ``device`` where they are computed
    (default: the query tensor's device, else the CPU). Other arguments as :func:`evaluate_distances`.
    """
    _check_options(cmc_mode, max_rank, chunk_size)
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    exclusion = Exclusion.parse(exclusion)
    if device is None:
        device = qf.device if isinstance(qf, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    q = _as_tensor(qf, "qf", device, dtype)  # (nq, D)
    g = _as_tensor(gf, "gf", device, dtype)  # (ng, D)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf must have the same feature dimension, got {q.shape[1]} and {g.shape[1]}")
    for name, t in (("qf", q), ("gf", g)):
        if not bool(torch.isfinite(t).all()):
            bad_row = int((~torch.isfinite(t)).any(1).nonzero()[0])
            raise ValueError(f"{name} has non-finite values (first bad row {bad_row})")
    if normalize:
        q = torch.nn.functional.normalize(q, dim=1)  # (nq, D)
        g = torch.nn.functional.normalize(g, dim=1)  # (ng, D)
    nq, ng = q.shape[0], g.shape[0]
    labels = _Labels(_check_labels("q_pids", q_pids, nq), _check_labels("g_pids", g_pids, ng),
                     _check_labels("q_camids", q_camids, nq), _check_labels("g_camids", g_camids, ng), device)
    g_sq = (g * g).sum(dim=1) if distance == "euclidean" else None  # (ng,)
    # finite features this small cannot overflow a distance: skip the per-chunk finiteness pass
    bound = max(float(q.abs().max()) if q.numel() else 0.0, float(g.abs().max()) if g.numel() else 0.0)
    check_finite = not bound**2 * q.shape[1] < 1e30
    step = chunk_size or auto_chunk_size(ng)
    acc = _Accumulator(max_rank)
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        dist = pairwise_distance(q[rows], g, distance, g_sq=g_sq)  # (c, ng)
        _rank_chunk(dist, rows, labels, exclusion, cmc_mode, acc, check_finite=check_finite)
    return acc.result(exclusion)
