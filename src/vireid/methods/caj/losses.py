"""CAJ's enhanced squared-difference WRT (Ye et al., ICCV 2021, "Channel Augmented Joint Learning for
Visible-Infrared Recognition", seeds/001 §8 §3.3; METHODS.md §4 "Losses").

Over the mixed-modality batch (all rows, both modalities, and CAJ's channel-augmented visible view
when :mod:`vireid.methods.caj.joint` adds it), with the softmax-weighted distances of WRT (seeds/001 §1):

    mu_i = sum_j w_ij^p d_ij - sum_k w_ik^n d_ik
    phi(mu) = mu^2 sign(mu)          (|phi| clamped at 88, as the public code does)
    L_sq = (1/N) sum_i log(1 + exp(phi(mu_i)))

The public code (mangye16/Cross-Modal-Re-ID-baseline, ICCV21_CAJ/loss.py, ``TripletLoss_ADP`` with
``square=1``) computes the same thing as ``SoftMarginLoss(min(mu^2 * gamma, 88), -sign(mu))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Batch
from vireid.losses.distance import pairwise_euclidean
from vireid.losses.selection import check_feature_name, select_feature
from vireid.types import ModelOutput

__all__ = ["SquaredDifferenceWRT", "squared_difference_wrt", "wrt_margins"]


def _weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of ``scores`` over ``mask`` (exactly 0 off the mask; all-zero rows where it is empty)."""
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)  # (B, B), NaN rows where mask is empty
    return torch.where(mask, w, torch.zeros_like(w))  # (B, B)


def wrt_margins(
    features: torch.Tensor, pids: torch.Tensor, normalize: bool = False, alpha: float = 1.0
) -> torch.Tensor:
    """Per-anchor WRT margin ``mu_i = sum_j w_ij^p d_ij - sum_k w_ik^n d_ik`` (seeds/001 §1, §8): (B, D) -> (B,).

    ``w^p = softmax(alpha d)`` over the anchor's positives (the anchor itself included, d_ii = 0,
    as in the public code) and ``w^n = softmax(-alpha d)`` over its negatives, both modalities.
    ``alpha`` is the public code's ``--alpha`` hard-mining magnification (1 in CAJ).
    """
    if features.dim() != 2 or pids.shape != features.shape[:1]:
        raise ValueError(f"wrt_margins: expected features (B, D) and pids (B,), "
                         f"got {tuple(features.shape)} and {tuple(pids.shape)}")
    dist = pairwise_euclidean(features, normalize=normalize)  # (B, B)
    is_pos = pids.unsqueeze(0) == pids.unsqueeze(1)  # (B, B)
    w_pos = _weights(alpha * dist, is_pos)  # (B, B)
    w_neg = _weights(-alpha * dist, ~is_pos)  # (B, B)
    return (dist * w_pos).sum(dim=1) - (dist * w_neg).sum(dim=1)  # (B,)


def squared_difference_wrt(
    features: torch.Tensor, pids: torch.Tensor, normalize: bool = False, max_square: float = 88.0,
    gamma: float = 1.0, alpha: float = 1.0,
) -> torch.Tensor:
    """CAJ's squared-difference WRT: ``mean_i softplus(sign(mu_i) min(gamma mu_i^2, max_square))``.

    Args:
        features: (B, D), the mixed-modality batch; pids: (B,) identity labels.
        normalize: L2-normalise the features first (CAJ: no).
        max_square: clamp of ``gamma mu^2`` (the code's 88, where ``exp`` nears the float32 limit).
        gamma: the code's ``--gamma`` scale of the squared difference (1 in CAJ).
        alpha: the code's ``--alpha`` magnification inside the softmax weights (1 in CAJ).
    """
    mu = wrt_margins(features, pids, normalize, alpha)  # (B,)
    phi = torch.sign(mu) * (gamma * mu.pow(2)).clamp(max=max_square)  # (B,)
    return F.softplus(phi).mean()


class SquaredDifferenceWRT(nn.Module):
    """CAJ's enhanced squared-difference WRT (seeds/001 §8) on ``output.<feature>`` against ``batch.pids``.

    Args:
        normalize: L2-normalise the features first (CAJ: no).
        feature: ``"features"`` (pre-BN, default), ``"bn_features"`` or ``"extras:<key>"``.
        max_square: clamp of the squared difference (88). gamma, alpha: the code's scales (1).
    """

    def __init__(self, normalize: bool = False, feature: str = "features", max_square: float = 88.0,
                 gamma: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__()
        if max_square <= 0 or gamma <= 0 or alpha <= 0:
            raise ValueError(f"wrt_squared: max_square, gamma and alpha must be > 0, "
                             f"got {max_square}, {gamma}, {alpha}")
        self.normalize, self.max_square, self.gamma, self.alpha = normalize, max_square, gamma, alpha
        self.feature = check_feature_name(feature, "wrt_squared")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return squared_difference_wrt(select_feature(output, self.feature), batch.pids, self.normalize,
                                      self.max_square, self.gamma, self.alpha)

    def extra_repr(self) -> str:
        return (f"normalize={self.normalize}, feature={self.feature!r}, max_square={self.max_square}, "
                f"gamma={self.gamma}, alpha={self.alpha}")
