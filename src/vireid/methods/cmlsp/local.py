"""CM-LSP's cross-modal local shortest path between two images' horizontal stripes.

Wang, Li, Ma, "Cross-modal Local Shortest Path and Global Enhancement for Visible-Thermal Person
Re-Identification" (seeds/001 §6 "3.2 局部特征对齐"; METHODS.md §9 "Components"):

* stripe distance: ``d_ij = || (f_r^i - mean f_r^i) / (max f_r^i - min f_r^i)
  - (f_t^j - mean f_t^j) / (max f_t^j - min f_t^j) ||_1``, the statistics taken over each stripe
  vector's own entries, ``eps`` added to the range (:func:`normalise_stripes`, :func:`stripe_distances`);
* the dynamic programme ``S_11 = d_11``, ``S_1j = S_1,j-1 + d_1j``, ``S_i1 = S_i-1,1 + d_i1``,
  ``S_ij = min(S_i,j-1, S_i-1,j) + d_ij``; the pair's distance is ``S_hh``, the cost of the cheapest
  monotone path from stripe pair (1, 1) to (h, h) (:func:`shortest_path`).

Compared with the public AlignedReID code (huanghoujing/AlignedReID-Re-Production-Pytorch,
``aligned_reid/model/loss.py``: ``shortest_dist``, ``local_dist``), read to confirm this reading:
the recurrence is the same (right/down moves, ``S_hh`` returned, not divided by h); the element
distance differs. AlignedReID takes the Euclidean distance of the (L2-normalised) stripe features
and squashes it with ``(e^d - 1) / (e^d + 1)``; the paper (and we) take the L1 distance of the
mean-centred, range-scaled stripe vectors, unsquashed. We follow the paper. Our loss divides
``S_hh`` by h (METHODS.md's recommended ``S_hh / h``) so that the margin does not scale with the
stripe count; :func:`shortest_path` itself returns ``S_hh``.
"""

from __future__ import annotations

import torch

__all__ = ["local_path_distances", "normalise_stripes", "shortest_path", "stripe_distances"]


def normalise_stripes(stripes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``(f - mean f) / (max f - min f + eps)`` for every stripe vector: (..., h, d) -> (..., h, d) float32."""
    f = stripes.float()
    mean = f.mean(dim=-1, keepdim=True)  # (..., h, 1)
    spread = f.amax(dim=-1, keepdim=True) - f.amin(dim=-1, keepdim=True)  # (..., h, 1)
    return (f - mean) / (spread + eps)


def stripe_distances(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``d_ij`` of every pair of images: a (n, h, d) visible, b (m, h', d) thermal -> (n, m, h, h') float32."""
    if a.dim() != 3 or b.dim() != 3 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"stripe_distances: expected stripes (n, h, d) and (m, h', d), got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    n, h, d = a.shape
    m, h2, _ = b.shape
    with torch.autocast(device_type=a.device.type, enabled=False):
        an = normalise_stripes(a, eps).reshape(n * h, d)  # (n*h, d)
        bn = normalise_stripes(b, eps).reshape(m * h2, d)  # (m*h', d)
        dist = torch.cdist(an, bn, p=1.0)  # (n*h, m*h')
    return dist.reshape(n, h, m, h2).permute(0, 2, 1, 3)  # (n, m, h, h')


def shortest_path(d: torch.Tensor) -> torch.Tensor:
    """``S_hh`` of the DP over the last two axes: d (..., h, h') -> (...).

    Vectorised over the leading axes; differentiable (the gradient flows along the chosen path).
    """
    if d.dim() < 2 or d.shape[-1] == 0 or d.shape[-2] == 0:
        raise ValueError(f"shortest_path: expected distances (..., h, h') with h, h' >= 1, got {tuple(d.shape)}")
    h, w = d.shape[-2], d.shape[-1]
    prev: list[torch.Tensor] = []  # row i-1 of S, each (...)
    for i in range(h):
        row: list[torch.Tensor] = []
        for j in range(w):
            if i == 0 and j == 0:
                s = d[..., 0, 0]
            elif i == 0:
                s = row[j - 1] + d[..., 0, j]
            elif j == 0:
                s = prev[0] + d[..., i, 0]
            else:
                s = torch.minimum(row[j - 1], prev[j]) + d[..., i, j]
            row.append(s)
        prev = row
    return prev[-1]


def local_path_distances(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``S_hh / h`` for every (visible, thermal) pair: a (n, h, d), b (m, h, d) -> (n, m) float32."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"local_path_distances: both sides need the same stripe count, got {a.shape[1]} "
                         f"and {b.shape[1]}")
    return shortest_path(stripe_distances(a, b, eps)) / a.shape[1]
