"""Per-chunk ranking behind :mod:`vireid.evaluation.metrics`: the ranks of the true matches of a chunk of
query rows, and the sums the metrics are made of.

Implementation: no row is sorted. Per chunk of query rows, the kept true matches of each query
(its identity's gallery columns, grouped by identity once per call) are gathered and sorted by
(distance, gallery index). Every row is quantised into fine bins by a per-row monotone map
spanning its first to last kept match, and a histogram per row counts the entries of every bin.
A true match's rank is the count of the bins below its own plus its position, by (distance,
gallery index), among the few entries sharing its bin (found with a gather and ``nonzero``,
sorted exactly), so ranks and tie handling equal those of the stable sort, at O(ng) per row.
The identity-level rank counts the distinct identities of the entries ranked before the first
match. No Python loop runs per query; the per-entry passes run over cache-sized blocks of rows;
memory is bounded by ``chunk_size`` query rows, and :func:`evaluate_features` never holds more
than one chunk of the distance matrix.

Euclidean features (issue 17: the evaluation within reach of its GEMM floor): each chunk is one
GEMM of inner products into a reused buffer; every block of rows forms its squared distances
``|q|^2 + |g|^2 - 2 q.g`` in cache (the same roundings as :func:`pairwise_distance`), applies the
exclusion, bins, counts and selects candidates in one fused pass; square roots are taken only for
the true matches and the candidates. Squared values whose roots could round to the same distance
(relative gap below 2^-51) either share a match's bin, where they are compared exactly, or make
the chunk fall back to its final distances first, so ties after the root keep gallery order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vireid.evaluation.exclusion import Exclusion

# Quantisation bins per query row: one per _ENTRIES_PER_BIN gallery entries, at most _MAX_BINS.
_ENTRIES_PER_BIN = 8
_MAX_BINS = 8192
# Distance entries per block of rows in the per-entry passes (about 2 MB per int64 buffer: cache-resident).
_BLOCK_ENTRIES = 262144


@dataclass(frozen=True)
class RankingResult:
    """Metrics of one query/gallery evaluation, as fractions in [0, 1].

    Attributes:
        cmc: (max_rank,) cumulative match characteristic; ``cmc[k - 1]`` is rank-k accuracy.
        mAP: mean average precision over valid queries.
        mINP: mean inverse negative penalty over valid queries.
        num_valid: queries with at least one true match left after exclusion.
        num_queries: all queries.
        ranked: (num_queries, top_k) gallery positions of each query's first ``top_k`` entries in
            ranking order (stable sort, the protocol's exclusion applied; -1 where fewer entries are
            left), when asked for with ``top_k`` > 0; else None.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_queries: int
    ranked: np.ndarray | None = None

    def rank(self, k: int) -> float:
        """Rank-k accuracy (1-based k)."""
        return float(self.cmc[k - 1])


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
        self.q_index = torch.as_tensor(q_index.astype(np.int64), device=device)
        self.g_index = torch.as_tensor(g_index.reshape(-1).astype(np.int64), device=device)
        # gallery columns grouped by identity, ascending within each identity: identity p holds
        # by_id[id_start[p]:id_start[p] + id_count[p]]
        counts = np.bincount(g_index.reshape(-1), minlength=len(ids))
        self.g_by_id = torch.as_tensor(np.argsort(g_index.reshape(-1), kind="stable"), device=device)
        self.id_count = torch.as_tensor(counts, device=device)
        self.id_start = torch.as_tensor(np.cumsum(counts) - counts, device=device)


class _Accumulator:
    """Sums over valid queries, chunk by chunk.

    The per-query AP and INP values are kept (8 bytes each per query) and summed once at the end
    with ``math.fsum`` (correctly rounded), so the metrics do not depend on how the queries were
    chunked: a streamed evaluation equals the unstreamed one bit for bit.
    """

    def __init__(self, max_rank: int, top_k: int = 0) -> None:
        self.top_k = top_k
        self.ranked: list[np.ndarray] = []
        self.first_rank_counts = np.zeros(max_rank, dtype=np.int64)
        self.ap_parts: list[np.ndarray] = []
        self.inp_parts: list[np.ndarray] = []
        self.num_valid = 0
        self.num_queries = 0
        self.max_rank = max_rank

    def result(self, exclusion: Exclusion) -> RankingResult:
        if self.num_valid == 0:
            raise ValueError(f"none of the {self.num_queries} queries has a true match in the gallery "
                             f"after exclusion {exclusion.value!r}; check the query/gallery identities")
        cmc = np.cumsum(self.first_rank_counts) / self.num_valid
        ap_sum = math.fsum(np.concatenate(self.ap_parts).tolist()) if self.ap_parts else 0.0
        inp_sum = math.fsum(np.concatenate(self.inp_parts).tolist()) if self.inp_parts else 0.0
        ranked = np.concatenate(self.ranked) if self.top_k else None
        return RankingResult(cmc=cmc.astype(np.float64), mAP=ap_sum / self.num_valid,
                             mINP=inp_sum / self.num_valid, num_valid=self.num_valid,
                             num_queries=self.num_queries, ranked=ranked)


def _num_bins(ng: int) -> int:
    return int(min(_MAX_BINS, max(16, ng // _ENTRIES_PER_BIN)))


def _check_finite(dist: torch.Tensor, rows: slice) -> None:
    if bool(torch.isfinite(dist.sum())):  # NaN and inf propagate into the sum: one cheap reduction
        return
    finite = torch.isfinite(dist)  # (c, ng)
    if not bool(finite.all()):
        bad = (~finite).nonzero()[0].tolist()
        raise ValueError(f"distance matrix has a non-finite entry at query {rows.start + bad[0]}, "
                         f"gallery {bad[1]}")


def _quantise(d: torch.Tensor, first: torch.Tensor, scale: torch.Tensor, nb: int,
              scratch: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Bins 0..nb+2 of ``d`` (r, n): ``trunc(clamp((d - first) * scale, -1, nb + 1) + 1)`` per row.

    Monotone non-decreasing in ``d`` within a row (each step rounds monotonically, ``scale`` > 0),
    so a smaller bin means a smaller distance and equal distances share a bin; ``first`` lands in
    bin 1, smaller values in bin 0, +inf in bin nb + 2. Separate correctly rounded elementwise
    kernels (no fused multiply-add): a value gets the same bin in whatever tensor it is quantised.
    ``scratch`` (float, like ``d``) and ``out`` (int64): optional reused buffers of ``d``'s shape.
    """
    scaled = torch.sub(d, first.unsqueeze(1), out=scratch).mul_(scale.unsqueeze(1))  # (r, n)
    scaled.clamp_(-1.0, nb + 1.0).add_(1.0)
    if out is None:
        return scaled.to(torch.int64)  # truncation: monotone
    return out.copy_(scaled)  # the same truncation, into a reused buffer


def _flatnonzero(mask: torch.Tensor) -> torch.Tensor:
    """Row-major flat positions (int64) of the True entries of a boolean tensor. On the CPU through
    ``np.flatnonzero`` (several times faster than ``torch.nonzero`` there)."""
    if mask.device.type != "cpu":
        return mask.reshape(-1).nonzero().squeeze(1)
    return torch.from_numpy(np.flatnonzero(mask.numpy()))


Norms = tuple[torch.Tensor, torch.Tensor]  # (c,) squared query norms, (ng,) squared gallery norms


def _squared(dot: torch.Tensor, norms: Norms, out: torch.Tensor | None = None) -> torch.Tensor:
    """``|q|^2 + |g|^2 - 2 q.g`` from the inner products ``dot`` and the two norms (broadcast
    against ``dot``): the same two roundings as ``pairwise_distance`` (the factor -2 is exact), so
    a value is the same whether computed for a block, a gathered set of pairs or a whole chunk."""
    return torch.add(norms[0], norms[1], out=out).add_(dot, alpha=-2.0)


def _finish(dist: torch.Tensor, rows: slice, labels: _Labels, exclusion: Exclusion, squared: bool,
            norms: Norms | None = None) -> None:
    """Turn ``dist`` into final distances in place: excluded entries at +inf, ``sqrt(max(d2, 0))``
    (``norms``: ``dist`` holds inner products, first turned into squared distances)."""
    c, ng = dist.shape
    step = max(1, _BLOCK_ENTRIES // max(ng, 1))
    for b0 in range(0, c, step):
        b1 = min(b0 + step, c)
        if norms is not None:
            dist[b0:b1].copy_(_squared(dist[b0:b1], (norms[0][b0:b1].unsqueeze(1), norms[1])))
        q = slice(rows.start + b0, rows.start + b1)
        excluded = exclusion.mask(labels.q_pids[q], labels.q_camids[q], labels.g_pids, labels.g_camids)
        if excluded is not None:
            dist[b0:b1].masked_fill_(excluded, math.inf)  # excluded entries rank after every kept one
        if squared:
            dist[b0:b1].clamp_min_(0.0).sqrt_()


def _top_k(dist: torch.Tensor, k: int) -> np.ndarray:
    """(c, ng) distances, excluded entries at +inf -> (c, k) gallery positions in ranking order, -1 if excluded.

    The order is the one the metrics count with (ascending distance, ties by gallery index).
    """
    k_eff = min(k, dist.shape[1])
    d, order = torch.sort(dist, dim=1, stable=True)  # (c, ng)
    top = torch.where(torch.isfinite(d[:, :k_eff]), order[:, :k_eff], -1)  # (c, k_eff)
    out = np.full((dist.shape[0], k), -1, dtype=np.int64)
    out[:, :k_eff] = top.cpu().numpy()
    return out


def _rank_chunk(dist: torch.Tensor, rows: slice, labels: _Labels, exclusion: Exclusion, cmc_mode: str,
                acc: _Accumulator, check_finite: bool = True, squared: bool = False,
                norms: Norms | None = None) -> None:
    """Add one chunk of query rows to ``acc``. ``dist`` (c, ng) is owned and may be overwritten.

    The 0-based rank of a kept entry is the number of kept entries before it in the stable
    order, i.e. with a smaller (distance, gallery index); excluded entries are set to +inf and
    rank after every kept one. Only the true matches' ranks are computed (module docstring); the
    (c, ng) passes (exclusion, clamping, binning, histogram, candidates) run fused over blocks of
    rows small enough to stay in cache.

    ``squared``: ``dist`` holds squared euclidean distances ``d2`` and the ranked distance is
    ``sqrt(max(d2, 0))``; the root is taken only for the true matches and the candidates. Bins are
    monotone in ``max(d2, 0)``; two values whose roots round to the same distance lie within
    2^-51 of each other (relative), so when every kept match's ``[v (1 - 2^-48), v (1 + 2^-48)]``
    falls in its own bin, entries of other bins cannot tie with it after the root and the ranks
    equal those of the final distances; otherwise (rare) the chunk is finished first.

    ``norms`` ((c,), (ng,) squared norms; implies ``squared``): ``dist`` holds the inner products
    q.g and each block's squared distances are formed in cache (:func:`_squared`), so the chunk is
    never written a second time.
    """
    dist = dist.contiguous()  # flat (row * ng + column) indexing below
    c, ng = dist.shape
    device = dist.device
    if check_finite:
        _check_finite(dist, rows)
    acc.num_queries += c
    if labels.num_ids == 0 or c == 0:
        return
    squared = squared or norms is not None
    if acc.top_k:  # the ranked list needs every entry's final distance: finish the chunk first
        _finish(dist, rows, labels, exclusion, squared, norms)
        squared, exclusion, norms = False, Exclusion.NONE, None
        acc.ranked.append(_top_k(dist, acc.top_k))
    q_pids, q_camids = labels.q_pids[rows], labels.q_camids[rows]  # (c,)

    # the true matches of every row, sorted by (distance, gallery index): the kept ones first
    q_index = labels.q_index[rows]  # (c,)
    ids = q_index.clamp(min=0)  # (c,)
    num_cols = torch.where(q_index >= 0, labels.id_count[ids], 0)  # (c,) gallery columns of the identity
    width = int(num_cols.max())
    if width == 0:
        return
    slot = torch.arange(width, device=device)  # (w,)
    cols = labels.g_by_id[(labels.id_start[ids].unsqueeze(1) + slot).clamp(max=ng - 1)]  # (c, w) ascending
    match_raw = dist.gather(1, cols)  # (c, w)
    if norms is not None:
        match_raw = _squared(match_raw, (norms[0].unsqueeze(1), norms[1][cols]))
    match_raw.masked_fill_(slot >= num_cols.unsqueeze(1), math.inf)
    excluded = exclusion.pair_mask(q_pids.unsqueeze(1), q_camids.unsqueeze(1), labels.g_pids[cols],
                                   labels.g_camids[cols])  # (c, w) or None
    if excluded is not None:
        match_raw.masked_fill_(excluded, math.inf)
    if squared:
        match_raw.clamp_min_(0.0)
    match_d = match_raw.sqrt() if squared else match_raw  # (c, w) the ranked distances
    match_d, order = torch.sort(match_d, dim=1, stable=True)  # ties keep the ascending gallery index
    id_cols, cols = cols, cols.gather(1, order)  # (c, w) by gallery index, by distance
    match_raw = match_raw.gather(1, order)  # (c, w)
    num_kept = torch.isfinite(match_d).sum(dim=1)  # (c,) true matches left after exclusion
    valid = num_kept > 0  # (c,)
    if not bool(valid.any()):
        return
    kept = slot.unsqueeze(0) < num_kept.unsqueeze(1)  # (c, w)

    # per-row bins spanning the first to the last kept match (entries below share bin 0, entries
    # above the last match and the excluded ones bin nb + 2)
    nb = _num_bins(ng)
    num_bins = nb + 3  # bins 0 .. nb + 2
    first = torch.where(valid, match_raw.masked_fill(~kept, math.inf).amin(dim=1), 0.0)  # (c,)
    last = torch.where(valid, match_raw.masked_fill(~kept, -math.inf).amax(dim=1), 0.0)  # (c,)
    span = last - first  # (c,)
    span = torch.where(span > 0, span, first.abs())  # one kept match, or all at one distance: any scale
    span = torch.where(span > 0, span, 1.0)
    scale = ((nb - 1.0) / span).clamp(max=torch.finfo(dist.dtype).max)  # (c,) finite, > 0
    first = first - 0.5 / scale  # (c,) the first kept match mid-bin 1, the last mid-bin nb: off the edges
    match_bin = _quantise(match_raw, first, scale, nb)  # (c, w)
    if squared:
        near = torch.where(kept, match_raw, 0.0).mul_(2.0**-48).add_(2.0**-1000)  # (c, w) covers root ties
        spill = (_quantise(match_raw - near, first, scale, nb) != match_bin) | \
            (_quantise(match_raw + near, first, scale, nb) != match_bin)  # (c, w)
        if bool((spill & kept).any()):  # a value tying with a match after the root may lie in another bin
            _finish(dist, rows, labels, exclusion, squared, norms)
            acc.num_queries -= c
            _rank_chunk(dist, rows, labels, Exclusion.NONE, cmc_mode, acc, check_finite=False)
            return
    # per-row codes of the bins: 1 holds a kept match (its entries are the candidates), 2 lies wholly
    # before the first match (identity-level CMC: the identities ranked before the query's own)
    code = torch.zeros(c, num_bins + 1, dtype=torch.uint8, device=device)  # column num_bins: a sink
    identity = cmc_mode == "identity"
    if identity:
        limit = torch.where(valid, match_bin[:, 0], 0).unsqueeze(1)  # (c, 1) the first match's bin
        code.masked_fill_(torch.arange(num_bins + 1, device=device).unsqueeze(0) < limit, 2)
    code.scatter_(1, torch.where(kept, match_bin, num_bins), 1)
    code = code[:, :num_bins].contiguous()  # (c, num_bins)
    seen = torch.zeros(c * labels.num_ids, dtype=torch.bool, device=device) if identity else None

    # exclusion, by the rule's shape: SYSU removes whole gallery columns (cam 2) from some rows
    # (cam-3 queries); same-id-same-camera removes only true matches, already found above
    excl_rows = excl_cols = hit = None
    if exclusion is Exclusion.SYSU_SAME_LOCATION:
        excl_rows = (q_camids == 3).tolist()
        excl_cols = _flatnonzero(labels.g_camids == 2).to(device)  # (n2,) the cam-2 columns
    elif exclusion is Exclusion.SAME_ID_SAME_CAMERA and excluded is not None:
        flat = _flatnonzero(excluded & (slot < num_cols.unsqueeze(1))).to(device)  # (e,) in the (c, w) layout
        hit, _ = torch.sort((flat // width) * ng + id_cols.reshape(-1).index_select(0, flat))  # (e,) row * ng + col
    elif exclusion is not Exclusion.NONE:
        raise AssertionError(f"unhandled exclusion {exclusion}")

    # one pass over the rows, block by block (in cache): exclusion, clamping, bins, histogram, the
    # entries in a marked bin (candidates), and the identities ranked wholly before the first match
    step = min(c, max(1, _BLOCK_ENTRIES // ng))
    scratch = torch.empty(step, ng, dtype=dist.dtype, device=device)  # buffers reused by every block
    bins32 = torch.empty(step, ng, dtype=torch.int32, device=device)
    bins_buf = torch.empty(step, ng, dtype=torch.int64, device=device)
    code_buf = torch.empty(step, ng, dtype=torch.uint8, device=device)
    hit_buf = torch.empty(step, ng, dtype=torch.bool, device=device)
    # values <= 0 are all distance 0: they must share a bin. Where first * scale >= 1 every d <= 0 maps
    # to (d - first) * scale <= -first * scale <= -1 (monotone rounding), i.e. bin 0: no clamp needed
    clamp_rows = (first * scale < 1.0).tolist() if squared else None
    hist = torch.zeros(c, num_bins, dtype=torch.int32, device=device)  # int32: a faster scatter, counts < 2^31
    one = torch.ones(1, 1, dtype=torch.int32, device=device)
    cand_flat, cand_bin = [], []
    for b0 in range(0, c, step):
        b1 = min(b0 + step, c)
        r = b1 - b0
        if norms is not None:  # the squared distances of the block, in cache
            vals = _squared(dist[b0:b1], (norms[0][b0:b1].unsqueeze(1), norms[1]), out=scratch[:r])  # (r, ng)
        else:
            vals = dist[b0:b1]  # (r, ng)
        if excl_rows is not None:  # excluded entries rank after every kept one
            if all(excl_rows[b0:b1]):
                vals.index_fill_(1, excl_cols, math.inf)
            else:
                for i in range(b0, b1):
                    if excl_rows[i]:
                        vals[i - b0].index_fill_(0, excl_cols, math.inf)
        elif hit is not None:
            lo, hi = torch.searchsorted(hit, torch.tensor([b0 * ng, b1 * ng], device=device)).tolist()
            vals.view(-1).index_fill_(0, hit[lo:hi] - b0 * ng, math.inf)
        if squared and any(clamp_rows[b0:b1]):
            vals.clamp_min_(0.0)  # every value <= 0 is distance 0 (elsewhere they all fall in bin 0)
        scaled = torch.sub(vals, first[b0:b1].unsqueeze(1), out=scratch[:r]).mul_(scale[b0:b1].unsqueeze(1))
        scaled.clamp_(-1.0, nb + 1.0).add_(1.0)  # as _quantise, in place
        bins = bins_buf[:r].copy_(bins32[:r].copy_(scaled))  # (r, ng) truncation (via int32: faster)
        hist[b0:b1].scatter_add_(1, bins, one.expand(r, ng))
        sel = torch.gather(code[b0:b1], 1, bins, out=code_buf[:r])  # (r, ng)
        # uint8 -> bool cast (nonzero -> True): on the CPU ~40x faster than ``torch.ne(sel, 0)``, same mask
        flat = _flatnonzero(hit_buf[:r].copy_(sel))  # (n_b,) row-major in the block
        kind = sel.view(-1).index_select(0, flat)  # (n_b,) 1 candidate, 2 before the first match
        if identity:
            before = flat[kind == 2]
            who = labels.g_index.index_select(0, before % ng) + (before // ng + b0) * labels.num_ids
            seen.index_fill_(0, who, True)
            flat = flat[kind == 1]
        cand_flat.append(flat + b0 * ng)
        cand_bin.append(bins.view(-1).index_select(0, flat))
    flat = torch.cat(cand_flat)  # (n,) ascending (row, column)
    cand_row, cand_col = flat // ng, flat % ng  # (n,)
    cand_key = torch.cat(cand_bin) + cand_row * num_bins  # (n,) (row, bin)
    del cand_flat, cand_bin
    below = hist.cumsum(1, dtype=torch.int32).sub_(hist)  # (c, num_bins) entries in lower bins
    del hist
    cand_d = dist.view(-1).index_select(0, flat)  # (n,)
    if norms is not None:
        cand_d = _squared(cand_d, (norms[0][cand_row], norms[1][cand_col]))
    cand_excl = exclusion.pair_mask(q_pids[cand_row], q_camids[cand_row], labels.g_pids[cand_col],
                                    labels.g_camids[cand_col])  # (n,) or None
    if cand_excl is not None:  # (a candidate shares an excluded entry's bin only in degenerate rows)
        cand_d.masked_fill_(cand_excl, math.inf)
    if squared:
        cand_d = cand_d.clamp_min_(0.0).sqrt_()
    seen = seen.view(c, labels.num_ids) if identity else None

    # candidates sorted by (row, bin, distance, gallery index): the stable order inside each bin
    perm = torch.sort(cand_d, stable=True).indices  # (n,) ties: (row, column) order
    perm = perm[torch.sort(cand_key[perm], stable=True).indices]  # (n,)
    sorted_key = cand_key[perm]  # (n,) ascending
    position = torch.empty_like(perm)
    position[perm] = torch.arange(perm.numel(), device=device)  # (n,) candidate -> sorted position

    # rank of every kept match: entries in lower bins + entries before it in its own bin
    m_row, m_slot = kept.nonzero(as_tuple=True)  # (M,) row-major: slots ascend per row
    m_key = match_bin[m_row, m_slot] + m_row * num_bins  # (M,)
    m_lin = m_row * ng + cols[m_row, m_slot]  # (M,)
    cand_lin = cand_row * ng + cand_col  # (n,) ascending
    m_cand = torch.searchsorted(cand_lin, m_lin).clamp(max=max(cand_lin.numel() - 1, 0))  # (M,)
    if not bool((cand_lin[m_cand] == m_lin).all()):
        raise RuntimeError("internal error: a true match is missing from its own bin")
    m_pos = position[m_cand]  # (M,) sorted position of the match itself
    group_start = torch.searchsorted(sorted_key, m_key)  # (M,) first sorted candidate of its bin
    rank = below.view(-1)[m_key] + (m_pos - group_start)  # (M,) 0-based
    precision = (m_slot + 1).to(torch.float64) / (rank + 1).to(torch.float64)  # (M,)
    ap = torch.zeros(c, dtype=torch.float64, device=device).index_add_(0, m_row, precision)  # (c,)
    rank_of = torch.zeros(c, width, dtype=torch.int64, device=device)
    rank_of[m_row, m_slot] = rank  # (c, w)
    g_count = num_kept[valid].to(torch.float64)  # (v,)
    first_rank = rank_of[valid, 0]  # (v,) images before the first true match
    last_rank = rank_of[valid, num_kept[valid] - 1]  # (v,) the hardest true match
    ap_valid = ap[valid] / g_count  # (v,)
    inp_valid = g_count / (last_rank + 1).to(torch.float64)  # (v,)
    if identity:
        # add the identities of the entries before the first match inside its bin
        is_first = m_slot == 0
        first_pos = torch.zeros(c, dtype=torch.int64, device=device)
        first_group = torch.zeros(c, dtype=torch.int64, device=device)
        first_pos[m_row[is_first]] = m_pos[is_first]
        first_group[m_row[is_first]] = group_start[is_first]
        sorted_row = cand_row[perm]  # (n,)
        at = torch.arange(perm.numel(), device=device)  # (n,)
        tied = (at >= first_group[sorted_row]) & (at < first_pos[sorted_row])  # (n,)
        seen[sorted_row[tied], labels.g_index[cand_col[perm[tied]]]] = True
        first_rank = seen[valid].sum(dim=1)  # (v,) distinct identities before the query's
    first_rank = first_rank.clamp(max=acc.max_rank)  # rank >= max_rank lands in an overflow bin
    counts = torch.bincount(first_rank, minlength=acc.max_rank + 1)[: acc.max_rank]  # (max_rank,)
    acc.first_rank_counts += counts.cpu().numpy()
    acc.ap_parts.append(ap_valid.cpu().numpy())
    acc.inp_parts.append(inp_valid.cpu().numpy())
    acc.num_valid += int(valid.sum())
