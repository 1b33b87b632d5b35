"""The pattern-conflict penalty of MoS (seeds/002 §3, "模式冲突惩罚"; METHODS.md §13).

The union of two pattern sets may hold patterns that never appear together on one person (blue
shoes and black shoes). With the union ``u = max(g1, g2)`` (element-wise), the co-occurrence
matrix of a pair is ``M(g1, g2) = u u^T`` (C, C); the prior ``M^p[i, j] = max M[i, j](g_t, g_n)``
over the same-identity training pairs ``y_t = y_n`` (self-pairs included, as the seed's
``t, n = 1..N``) is the most that two patterns were ever seen together on one person. The penalty

    CP(g1, g2) = sum_{i,j} max(0, exp(M[i, j] - M^p[i, j] - eps) - 1)

(METHODS.md's reading of the seed's undefined ``exp((M - M^p)^(-eps))``) is zero wherever the pair
co-activates two patterns no more than a same-identity pair did (``M <= M^p + eps``), and the
corrected similarity is ``S = J - lambda CP``.

Tractability (METHODS.md "Ambiguities"): a C x C matrix per pair is heavy, so both the prior and the
penalty use the ``top_k`` channels of each pair's union only: the prior records ``u_i u_j`` for the
top-``k`` channels of every same-identity pair (entries never recorded stay 0), and the penalty sums
over the top-``k`` x top-``k`` block of the pair. ``top_k >= C`` is the exact, unrestricted form.

Two forms (``form``):

- ``"seed"``: the formula above on the raw activations, summed over the ``k x k`` block. On post-ReLU
  features ``u_i u_j`` is unbounded, so ``exp(M - M^p - eps) - 1`` can dwarf ``1 - J`` (on the synthetic
  partial set it alone ordered the gallery for every lambda down to 0.001: README, MoS).
- ``"normalized"`` (this project's bounded variant, not in the seed): each union is divided by its
  largest entry before ``M`` is formed (``M`` in [0, 1], scale-free), the prior is collected the same
  way, and the ``k x k`` block is averaged instead of summed, so ``0 <= CP <= e^(1 - eps) - 1 < 1.72``,
  on the scale of ``1 - J``. It is still zero exactly where ``M <= M^p + eps``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)


PENALTY_FORMS = ("seed", "normalized")


def _check_form(form: str) -> None:
    if form not in PENALTY_FORMS:
        raise ValueError(f"conflict penalty form must be one of {PENALTY_FORMS}, got {form!r}")


def _scaled_union(g1: Tensor, g2: Tensor, form: str) -> Tensor:
    """``max(g1, g2)`` (..., C), divided by its largest entry in the ``normalized`` form."""
    union = torch.maximum(g1, g2)
    if form == "normalized":
        union = union / union.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(union.dtype).tiny)
    return union


def _k(top_k: int | None, channels: int) -> int:
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    return channels if top_k is None else min(int(top_k), channels)


@torch.no_grad()
def cooccurrence_prior(features: Tensor | np.ndarray, pids: Tensor | np.ndarray, *, top_k: int | None = 32,
                       max_pairs: int = 4096, form: str = "seed") -> Tensor:
    """``M^p`` (C, C) float32: the largest ``u_i u_j`` over every same-identity pair's top-``k`` union channels.

    Args:
        features: (N, C) non-negative training embeddings. pids: (N,) identity labels.
        top_k: channels of each pair's union that are recorded (None: all C, exact).
        max_pairs: pairs processed at once (memory ``max_pairs * k * k``).
        form: ``"seed"`` (raw unions) or ``"normalized"`` (each union divided by its maximum); the
            penalty must use the same form.
    """
    _check_form(form)
    g = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(pids).reshape(-1)
    if g.dim() != 2 or y.shape[0] != g.shape[0]:
        raise ValueError(f"cooccurrence_prior: expected (N, C) features and (N,) pids, got {tuple(g.shape)} and "
                         f"{tuple(y.shape)}")
    c = g.shape[1]
    k = _k(top_k, c)
    prior = torch.zeros(c * c, dtype=torch.float32)  # flattened (C, C)
    pairs = 0
    for pid in torch.unique(y):
        members = torch.nonzero(y == pid).flatten()  # (n_id,)
        t, n = torch.triu_indices(len(members), len(members))  # self-pairs included; M is symmetric in (t, n)
        for s in range(0, t.shape[0], max_pairs):
            a, b = members[t[s:s + max_pairs]], members[n[s:s + max_pairs]]
            union = _scaled_union(g[a], g[b], form)  # (P, C)
            vals, idx = union.topk(k, dim=1)  # (P, k)
            m = vals[:, :, None] * vals[:, None, :]  # (P, k, k)
            flat = idx[:, :, None] * c + idx[:, None, :]  # (P, k, k)
            prior.scatter_reduce_(0, flat.reshape(-1), m.reshape(-1), reduce="amax", include_self=True)
            pairs += a.shape[0]
    logger.info("co-occurrence prior from %d same-identity pairs of %d images (top %d of %d channels)",
                pairs, g.shape[0], k, c)
    return prior.view(c, c)


def conflict_penalty(g1: Tensor, g2: Tensor, prior: Tensor, *, top_k: int | None = 32, eps: float = 0.05,
                     form: str = "seed") -> Tensor:
    """Element-wise pairs ``(..., C), (..., C) -> (...)``: ``CP`` over the top-``k`` channels of each union
    (summed in the ``seed`` form, averaged over the ``k x k`` block in the ``normalized`` one)."""
    _check_form(form)
    union = _scaled_union(g1, g2, form)  # (..., C)
    k = _k(top_k, union.shape[-1])
    vals, idx = union.topk(k, dim=-1)  # (..., k)
    m = vals[..., :, None] * vals[..., None, :]  # (..., k, k)
    mp = prior.to(union)[idx[..., :, None], idx[..., None, :]]  # (..., k, k)
    excess = torch.expm1(m - mp - eps).clamp_min(0.0)  # (..., k, k)
    return excess.mean(dim=(-2, -1)) if form == "normalized" else excess.sum(dim=(-2, -1))


def pairwise_conflict_penalty(x: Tensor, y: Tensor, prior: Tensor, *, top_k: int | None = 32, eps: float = 0.05,
                              budget: int = 1 << 23, form: str = "seed") -> Tensor:
    """``(n, C), (m, C) -> (n, m)`` penalty of every pair, in row blocks of at most ``budget`` elements."""
    c = x.shape[1]
    k = _k(top_k, c)
    rows = max(1, budget // max(1, y.shape[0] * max(c, k * k)))
    out = torch.empty(x.shape[0], y.shape[0], dtype=x.dtype, device=x.device)  # (n, m)
    for s in range(0, x.shape[0], rows):
        out[s:s + rows] = conflict_penalty(x[s:s + rows, None, :], y[None, :, :], prior, top_k=k, eps=eps,
                                               form=form)
    return out
