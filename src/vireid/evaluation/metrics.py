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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vireid.evaluation.exclusion import Exclusion

logger = logging.getLogger(__name__)

CMC_MODES = ("identity", "image")
DISTANCES = ("euclidean", "cosine")
# Bytes of working memory per distance-matrix entry of a chunk (the distances, the exclusion mask
# of a block, the per-row histograms, headroom); the automatic chunk size keeps one chunk near
# _CHUNK_BUDGET bytes.
_BYTES_PER_ENTRY = 24
_CHUNK_BUDGET = 384 * 2**20
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


def _finish(dist: torch.Tensor, rows: slice, labels: _Labels, exclusion: Exclusion, squared: bool) -> None:
    """Turn ``dist`` into final distances in place: excluded entries at +inf, ``sqrt(max(d2, 0))``."""
    c, ng = dist.shape
    step = max(1, _BLOCK_ENTRIES // max(ng, 1))
    for b0 in range(0, c, step):
        b1 = min(b0 + step, c)
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
                acc: _Accumulator, check_finite: bool = True, squared: bool = False) -> None:
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
    """
    dist = dist.contiguous()  # flat (row * ng + column) indexing below
    c, ng = dist.shape
    device = dist.device
    if check_finite:
        _check_finite(dist, rows)
    acc.num_queries += c
    if labels.num_ids == 0 or c == 0:
        return
    if acc.top_k:  # the ranked list needs every entry's final distance: finish the chunk first
        _finish(dist, rows, labels, exclusion, squared)
        squared, exclusion = False, Exclusion.NONE
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
    match_raw = dist.gather(1, cols).masked_fill_(slot >= num_cols.unsqueeze(1), math.inf)  # (c, w)
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
            _finish(dist, rows, labels, exclusion, squared)
            acc.num_queries -= c
            _rank_chunk(dist, rows, labels, Exclusion.NONE, cmc_mode, acc, check_finite=False)
            return
    # per-row marks of the bins: those holding a kept match (their entries are the candidates)
    marked = torch.zeros(c, num_bins + 1, dtype=torch.bool, device=device)  # column num_bins: a sink
    marked.scatter_(1, torch.where(kept, match_bin, num_bins), True)
    marked = marked[:, :num_bins].contiguous()  # (c, num_bins)
    identity = cmc_mode == "identity"
    limit = torch.where(valid, match_bin[:, 0], 0).unsqueeze(1) if identity else None  # (c, 1) first match's bin
    seen = torch.zeros(c * labels.num_ids, dtype=torch.bool, device=device) if identity else None

    # exclusion, by the rule's shape: SYSU removes whole gallery columns (cam 2) from some rows
    # (cam-3 queries); same-id-same-camera removes only true matches, already found above
    excl_rows = excl_cols = None
    if exclusion is Exclusion.SYSU_SAME_LOCATION:
        excl_rows = (q_camids == 3).tolist()
        excl_cols = (labels.g_camids == 2).unsqueeze(0)  # (1, ng)
    elif exclusion is Exclusion.SAME_ID_SAME_CAMERA and excluded is not None:
        flat = _flatnonzero(excluded & (slot < num_cols.unsqueeze(1)))  # (e,) in the (c, w) layout
        hit = (flat // width) * ng + id_cols.reshape(-1).index_select(0, flat)  # (e,) row * ng + column
        dist.view(-1).index_fill_(0, hit, math.inf)
    elif exclusion is not Exclusion.NONE:
        raise AssertionError(f"unhandled exclusion {exclusion}")

    # one pass over the rows, block by block (in cache): exclusion, clamping, bins, histogram, the
    # entries in a marked bin (candidates), and the identities ranked wholly before the first match
    step = min(c, max(1, _BLOCK_ENTRIES // ng))
    scratch = torch.empty(step, ng, dtype=dist.dtype, device=device)  # buffers reused by every block
    bins_buf = torch.empty(step, ng, dtype=torch.int64, device=device)
    hit_buf = torch.empty(step, ng, dtype=torch.bool, device=device)
    # values <= 0 are all distance 0: they must share a bin. Where first * scale >= 1 every d <= 0 maps
    # to (d - first) * scale <= -first * scale <= -1 (monotone rounding), i.e. bin 0: no clamp needed
    clamp_rows = (first * scale < 1.0).tolist() if squared else None
    hist = torch.zeros(c, num_bins, dtype=torch.int32, device=device)  # int32: a faster scatter, counts < 2^31
    one = torch.ones(1, 1, dtype=torch.int32, device=device)
    cand_flat, cand_bin = [], []
    for b0 in range(0, c, step):
        b1 = min(b0 + step, c)
        block = dist[b0:b1]  # (r, ng)
        if excl_rows is not None:
            if all(excl_rows[b0:b1]):
                block.masked_fill_(excl_cols, math.inf)  # (r, ng) <- (1, ng)
            else:
                for i in range(b0, b1):
                    if excl_rows[i]:
                        dist[i].masked_fill_(excl_cols[0], math.inf)
        if squared and any(clamp_rows[b0:b1]):
            block.clamp_min_(0.0)  # every value <= 0 is distance 0 (elsewhere they all fall in bin 0)
        r = b1 - b0
        bins = _quantise(block, first[b0:b1], scale[b0:b1], nb, scratch[:r], bins_buf[:r])  # (r, ng)
        hist[b0:b1].scatter_add_(1, bins, one.expand(r, ng))
        flat = _flatnonzero(torch.gather(marked[b0:b1], 1, bins, out=hit_buf[:r]))  # (n_b,) row-major
        cand_flat.append(flat + b0 * ng)
        cand_bin.append(bins.view(-1).index_select(0, flat))
        if identity:
            flat = _flatnonzero(torch.lt(bins, limit[b0:b1], out=hit_buf[:r]))  # wholly before the first match
            who = labels.g_index.index_select(0, flat % ng) + (flat // ng + b0) * labels.num_ids
            seen.index_fill_(0, who, True)
    flat = torch.cat(cand_flat)  # (n,) ascending (row, column)
    cand_row, cand_col = flat // ng, flat % ng  # (n,)
    cand_key = torch.cat(cand_bin) + cand_row * num_bins  # (n,) (row, bin)
    del cand_flat, cand_bin
    below = hist.cumsum(1, dtype=torch.int64).sub_(hist)  # (c, num_bins) entries in lower bins
    del hist
    cand_d = dist.view(-1).index_select(0, flat)  # (n,)
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
    g_sq = (g * g).sum(dim=1) if distance == "euclidean" else None  # (ng,)
    # finite features this small cannot overflow a distance: skip the per-chunk finiteness pass
    bound = max(float(q.abs().max()) if q.numel() else 0.0, float(g.abs().max()) if g.numel() else 0.0)
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
    squared = distance == "euclidean"  # ranked as sqrt(max(d2, 0)), the root taken for the few that need it
    buf = torch.empty(min(step, nq), ng, dtype=q.dtype, device=q.device)  # one chunk, reused
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        dist = pairwise_distance(q[rows], g, distance, g_sq=g_sq, out=buf[: rows.stop - start],
                                 squared=squared)  # (c, ng)
        _rank_chunk(dist, rows, labels, exclusion, cmc_mode, acc, check_finite=check_finite, squared=squared)
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
    squared = distance == "euclidean"
    buf = torch.empty(min(step, nq), ng, dtype=q.dtype, device=q.device)  # one chunk, reused
    for start in range(0, nq, step):
        rows = slice(start, min(start + step, nq))
        dist = pairwise_distance(q[rows], g, distance, g_sq=g_sq, out=buf[: rows.stop - start],
                                 squared=squared)  # (c, ng) against the pool
        for lab, idx, acc in zip(labels, index, accs):
            part = dist.index_select(1, idx)  # (c, ng_t) owned copy, the trial's gallery order
            _rank_chunk(part, rows, lab, exclusion, cmc_mode, acc, check_finite=check_finite, squared=squared)
    return [acc.result(exclusion) for acc in accs]
