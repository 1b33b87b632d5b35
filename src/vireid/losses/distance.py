"""Pairwise Euclidean distances for the metric losses, always in float32."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None, *, normalize: bool = False) -> torch.Tensor:
    """``d_ij = ||x_i - y_j||_2`` for (M, D) ``x`` and (N, D) ``y`` (default ``y = x``) -> (M, N) float32.

    Computed as ``sqrt(max(|x|^2 + |y|^2 - 2 x y^T, 1e-12))`` in float32 with autocast disabled,
    so bf16/fp16 features under autocast do not lose the distance to cancellation; the clamp keeps
    the square root's gradient finite at zero distance (it is 0 there). Without ``y`` the diagonal
    is exactly 0 before the clamp. ``normalize`` L2-normalises the rows first.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        self_distances = y is None
        x = x.float()  # (M, D)
        y = x if y is None else y.float()  # (N, D)
        if normalize:
            x = F.normalize(x, dim=1)
            y = F.normalize(y, dim=1)
        sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0)  # (M, N)
        d2 = torch.addmm(sq, x, y.t(), beta=1.0, alpha=-2.0)  # (M, N)
        if self_distances:
            d2 = d2.fill_diagonal_(0.0)  # exact d_ii = 0 instead of the expansion's rounding noise
        return d2.clamp(min=1e-12).sqrt()  # (M, N)
