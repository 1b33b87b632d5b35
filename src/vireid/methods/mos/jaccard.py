"""Jaccard set similarity over non-negative channel activations (MoS, seeds/002 §3; METHODS.md §13).

Each channel of a non-negative embedding ``g`` (C,) is a pattern and a person is the set of
patterns, weighted by activation. The hard Jaccard similarity (seeds/002 §3, the min/max form)

    J(g1, g2) = sum_c min(g1[c], g2[c]) / sum_c max(g1[c], g2[c])

and its differentiable soft form (Eq. 5), where each min/max is a softmin/softmax-weighted mean of
the two values with temperature ``tau``:

    J_s = sum_c (w1min g1 + w2min g2)[c] / sum_c (w1max g1 + w2max g2)[c],
    wkmin[c] = exp(-tau gk[c]) / sum_n exp(-tau gn[c]),  wkmax[c] = exp(tau gk[c]) / sum_n exp(tau gn[c]).

Both are computed through two identities that keep them cheap and stable:

- ``min(a, b) + max(a, b) = a + b`` and ``max - min = |a - b|``, so the hard form is
  ``(S1 + S2 - L1) / (S1 + S2 + L1)`` with ``S = sum_c g[c]`` and ``L1 = |g1 - g2|_1`` (one
  ``torch.cdist(p=1)`` for a whole query-gallery block);
- with two values the softmin weight is a sigmoid, ``w1min = sigmoid(-tau (g1 - g2))`` and
  ``w1max = 1 - w1min``, so the soft numerator is ``n = sum_c [g2 + sigmoid(-tau d) d]``
  (``d = g1 - g2``) and the soft denominator is ``S1 + S2 - n``. As ``tau`` grows, ``n`` tends to
  ``sum min`` and ``J_s`` to ``J``; at ties (``d = 0``) the weights are 1/2 and the gradient is finite.

A pair whose union is empty (both vectors zero) has similarity 0. The distance is ``D_J = 1 - J``.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12


def _check_nonnegative(x: Tensor, name: str) -> None:
    if x.numel() and bool((x.detach() < 0).any()):
        raise ValueError(f"{name}: Jaccard similarity needs non-negative activations (e.g. post-ReLU pooling), "
                         f"got a minimum of {float(x.detach().min()):.4g}")


def hard_jaccard(g1: Tensor, g2: Tensor) -> Tensor:
    """Element-wise pairs: ``(..., C), (..., C) -> (...)`` hard Jaccard similarity in [0, 1]."""
    _check_nonnegative(g1, "g1")
    _check_nonnegative(g2, "g2")
    total = g1.sum(-1) + g2.sum(-1)  # (...)
    l1 = (g1 - g2).abs().sum(-1)  # (...)
    return (total - l1) / (total + l1).clamp_min(EPS)


def soft_jaccard(g1: Tensor, g2: Tensor, tau: float = 10.0) -> Tensor:
    """Element-wise pairs: ``(..., C), (..., C) -> (...)`` soft Jaccard similarity (Eq. 5)."""
    _check_nonnegative(g1, "g1")
    _check_nonnegative(g2, "g2")
    d = g1 - g2  # (..., C)
    num = (g2 + torch.sigmoid(-tau * d) * d).sum(-1)  # (...) soft intersection
    den = g1.sum(-1) + g2.sum(-1) - num  # (...) soft union
    return num / den.clamp_min(EPS)


def pairwise_hard_jaccard(x: Tensor, y: Tensor) -> Tensor:
    """``(n, C), (m, C) -> (n, m)`` hard Jaccard similarity of every row of ``x`` with every row of ``y``."""
    _check_nonnegative(x, "x")
    _check_nonnegative(y, "y")
    total = x.sum(1)[:, None] + y.sum(1)[None, :]  # (n, m)
    l1 = torch.cdist(x, y, p=1.0)  # (n, m)
    return ((total - l1) / (total + l1).clamp_min(EPS)).clamp(0.0, 1.0)


def pairwise_soft_jaccard(x: Tensor, y: Tensor, tau: float = 10.0) -> Tensor:
    """``(n, C), (m, C) -> (n, m)`` soft Jaccard (Eq. 5) of every pair; memory n x m x C (a training batch)."""
    return soft_jaccard(x[:, None, :], y[None, :, :], tau)  # broadcast (n, m, C) -> (n, m)
