"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017, Eq. 1-14), memory-bounded and device-agnostic.

The output equals the public reference ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2,
lambda_value)`` (zhunzhong07/person-re-ranking ``python-version/re_ranking_ranklist.py``, copied in
torchreid ``utils/rerank.py``) fed with the Euclidean distances of the same features, equivalently
the feature version of reid-strong-baseline ``utils/re_ranking.py``:

1. Original distance over all ``N = nq + ng`` items (queries and gallery together): the squared
   Euclidean distance ``d(i, j) = |x_i - x_j|^2`` of the features as given (no normalisation here),
   divided by its per-column maximum and transposed, i.e. ``d0(i, j) = d(i, j) / max_k d(i, k)``.
2. ``R*(i, k1)``: k-reciprocal set with the 2/3 expansion over the ``round(k1/2)`` sets
   (:mod:`vireid.rerank.reciprocal`).
3. Gaussian-kernel encoding (Eq. 10): ``V[i, j] = exp(-d0(i, j)) / sum_{j' in R*} exp(-d0(i, j'))``
   for ``j in R*(i, k1)``, else 0.
4. Local query expansion (Eq. 11): ``V[i] <- mean of V[g]`` over the first ``k2`` items of i's
   ranking (i included), skipped when ``k2 == 1``.
5. Jaccard distance (Eq. 12-13): ``s = sum_c min(V[i, c], V[g, c])``, ``d_J = 1 - s / (2 - s)``.
6. Final (Eq. 14): ``(1 - lambda) d_J + lambda d0``, query rows and gallery columns.

Instead of the reference's N x N argsort and dense N x N matrices (distance, ranks, V, V_qe),
this computes the distance in (chunk_size, chunk_size) tiles of the upper triangle
(:mod:`vireid.rerank.original_distance`: each tile serves its rows and, transposed, its columns,
so the matrix is exactly symmetric and costs half a GEMM), keeps only the top-(k1+1) neighbours
of every item (``torch.topk`` until an item's list is filled, then only the tile entries not above
its current (k1+1)-th distance are merged), stores V sparsely, and evaluates the Jaccard step
with an inverted index over V's gallery rows. The output is a stream
(:func:`k_reciprocal_stream`): blocks of query rows, each recomputing its original distances to
the gallery (fixed-shape GEMMs, so the values do not depend on the block size) and mixing them
with its Jaccard distances; :func:`k_reciprocal_rerank` concatenates the blocks. Peak memory of
the stream is O(N (k1 + D) + chunk_size^2 + query_chunk ng); nothing is N x N or nq x ng (MSMT17,
11,659 x 82,161: benchmarks/bench_rerank.py).

Precision: see :mod:`vireid.rerank.original_distance` (float32 GEMM on the CPU, float64 rounded
to float32 elsewhere). Every later step is float32, as in the reference; on the same original
distance matrix the output matches the reference to ~1e-7. Exact ties between distances are
broken arbitrarily, as the reference's ``np.argsort`` does. An all-zero distance row (all
features identical) gives d0 = 0 where the reference divides 0 by 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from vireid.rerank._distance import (ArrayLike, check_float, check_int, collect_stream, pair_distances,
                                     release_free_heap, resolve_device)
from vireid.rerank.original_distance import (QUERY_BLOCK, Augmented, AugmentedRows, distance_tiles,
                                             query_gallery_rows)
from vireid.rerank.reciprocal import expanded_reciprocal_sets

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2048
_PAIR_BUDGET = 1 << 18  # (query entry, gallery row) pairs per Jaccard chunk
_PIECE = 2048  # candidates screened at once when folding a distance tile into the nearest lists


def k_reciprocal_rerank(
    qf: ArrayLike,
    gf: ArrayLike,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    query_chunk: int | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Re-ranked query-gallery distances by k-reciprocal encoding (Zhong et al., CVPR 2017).

    Args:
        qf: (nq, D) query features (any modality; visible-infrared queries and gallery differ).
        gf: (ng, D) gallery features.
        k1: k-reciprocal neighbourhood size (paper default 20).
        k2: local query expansion size (paper default 6; 1 disables it).
        lambda_value: weight of the original distance in the final mix (paper default 0.3).
        chunk_size: side of the distance tiles (a float32 tile is 4 chunk_size^2 bytes) and rows
            per query-expansion chunk. Does not change the result beyond float32 rounding (~1e-7).
        query_chunk: query rows per output block (see :func:`k_reciprocal_stream`); never changes
            a bit of the result.
        device: where to compute; default the device of ``qf`` (CPU for numpy input).

    Returns:
        (nq, ng) float32 numpy array of re-ranked distances (smaller = more similar): the
        concatenation of :func:`k_reciprocal_stream`'s blocks. At MSMT17 size that is 3.8 GB;
        evaluate the stream instead (``Reranker.stream``, what ``vireid evaluate-features`` does).
    """
    stream = k_reciprocal_stream(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value, chunk_size=chunk_size,
                                 query_chunk=query_chunk, device=device)
    return collect_stream(stream)


def k_reciprocal_stream(
    qf: ArrayLike,
    gf: ArrayLike,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    query_chunk: int | None = None,
    device: str | torch.device | None = None,
) -> Iterator[tuple[slice, Tensor]]:
    """k-reciprocal re-ranked distances as a stream of query-row blocks (Zhong et al., CVPR 2017).

    Does the whole-set work now (original distance tiles, neighbour lists, V, query expansion,
    inverted index: O(N (k1 + D)) memory) and returns an iterator of ``(rows, block)``: ``rows`` a
    slice of query indices, ``block`` the (len(rows), ng) float32 re-ranked distances, owned by the
    consumer (:func:`vireid.evaluation.metrics.evaluate_distance_chunks` ranks and drops each).
    ``query_chunk`` (default: about 32 MB per block) sets the rows per block and never changes a
    value. Other arguments as :func:`k_reciprocal_rerank`.
    """
    t0 = time.perf_counter()
    dev = resolve_device(qf, device)
    k1 = check_int("k1", k1, 1)
    k2 = check_int("k2", k2, 1)
    lam = check_float("lambda_value", lambda_value, 0.0, 1.0)
    chunk = check_int("chunk_size", chunk_size, 1)
    if query_chunk is not None:
        check_int("query_chunk", query_chunk, 1)
    left = AugmentedRows(qf, gf, dev)  # (N, D+2) centred features, |x|^2, 1: rows made on demand
    nq, n = len(qf), left.shape[0]
    rows_per_block = query_chunk or default_query_chunk(n - nq)
    knn, knn_d0, row_max = _ranks_and_original(left, width=max(k1 + 1, k2), block=chunk)
    idx, mask = expanded_reciprocal_sets(knn, k1)  # (N, M) R*(i, k1)
    vals = _encode(left, knn, knn_d0, row_max, idx, mask)  # (N, M) V on the padded layout of R*
    k2 = min(k2, n)
    if k2 != 1:
        v = _query_expansion(idx, vals, mask, knn[:, :k2], chunk)  # sparse (N, N), sorted entries
    else:
        v = (torch.arange(n, device=left.device)[:, None].expand_as(idx)[mask].to(_index_dtype(n)),
             idx[mask].to(_index_dtype(n)), vals[mask])
    del knn, knn_d0, idx, mask, vals
    release_free_heap()  # the set-up's freed temporaries: not part of the peaks to come
    jaccard = _JaccardRows(v, nq, n)
    del v
    release_free_heap()
    logger.debug("k-reciprocal set-up of %d x %d (k1=%d, k2=%d) in %.2fs", nq, n - nq, k1, k2,
                 time.perf_counter() - t0)
    return _mixed_blocks(left, row_max, jaccard, nq, lam, chunk, rows_per_block)


def default_query_chunk(num_gallery: int, budget_bytes: int = 32 * 2**20) -> int:
    """Query rows per streamed block: about ``budget_bytes`` of float32, a multiple of the GEMM block."""
    rows = max(1, budget_bytes // (4 * max(1, num_gallery)))
    return max(QUERY_BLOCK, rows // QUERY_BLOCK * QUERY_BLOCK)


def _mixed_blocks(left: Augmented, row_max: Tensor, jaccard: "_JaccardRows", nq: int, lam: float, block: int,
                  rows_per_block: int) -> Iterator[tuple[slice, Tensor]]:
    """Eq. 14 per block of query rows: ``(1 - lambda) d_J + lambda d0``."""
    for a in range(0, nq, rows_per_block):
        rows = slice(a, min(a + rows_per_block, nq))
        d0 = query_gallery_rows(left, nq, rows, block)  # (c, ng) squared distances
        d0 /= row_max[rows, None]  # d0, the same float32 division as the reference
        out = jaccard.rows(rows)  # (c, ng) s = sum_c min(V_q, V_g), Eq. 12-13
        den = torch.sub(2.0, out)  # (c, ng) 2 - s
        out.div_(den).neg_().add_(1.0)  # Jaccard distance 1 - s / (2 - s), in place
        del den
        out.mul_(1.0 - lam).add_(d0.mul_(lam))  # Eq. 14
        del d0
        yield rows, out
        del out  # the consumer owns the block now: hold nothing while computing the next


def _ranks_and_original(left: Augmented, *, width: int, block: int) -> tuple[Tensor, Tensor, Tensor]:
    """One pass over the original distance tiles (:mod:`vireid.rerank.original_distance`).

    Each upper-triangle tile is used for its rows and, transposed, for its columns. Keeps, per
    item, the ``width`` nearest items (nearest first) with their d0 values, and the row maxima.

    Returns:
        knn (N, width) int64, knn_d0 (N, width) float32, row_max (N,) float32.
    """
    n = left.shape[0]
    width = min(width, n)
    best_d = torch.full((n, width), float("inf"), dtype=torch.float32, device=left.device)  # (N, width)
    best_i = torch.zeros(n, width, dtype=torch.long, device=left.device)  # (N, width)
    row_max = torch.zeros(n, dtype=torch.float32, device=left.device)  # (N,)
    for rows, cols, d in distance_tiles(left, block):  # d: (r, c) squared distances
        _fold(best_d, best_i, d, rows.start, cols.start, transpose=False)
        row_max[rows] = torch.maximum(row_max[rows], d.amax(dim=1))
        if rows != cols:
            _fold(best_d, best_i, d, rows.start, cols.start, transpose=True)
            row_max[cols] = torch.maximum(row_max[cols], d.amax(dim=0))
    row_max.clamp_min_(torch.finfo(torch.float32).tiny)  # an all-zero row stays zero instead of NaN
    best_d /= row_max[:, None]  # d0, the same float32 division as the reference
    return best_i, best_d, row_max


def _fold(best_d: Tensor, best_i: Tensor, d: Tensor, row0: int, col0: int, *, transpose: bool) -> None:
    """Fold the tile ``d`` (r, c) into the running nearest lists: of items ``row0 + p`` over the
    candidates ``col0 + q`` (``transpose=False``), or of items ``col0 + q`` over ``row0 + p``.

    The candidate axis is consumed in pieces of ``_PIECE``. Only entries not above an item's current
    ``width``-th best distance can enter its list, so once the lists are filled a piece is screened
    with one comparison and only its few survivors are merged (a dense ``topk`` otherwise).
    """
    if transpose:  # pieces of d's rows (contiguous), items along d's columns
        items = slice(col0, col0 + d.shape[1])
        for p0 in range(0, d.shape[0], _PIECE):
            piece = d[p0 : p0 + _PIECE]  # (c', m)
            thresh = best_d[items, -1]  # (m,) current width-th best (inf while unfilled)
            if bool(torch.isinf(thresh).any()):
                _merge_dense(best_d, best_i, items, piece.T.contiguous(), row0 + p0)
                continue
            p, q = (piece <= thresh[None, :]).nonzero(as_tuple=True)  # (E,) each
            if p.shape[0]:
                q, order = q.sort(stable=True)
                _merge_sparse(best_d, best_i, col0, q, p[order] + (row0 + p0), piece[p[order], q])
        return
    items = slice(row0, row0 + d.shape[0])
    for q0 in range(0, d.shape[1], _PIECE):
        piece = d[:, q0 : q0 + _PIECE]  # (m, c')
        thresh = best_d[items, -1]  # (m,)
        if bool(torch.isinf(thresh).any()):
            _merge_dense(best_d, best_i, items, piece, col0 + q0)
            continue
        r, c = (piece <= thresh[:, None]).nonzero(as_tuple=True)  # (E,) each, sorted by item
        if r.shape[0]:
            _merge_sparse(best_d, best_i, row0, r, c + (col0 + q0), piece[r, c])


def _merge_dense(best_d: Tensor, best_i: Tensor, items: slice, d: Tensor, col0: int) -> None:
    """Fold the block ``d`` (m, c) of candidates ``col0 + j`` into the nearest lists of ``items``."""
    k = min(best_d.shape[1], d.shape[1])
    td, ti = d.topk(k, dim=1, largest=False, sorted=False)  # (m, k)
    cat_d = torch.cat([best_d[items], td], dim=1)  # (m, width + k)
    cat_i = torch.cat([best_i[items], ti + col0], dim=1)
    md, mi = cat_d.topk(best_d.shape[1], dim=1, largest=False, sorted=True)  # (m, width)
    best_d[items] = md
    best_i[items] = cat_i.gather(1, mi)


def _merge_sparse(best_d: Tensor, best_i: Tensor, item0: int, r: Tensor, cand: Tensor, val: Tensor) -> None:
    """Fold the entries (item ``item0 + r``, candidate ``cand``, value ``val``), sorted by ``r``."""
    act, inverse, counts = torch.unique_consecutive(r, return_inverse=True, return_counts=True)  # (A,)
    starts = counts.cumsum(0) - counts  # (A,)
    slot = torch.arange(r.shape[0], device=r.device) - starts[inverse]  # (E,) rank within its item
    width = int(counts.max())
    pad_d = torch.full((act.shape[0], width), float("inf"), dtype=best_d.dtype, device=best_d.device)
    pad_i = torch.zeros(act.shape[0], width, dtype=best_i.dtype, device=best_i.device)
    pad_d[inverse, slot] = val
    pad_i[inverse, slot] = cand
    rows = act + item0  # (A,)
    cat_d = torch.cat([best_d[rows], pad_d], dim=1)  # (A, width_best + width)
    cat_i = torch.cat([best_i[rows], pad_i], dim=1)
    md, mi = cat_d.topk(best_d.shape[1], dim=1, largest=False, sorted=True)
    best_d[rows] = md
    best_i[rows] = cat_i.gather(1, mi)


def _encode(left: Augmented, knn: Tensor, knn_d0: Tensor, row_max: Tensor, idx: Tensor, mask: Tensor) -> Tensor:
    """V (Eq. 10) in the padded layout of ``idx`` (N, M): Gaussian weights of d0 over R*(i, k1),
    each row summing to 1, 0 on padding.

    d0(i, j) is looked up among i's kept nearest items; the rare member beyond them is recomputed.
    """
    n = idx.shape[0]
    order = knn.argsort(dim=1)  # (N, width)
    sorted_knn = knn.gather(1, order)
    pos = torch.searchsorted(sorted_knn, idx).clamp_max_(knn.shape[1] - 1)  # (N, M)
    found = sorted_knn.gather(1, pos) == idx  # (N, M)
    d0 = knn_d0.gather(1, order.gather(1, pos))  # (N, M)
    missing = mask & ~found
    if bool(missing.any()):
        r = torch.arange(n, device=idx.device)[:, None].expand_as(idx)[missing]
        if isinstance(left, AugmentedRows):
            xc, sq = left.centred_rows, left.norms  # centred features and their squared norms
        else:
            xc, sq = left[:, :-2], left[:, -2]
        d0[missing] = pair_distances(xc, sq, r, idx[missing], squared=True, max_pairs=1 << 11) / row_max[r]
        logger.debug("k-reciprocal: %d of %d weights beyond the kept neighbours", len(r), int(mask.sum()))
    w = torch.where(mask, torch.exp(-d0), torch.zeros_like(d0))  # (N, M)
    return w / w.sum(dim=1, keepdim=True)


# (rows, cols, vals) of an (N, N) matrix, sorted by (row, column); rows and columns int32 when N < 2^31
# (12 instead of 20 bytes per entry: at MSMT17 size V holds ~9M entries), else int64
SparseRows = tuple[Tensor, Tensor, Tensor]


def _index_dtype(n: int) -> torch.dtype:
    """The dtype of V's row and column indices for N = ``n`` items."""
    return torch.int32 if n < 2**31 - 1 else torch.int64


def _query_expansion(idx: Tensor, vals: Tensor, mask: Tensor, neighbours: Tensor, chunk: int) -> SparseRows:
    """Eq. 11: row i of V becomes the mean of the rows of its first k2 ranked items (i included).

    Row-chunked merge of the k2 padded rows. Equal columns are summed in rank order, as the
    reference's ``np.mean(V[initial_rank[i, :k2]], axis=0)`` does, so chunking does not change a bit.
    Returns the entries sorted by (row, column): rows and columns int32 (int64 if N >= 2^31), values float32.
    """
    n, k2 = neighbours.shape
    index_dtype = _index_dtype(n)
    parts_r, parts_c, parts_v = [], [], []
    for s in range(0, n, chunk):
        nb = neighbours[s : s + chunk]  # (c, k2)
        keep = mask[nb].reshape(nb.shape[0], -1)  # (c, k2 M)
        local = torch.arange(nb.shape[0], device=idx.device)[:, None].expand_as(keep)[keep]  # (E,)
        key = local * n + idx[nb].reshape(keep.shape)[keep]  # (E,) row-major (row, column) key
        key, order = _stable_sort(key, nb.shape[0] * n)
        uniq, inverse = torch.unique_consecutive(key, return_inverse=True)  # (U,), (E,)
        summed = torch.zeros(uniq.shape[0], dtype=torch.float32, device=idx.device)
        summed.index_add_(0, inverse, vals[nb].reshape(keep.shape)[keep][order])  # (U,)
        parts_r.append((uniq // n + s).to(index_dtype))
        parts_c.append((uniq % n).to(index_dtype))
        parts_v.append(summed / k2)
    # Row chunks are disjoint and each is sorted, so the concatenation is sorted by (row, column).
    rows = torch.cat(parts_r)
    del parts_r
    cols = torch.cat(parts_c)
    del parts_c
    return rows, cols, torch.cat(parts_v)


def _stable_sort(key: Tensor, bound: int) -> tuple[Tensor, Tensor]:
    """``key.sort(stable=True)`` for int64 keys in [0, bound): through int32 (a faster radix sort) when they fit."""
    if bound > 2**31 - 1:
        return key.sort(stable=True)
    key, order = key.to(torch.int32).sort(stable=True)
    return key.to(torch.int64), order


class _JaccardRows:
    """Eq. 12-13 numerators ``s(q, g) = sum_c min(V[q, c], V[g, c])`` for any block of query rows,
    via an inverted index over V's gallery rows (CSC layout). Per cell the terms are added in the
    same order whatever the block, so blocks of any size give the same values."""

    def __init__(self, v: SparseRows, nq: int, n: int) -> None:
        self.nq, self.ng = nq, n - nq
        rows, cols, val = v  # sorted by row, then column; int32 indices when N < 2^31
        dev = rows.device
        e = int(torch.searchsorted(rows, torch.tensor(nq, device=dev, dtype=rows.dtype)))
        # the query rows' entries (copies: V itself is dropped by the caller)
        self.q_rows, q_cols, self.q_vals = rows[:e].long(), cols[:e].long(), val[:e].clone()
        self.q_ptr = torch.searchsorted(self.q_rows, torch.arange(nq + 1, device=dev)).cpu()  # (nq+1,)
        # Inverted index: the gallery rows holding each column, as a CSC layout, in V's index dtype
        # (int32 at MSMT17 size: ~8M gallery entries, 33 MB per copy)
        g_cols, order = cols[e:].sort(stable=True)
        self.g_rows = rows[e:][order].sub_(nq)
        self.g_vals = val[e:][order]
        del order
        col_ptr = torch.searchsorted(g_cols, torch.arange(n + 1, device=dev, dtype=g_cols.dtype)).long()  # (N+1,)
        del g_cols
        self.cnt = col_ptr[q_cols + 1] - col_ptr[q_cols]  # (e,) gallery partners of each query entry
        # Pair p of entry j reads CSC position first[j] + p; cumulative pair counts delimit the entries.
        self.first = col_ptr[q_cols] - (self.cnt.cumsum(0) - self.cnt)  # (e,)
        self.pairs_to = torch.cat([self.cnt.new_zeros(1), self.cnt.cumsum(0)])[self.q_ptr].cpu()  # (nq+1,)

    def rows(self, rows: slice) -> Tensor:
        """(len(rows), ng) float32 ``s`` of the queries ``rows``, in pieces of at most ``_PAIR_BUDGET`` pairs."""
        ng, device = self.ng, self.q_vals.device
        out = torch.zeros((rows.stop - rows.start) * ng, dtype=torch.float32, device=device)  # (c * ng,)
        a = rows.start
        while a < rows.stop:
            b = int(torch.searchsorted(self.pairs_to, self.pairs_to[a] + _PAIR_BUDGET, right=True)) - 1
            b = max(min(b, rows.stop), a + 1)
            ea, eb = int(self.q_ptr[a]), int(self.q_ptr[b])
            entry = torch.repeat_interleave(self.cnt[ea:eb])  # (P,) local query entry of each pair
            pos = torch.arange(int(self.pairs_to[a]), int(self.pairs_to[b]), device=device)
            pos += self.first[ea:eb].index_select(0, entry)  # (P,) CSC position of the pair's gallery entry
            row_base = (self.q_rows[ea:eb] - rows.start) * ng  # (E,)
            flat = row_base.index_select(0, entry).add_(self.g_rows.index_select(0, pos))  # (P,) into (c, ng)
            contrib = torch.minimum(self.q_vals[ea:eb].index_select(0, entry), self.g_vals.index_select(0, pos))
            out.index_add_(0, flat, contrib)
            a = b
        return out.view(rows.stop - rows.start, ng)
