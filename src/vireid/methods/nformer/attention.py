"""NFormer's attention: landmark agent attention (LAA) and reciprocal neighbour softmax (RNS).

Wang et al., "NFormer: Robust Person Re-identification with Neighbor Transformer", CVPR 2022
(seeds/001 §3.2-3.3; METHODS.md §8).

* LAA (seeds/001 §3.2): with m landmark rows ``Z_m`` of the input, ``q~ = Q k_m^T`` and
  ``k~ = K q_m^T`` (each (N, m)) and ``A~ = q~ k~^T / sqrt(d)``, an (N, N) affinity at cost O(N^2 m).
* RNS (§3.3): ``M^k_ij = 1[j in topk(A~_i,:)]``, ``M = M^k * (M^k)^T`` (element-wise, METHODS.md),
  ``M_ii = 1``, ``RNS = softmax over the entries with M = 1`` (the masked ordinary softmax, exp(+A~),
  as the original paper and code; the seed's exp(-A~) is a typo, METHODS.md "Ambiguities").

Everything here works on sparse neighbour lists, never on an (N, N) matrix: the top-k is taken
over row chunks of ``A~`` (``chunk_size`` rows at a time: O(chunk * N) memory), the reciprocity
check is a sorted-key lookup over the (N, k) lists, and the softmax and aggregation gather the
k + 1 candidates of each row. The same code trains on a batch and refines a 10,000-image test set;
``tests/methods/nformer`` checks it against a dense (N, N) implementation.

Public code (haochenheheda/NFormer ``modeling/nformer.py``, read to confirm the reading):
LAA is the same two-factor product (landmarks drawn at random on every call, shared by the heads;
scale 1/sqrt(head dim)); the top-k there is taken ONCE from the cosine similarity of the NFormer
input and reused by every block, then made reciprocal with ``mask * mask^T`` (so reciprocal, not
the plain top-k METHODS.md mentions), with its top-k always holding the row itself (cos = 1).
We follow the paper by default (``neighbours="affinity"``: top-k of each block's own ``A~`` per
head, ``M_ii = 1`` set explicitly) and offer the code's reading as ``neighbours="input"``.

``cross_modal_quota`` (ours, METHODS.md §8): of the k neighbours of a row, ``quota`` are the top
entries among the rows of the *other* modality and ``k - quota`` the top entries over all rows
(the union; a neighbour found by both counts once). ``quota = 0`` is the plain top-k.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["landmark_factors", "neighbour_lists", "reciprocal_candidates", "rns_aggregate"]


def landmark_factors(q: torch.Tensor, k: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LAA's two factors ``q~ = Q k_m^T`` and ``k~ = K q_m^T`` (seeds/001 §3.2).

    Args:
        q, k: (h, N, dh) per-head queries and keys. landmarks: (m,) row indices of ``Z_m``.
    Returns:
        ``(q~, k~)``, each (h, N, m); ``A~ = q~ @ k~^T / sqrt(dh)``.
    """
    q_m = q[:, landmarks]  # (h, m, dh)
    k_m = k[:, landmarks]  # (h, m, dh)
    return q @ k_m.transpose(1, 2), k @ q_m.transpose(1, 2)  # (h, N, m) each


def _topk_rows(scores: torch.Tensor, k: int, other: torch.Tensor | None, quota: int) -> torch.Tensor:
    """(h, c, N) scores -> (h, c, k) column indices: top ``k - quota`` overall plus top ``quota``
    among the columns where ``other`` (c, N) is True (rows with fewer such columns repeat their
    best overall column, which the caller drops as a duplicate)."""
    parts = []
    if k - quota > 0:
        parts.append(scores.topk(k - quota, dim=-1).indices)  # (h, c, k - quota)
    if quota > 0 and other is not None:
        masked = scores.masked_fill(~other[None], float("-inf"))  # (h, c, N)
        vals, idx = masked.topk(quota, dim=-1)  # (h, c, quota)
        best = scores.argmax(dim=-1, keepdim=True).expand_as(idx)  # (h, c, quota)
        parts.append(torch.where(torch.isfinite(vals), idx, best))
    return torch.cat(parts, dim=-1)


def neighbour_lists(
    row_factor: torch.Tensor,
    col_factor: torch.Tensor,
    k: int,
    *,
    modality: torch.Tensor | None = None,
    quota: int = 0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Top-k columns of every row of ``row_factor @ col_factor^T``, chunked over rows.

    Args:
        row_factor, col_factor: (h, N, m) (LAA: ``q~``, ``k~``; the code's reading: the normalised
            input for both, h = 1). The scale does not change a top-k.
        k: neighbours per row (capped at N). modality: (N,) labels for ``quota``.
        quota: how many of the k are reserved for the other modality (0..k).
        chunk_size: rows per chunk (memory O(h * chunk_size * N)).
    Returns:
        (h, N, k) int64 column indices (not sorted; may repeat when ``quota`` > 0).
    """
    h, n, _ = row_factor.shape
    k = min(int(k), n)
    quota = min(int(quota), k) if modality is not None else 0
    out = torch.empty(h, n, k, dtype=torch.long, device=row_factor.device)  # (h, N, k)
    with torch.no_grad():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            scores = row_factor[:, start:stop] @ col_factor.transpose(1, 2)  # (h, c, N)
            other = None if modality is None else modality[start:stop, None] != modality[None, :]  # (c, N)
            out[:, start:stop] = _topk_rows(scores, k, other, quota)
    return out


def reciprocal_candidates(lists: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The RNS mask ``M = M^k * (M^k)^T`` with ``M_ii = 1``, as candidate lists.

    Args:
        lists: (h, N, k) top-k column indices of every row (:func:`neighbour_lists`).
    Returns:
        ``(cols, valid)``: (h, N, k + 1) columns (column 0 is the row itself) and a bool mask, True
        exactly where ``M_ij = 1``: the row itself, and each other j once when j lists i too.
    """
    h, n, k = lists.shape
    with torch.no_grad():
        rows = torch.arange(n, device=lists.device)[None, :, None]  # (1, N, 1)
        cols, _ = lists.sort(dim=-1)  # (h, N, k)
        fresh = torch.ones_like(cols, dtype=torch.bool)  # (h, N, k)
        fresh[..., 1:] = cols[..., 1:] != cols[..., :-1]  # first occurrence only
        forward = (rows * n + cols).reshape(h, -1)  # (h, N*k) keys i*N + j, sorted per head
        backward = (cols * n + rows).reshape(h, -1)  # (h, N*k) keys j*N + i
        pos = torch.searchsorted(forward, backward).clamp_(max=forward.shape[1] - 1)  # (h, N*k)
        mutual = (forward.gather(1, pos) == backward).reshape(h, n, k)  # (h, N, k)
        valid = mutual & fresh & (cols != rows)  # (h, N, k)
        self_col = rows.expand(h, n, 1)  # (h, N, 1)
        cols = torch.cat([self_col, cols], dim=-1)  # (h, N, k + 1)
        valid = torch.cat([torch.ones_like(self_col, dtype=torch.bool), valid], dim=-1)  # (h, N, k + 1)
    return cols, valid


def rns_aggregate(
    q_t: torch.Tensor,
    k_t: torch.Tensor,
    v: torch.Tensor,
    cols: torch.Tensor,
    valid: torch.Tensor,
    *,
    scale: float,
    chunk_size: int = 1024,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``RNS(A~) @ V`` over the candidate lists, chunked over rows (seeds/001 §3.3).

    Args:
        q_t, k_t: (h, N, m) LAA factors; ``A~_ij = scale * q~_i . k~_j``. v: (h, N, dv) values.
        cols, valid: (h, N, c) candidates and the mask ``M`` (:func:`reciprocal_candidates`).
        scale: 1 / sqrt(d). return_weights: also return the (h, N, c) RNS weights of ``cols``.
    Returns:
        (h, N, dv) aggregated values (differentiable in ``q_t``, ``k_t``, ``v``).
    """
    h, n, c = cols.shape
    heads = torch.arange(h, device=cols.device)[:, None, None]  # (h, 1, 1)
    outs, weights = [], []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        cc, vv = cols[:, start:stop], valid[:, start:stop]  # (h, r, c)
        logits = torch.einsum("hrm,hrcm->hrc", q_t[:, start:stop], k_t[heads, cc]) * scale  # (h, r, c)
        w = F.softmax(logits.float().masked_fill(~vv, float("-inf")), dim=-1).to(v.dtype)  # (h, r, c)
        outs.append(torch.einsum("hrc,hrcd->hrd", w, v[heads, cc]))  # (h, r, dv)
        if return_weights:
            weights.append(w)
    out = torch.cat(outs, dim=1)  # (h, N, dv)
    return (out, torch.cat(weights, dim=1)) if return_weights else out


def default_scale(head_dim: int) -> float:
    """1 / sqrt(d) with d the per-head dimension (the public code; with one head the paper's d)."""
    return 1.0 / math.sqrt(head_dim)
