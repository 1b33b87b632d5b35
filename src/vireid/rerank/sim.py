"""SIM, the Similarity Inference Metric (seeds/002 §5, METHODS.md §5, Eq. 1-8): training-free
re-ranking for cross-modality re-ID by shortest paths through the gallery and a k-reciprocal
set overlap.

- Graph (Eq. 1): query-gallery edges ``D_qg``, gallery-gallery edges ``lam * D_gg``, no
  query-query edges; ``D`` is the Euclidean distance (a true metric, see METHODS.md §5
  ambiguities; squared Euclidean would break Eq. 3), on L2-normalised features by default.
- Paths (Eq. 2-4): with metric gallery edges the shortest path is two-hop,
  ``d(q, g_j) = min_t [D_qg(q, g_t) + lam D_gg(g_t, g_j)]`` (``t = j`` is the direct edge, as
  ``D_gg(j, j) = 0``). Paths never pass through another query (the two-hop form of Eq. 4).
- Eq. 5: ``d_S(q, g_j)`` = mean of the ``top_k`` smallest two-hop values over t (the K shortest
  of the paths ``q -> g_t -> g_j``; K = 1 is the plain shortest path).
- Eq. 6: ``N_c(q)`` = the ``k_q`` gallery items nearest to q under ``d_S``.
- Eq. 7: ``d_M(q, g_j) = 1 - |N_c ∩ R*(g_j, k_g)| / |N_c ∪ R*(g_j, k_g)|``, with R* the
  k-reciprocal set of Zhong et al. inside the gallery under ``D_gg``
  (:mod:`vireid.rerank.reciprocal`, reference-code semantics: ``N(p, k)`` is p plus its k nearest).
- Eq. 8: ``d_SIM = alpha d_S + (1 - alpha) d_M``.

The min-plus product costs O(nq ng^2): it runs per (query chunk, gallery column chunk) plane,
keeping the K smallest values per cell with a min/max insertion network over t (exact, any K;
far faster on CPU than ``topk`` over (chunk_q, chunk_t, ng) blocks). Memory: the (ng, ng)
gallery distances plus O(chunk planes) and the (nq, ng) output.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vireid.errors import ConfigError
from vireid.rerank._distance import (
    collect_stream,
    ArrayLike,
    as_features,
    check_float,
    check_int,
    check_pair,
    FixedBlockRows,
    distance_block,
    resolve_device,
)
from vireid.rerank.reciprocal import expanded_reciprocal_sets, knn_from_distances

logger = logging.getLogger(__name__)

_PLANE = {"cpu": 1 << 18, "other": 1 << 24}  # cells of one (chunk_q, chunk_j) min-plus plane


def sim_rerank(
    qf: ArrayLike,
    gf: ArrayLike,
    *,
    lam: float = 1.0,
    top_k: int = 3,
    k_q: int = 10,
    k_g: int = 10,
    alpha: float = 0.5,
    normalize: bool = True,
    chunk_size: int | None = None,
    column_chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """SIM re-ranked query-gallery distances (seeds/002 §5, Eq. 1-8): the concatenation of
    :func:`sim_stream`'s blocks, a float32 numpy (nq, ng) array (arguments as :func:`sim_stream`)."""
    return collect_stream(sim_stream(
        qf, gf, lam=lam, top_k=top_k, k_q=k_q, k_g=k_g, alpha=alpha, normalize=normalize, chunk_size=chunk_size,
        column_chunk_size=column_chunk_size, device=device))


def sim_stream(
    qf: ArrayLike,
    gf: ArrayLike,
    *,
    lam: float = 1.0,
    top_k: int = 3,
    k_q: int = 10,
    k_g: int = 10,
    alpha: float = 0.5,
    normalize: bool = True,
    chunk_size: int | None = None,
    column_chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> Iterator[tuple[slice, Tensor]]:
    """SIM re-ranked query-gallery distances as a stream of query-row blocks (seeds/002 §5, Eq. 1-8).

    Builds the gallery side now (the (ng, ng) gallery distances and R* sets) and returns an iterator
    of ``(rows, block)``, ``block`` the (len(rows), ng) float32 SIM distances of the queries
    ``rows``, owned by the consumer; the (nq, ng) matrix is never held. The query-gallery
    distances come from fixed-shape GEMMs and every later step is row-wise, so the block size
    (``chunk_size``) never changes a value. Cost: O(nq ng^2) time and O(ng^2) memory for the
    gallery graph, so SIM does not reach MSMT17's 82,161-image gallery (27 GB for D_gg alone).

    Args:
        qf: (nq, D) query features (e.g. infrared).
        gf: (ng, D) gallery features (e.g. visible).
        lam: weight lambda of the gallery-gallery edges, Eq. 1, >= 0 [UNSPEC -> 1.0].
        top_k: K, how many shortest paths are averaged, Eq. 5 [UNSPEC -> 3].
        k_q: size of the query's neighbour set N_c under d_S, Eq. 6 [UNSPEC -> 10].
        k_g: k of the gallery k-reciprocal sets R*(g_j, k_g), Eq. 7 [UNSPEC -> 10].
        alpha: weight of d_S against d_M, Eq. 8 [UNSPEC -> 0.5].
        normalize: L2-normalise the features before the Euclidean distances [UNSPEC -> True].
        chunk_size: queries per min-plus plane; default fills ~2^18 cells on CPU, 2^24 elsewhere.
        column_chunk_size: gallery columns per plane; default all.
        device: where to compute; default the device of ``qf`` (CPU for numpy input).

    Returns:
        iterator of (rows, (len(rows), ng) float32 tensor) SIM distances (smaller = more similar).
        ``k_q`` and ``k_g`` larger than the gallery saturate (all items); ``top_k`` must not exceed it.
    """
    t0 = time.perf_counter()
    dev = resolve_device(qf, device)
    q = as_features(qf, "query features", dev)  # (nq, D)
    g = as_features(gf, "gallery features", dev)  # (ng, D)
    check_pair(q, g)
    nq, ng = q.shape[0], g.shape[0]
    lam = check_float("lam", lam, 0.0, math.inf)
    if not math.isfinite(lam):
        raise ConfigError(f"lam must be finite, got {lam!r}")
    top_k = check_int("top_k", top_k, 1)
    if top_k > ng:
        raise ConfigError(f"top_k={top_k} exceeds the gallery size {ng}: d_S averages top_k distinct paths")
    k_q = min(check_int("k_q", k_q, 1), ng)
    k_g = check_int("k_g", k_g, 1)
    alpha = check_float("alpha", alpha, 0.0, 1.0)
    plane = _PLANE["cpu" if dev.type == "cpu" else "other"]
    cq = check_int("chunk_size", chunk_size, 1) if chunk_size is not None else max(1, plane // ng)
    cj = check_int("column_chunk_size", column_chunk_size, 1) if column_chunk_size is not None else ng

    if normalize:
        q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)
    q_sq, g_sq = (q * q).sum(dim=1), (g * g).sum(dim=1)  # (nq,), (ng,)
    d_gg = torch.empty(ng, ng, dtype=torch.float32, device=dev)  # (ng, ng) Euclidean
    for s in range(0, ng, 1024):
        rows = slice(s, s + 1024)
        d_gg[rows] = distance_block(g[rows], g, g_sq[rows], g_sq, squared=False, diagonal_offset=s)

    # R*(g_j, k_g) inside the gallery, as a sparse (ng, ng) 0/1 matrix and its row sizes.
    knn = knn_from_distances(d_gg, k_g + 1)  # (ng, k_g+1)
    idx, mask = expanded_reciprocal_sets(knn, k_g)  # (ng, M)
    rows = torch.arange(ng, device=dev)[:, None].expand_as(idx)[mask]
    r_star = torch.sparse_coo_tensor(
        torch.stack([rows, idx[mask]]), torch.ones(rows.shape[0], device=dev), (ng, ng), check_invariants=False
    ).coalesce()
    r_size = mask.sum(dim=1).to(torch.float32)  # (ng,)

    e_gg = d_gg.mul_(lam)  # (ng, ng) gallery edges lam * D_gg, in place
    d_qg_rows = FixedBlockRows(q, g, q_sq, g_sq, squared=False)
    logger.debug("SIM gallery graph of %d images in %.2fs", ng, time.perf_counter() - t0)

    def blocks() -> Iterator[tuple[slice, Tensor]]:
        for s in range(0, nq, cq):
            rows = slice(s, min(s + cq, nq))
            d_qg = d_qg_rows.rows(rows)  # (c, ng)
            d_s = min_plus_topk_mean(d_qg, e_gg, top_k, column_chunk=cj)  # (c, ng) Eq. 4-5
            n_c = d_s.topk(k_q, dim=1, largest=False).indices  # (c, k_q) Eq. 6
            member = torch.zeros_like(d_s).scatter_(1, n_c, 1.0)  # (c, ng) indicator of N_c
            inter = torch.sparse.mm(r_star, member.T).T  # (c, ng): |N_c ∩ R*(g_j)|
            d_m = 1.0 - inter / (k_q + r_size[None, :] - inter)  # (c, ng) Eq. 7
            yield rows, alpha * d_s + (1.0 - alpha) * d_m  # Eq. 8

    return blocks()


def min_plus_topk_mean(a: Tensor, e: Tensor, k: int, *, column_chunk: int | None = None) -> Tensor:
    """Mean of the ``k`` smallest ``a[q, t] + e[t, j]`` over t, for every (q, j): (nq, m) float32.

    seeds/002 §5 Eq. 4-5 (a = D_qg, e = lam D_gg). ``k = 1`` is the min-plus product. Runs a
    sorted insertion network over t on (nq, column_chunk) planes: 2k elementwise ops per t.

    Args:
        a: (nq, n) first-hop costs.
        e: (n, m) second-hop costs.
        k: number of smallest values averaged, ``1 <= k <= n``.
        column_chunk: columns of ``e`` per plane (default all).
    """
    nq, n = a.shape
    m = e.shape[1]
    if not 1 <= k <= n:
        raise ConfigError(f"k must be in [1, {n}], got {k}")
    cj = m if column_chunk is None else column_chunk
    a_t = a.T.contiguous()  # (n, nq): row t holds a[:, t]
    out = torch.empty(nq, m, dtype=torch.float32, device=a.device)  # (nq, m)
    for j0 in range(0, m, cj):
        e_j = e[:, j0 : j0 + cj]  # (n, cj)
        if not e_j.is_contiguous():
            e_j = e_j.contiguous()
        width = e_j.shape[1]
        best = [torch.full((nq, width), math.inf, dtype=torch.float32, device=a.device) for _ in range(k)]
        v = torch.empty(nq, width, dtype=torch.float32, device=a.device)  # (nq, cj) candidate
        spare = torch.empty_like(v)
        for t in range(n):
            torch.add(e_j[t][None, :], a_t[t][:, None], out=v)  # (nq, cj): a[q, t] + e[t, j]
            for level in range(k - 1):  # best[0] <= best[1] <= ... stays sorted
                torch.maximum(best[level], v, out=spare)
                torch.minimum(best[level], v, out=best[level])
                v, spare = spare, v
            torch.minimum(best[k - 1], v, out=best[k - 1])
        total = best[0]
        for level in range(1, k):
            total = total + best[level]
        out[:, j0 : j0 + width] = total / k
    return out
