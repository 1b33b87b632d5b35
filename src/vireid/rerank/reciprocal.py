"""k-reciprocal nearest-neighbour sets R(p, k) and their expansion R*(p, k).

Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017, Eq. 3-7,
with the semantics of the public reference code (``re_ranking`` in zhunzhong07/person-re-ranking):

- ``N(p, k)``: the first ``k + 1`` items of p's ranking (p itself plus its k nearest neighbours).
- ``R(p, k) = {g in N(p, k) : p in N(g, k)}`` (contains p).
- ``R*(p, k) = R(p, k) ∪ R(c, round(k/2))`` for every ``c in R(p, k)`` with
  ``|R(c, round(k/2)) ∩ R(p, k)| > 2/3 |R(c, round(k/2))|``. The code uses a strict ``>``
  (the paper's Eq. 7 writes ``≥``; we follow the code, ``strict=False`` gives the paper), and
  ``round`` is numpy's half-to-even ``np.around`` (k = 5 -> 2, k = 7 -> 4).

SIM (seeds/002 §5, Eq. 7) reuses the same sets inside the gallery.

Everything works on a neighbour table ``knn`` (n, >= k + 1) of row-wise ascending ranks, so the
(n, n) distance matrix is never sorted in full; sets are padded index tensors with a validity mask.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vireid.errors import FeaturesError
from vireid.rerank._distance import check_int

_BUDGET = 1 << 20  # elements of the largest temporary per chunk


def half_k(k: int) -> int:
    """``int(np.around(k / 2))``: the neighbourhood size of the expansion sets (half to even)."""
    return int(np.around(k / 2.0))


def knn_from_distances(dist: Tensor, k: int, *, chunk_size: int = 1024) -> Tensor:
    """The ``k`` nearest columns of each row of ``dist`` (n, m), nearest first: (n, min(k, m)) int64.

    Uses ``torch.topk`` per chunk of rows instead of a full argsort. Exact ties are broken
    arbitrarily, as ``np.argsort`` does in the reference.
    """
    k = min(k, dist.shape[1])
    out = torch.empty(dist.shape[0], k, dtype=torch.long, device=dist.device)  # (n, k)
    for s in range(0, dist.shape[0], chunk_size):
        out[s : s + chunk_size] = dist[s : s + chunk_size].topk(k, dim=1, largest=False, sorted=True).indices
    return out


def reciprocal_mask(knn: Tensor, k: int) -> Tensor:
    """Membership of ``R(p, k)`` as a mask over ``knn[:, :k + 1]``: (n, k + 1) bool.

    ``mask[p, r]`` is True iff ``g = knn[p, r]`` has p among its own first ``k + 1`` items.
    """
    fwd = knn[:, : k + 1]  # (n, k+1)
    n, width = fwd.shape
    own = torch.arange(n, device=knn.device)
    mask = torch.empty(n, width, dtype=torch.bool, device=knn.device)
    step = max(1, _BUDGET // (width * width))
    for s in range(0, n, step):
        back = fwd[fwd[s : s + step]]  # (c, k+1, k+1): the neighbour lists of p's neighbours
        mask[s : s + step] = (back == own[s : s + step, None, None]).any(dim=2)
    return mask


def _sorted_unique_rows(idx: Tensor, valid: Tensor, sentinel: int) -> tuple[Tensor, Tensor]:
    """Per row: the distinct valid values of ``idx`` (c, L), ascending and left-aligned, + mask."""
    vals = torch.where(valid, idx, torch.full_like(idx, sentinel)).sort(dim=1).values  # (c, L)
    keep = vals != sentinel  # (c, L)
    keep[:, 1:] &= vals[:, 1:] != vals[:, :-1]  # first of each run of equal values
    slot = keep.cumsum(dim=1) - 1  # (c, L) left-aligned position of each kept value
    width = max(1, int(slot[:, -1].max()) + 1) if vals.shape[1] else 1
    out = torch.full((vals.shape[0], width + 1), sentinel, dtype=vals.dtype, device=vals.device)
    out.scatter_(1, torch.where(keep, slot, width), vals)  # dropped values land in the spare column
    out = out[:, :width]
    return out, out != sentinel


def expanded_reciprocal_sets(knn: Tensor, k: int, *, strict: bool = True) -> tuple[Tensor, Tensor]:
    """``R*(p, k)`` for every row p of ``knn`` (n, >= k + 1): padded (n, M) int64 indices + mask.

    Each row holds its distinct members in ascending index order; padding entries are masked out.
    """
    k = check_int("k", k, 1)
    kh = half_k(k)
    n = knn.shape[0]
    fwd = knn[:, : k + 1]  # (n, k+1)
    half = knn[:, : kh + 1]  # (n, kh+1)
    m_full = reciprocal_mask(knn, k)  # (n, k+1)
    m_half = reciprocal_mask(knn, kh)  # (n, kh+1)
    w, wh = fwd.shape[1], half.shape[1]
    chunks_idx, chunks_mask, widths = [], [], []
    step = max(1, _BUDGET // (w * wh * 4))
    for s in range(0, n, step):
        f, mf = fwd[s : s + step], m_full[s : s + step]  # (c, k+1)
        c = f.shape[0]
        # R(p, k) as a sorted row with sentinel n, for membership tests by binary search.
        r_sorted = torch.where(mf, f, torch.full_like(f, n)).sort(dim=1).values  # (c, k+1)
        cand_sets = half[f]  # (c, k+1, kh+1): R(c, kh) candidates of each member c
        cand_mask = m_half[f] & mf[:, :, None]  # (c, k+1, kh+1)
        flat = cand_sets.reshape(c, w * wh)  # (c, (k+1)(kh+1))
        pos = torch.searchsorted(r_sorted, flat).clamp_max_(w - 1)  # (c, (k+1)(kh+1))
        in_r = (r_sorted.gather(1, pos) == flat).reshape(c, w, wh)  # (c, k+1, kh+1)
        inter = (in_r & cand_mask).sum(dim=2).to(torch.float64)  # (c, k+1)
        size = cand_mask.sum(dim=2).to(torch.float64)  # (c, k+1)
        # Same float64 arithmetic as the reference: len(inter) > 2./3 * len(cand).
        bound = (2.0 / 3.0) * size
        accept = (inter > bound) if strict else (inter >= bound)  # (c, k+1)
        accept &= mf
        members = torch.cat([f, flat], dim=1)  # (c, (k+1)(kh+2))
        valid = torch.cat([mf, (cand_mask & accept[:, :, None]).reshape(c, w * wh)], dim=1)
        idx, mask = _sorted_unique_rows(members, valid, n)
        chunks_idx.append(idx)
        chunks_mask.append(mask)
        widths.append(idx.shape[1])
    width = max(widths)
    out_idx = torch.zeros(n, width, dtype=torch.long, device=knn.device)  # (n, M)
    out_mask = torch.zeros(n, width, dtype=torch.bool, device=knn.device)  # (n, M)
    s = 0
    for idx, mask in zip(chunks_idx, chunks_mask):
        out_idx[s : s + idx.shape[0], : idx.shape[1]] = torch.where(mask, idx, 0)
        out_mask[s : s + idx.shape[0], : idx.shape[1]] = mask
        s += idx.shape[0]
    return out_idx, out_mask


def k_reciprocal_sets(
    dist: Tensor | np.ndarray, k: int, *, expand: bool = True, strict: bool = True, chunk_size: int = 1024
) -> list[np.ndarray]:
    """R*(p, k) (or R(p, k) with ``expand=False``) of every row of a square distance matrix.

    Zhong et al. CVPR 2017 Eq. 3-7; reused by SIM (seeds/002 §5, Eq. 7) within the gallery.

    Args:
        dist: (n, n) distances, row p ranking every item from p (``dist[p, p]`` should be the smallest).
        k: neighbourhood size; ``N(p, k)`` holds the first ``k + 1`` items of p's ranking.
        expand: apply the 2/3 expansion rule (R*); else return the plain reciprocal set R.
        strict: the reference code's ``>`` in the 2/3 rule (default); False gives the paper's ``>=``.
        chunk_size: rows per ``topk`` call.

    Returns:
        n sorted int64 arrays of member indices (each contains p itself when p ranks first).
    """
    d = torch.as_tensor(dist)
    if d.dim() != 2 or d.shape[0] != d.shape[1]:
        raise FeaturesError(f"k_reciprocal_sets: expected a square (n, n) distance matrix, got {tuple(d.shape)}")
    k = check_int("k", k, 1)
    knn = knn_from_distances(d, k + 1, chunk_size=chunk_size)  # (n, k+1)
    if expand:
        idx, mask = expanded_reciprocal_sets(knn, k, strict=strict)
    else:
        w = knn[:, : k + 1]
        mask = reciprocal_mask(knn, k)
        idx = torch.where(mask, w, torch.full_like(w, d.shape[0])).sort(dim=1).values
        mask = idx < d.shape[0]
    idx_np, mask_np = idx.cpu().numpy(), mask.cpu().numpy()
    return [row[m] for row, m in zip(idx_np, mask_np)]
