"""The Jaccard triplet loss of MoS (seeds/002 §3; METHODS.md §13).

``L_J = [delta + D_J(g_n, g_n+) - D_J(g_n, g_n-)]_+`` with ``D_J = 1 - J_s`` (the soft Jaccard of
Eq. 5, temperature ``tau``), batch-hard mining (METHODS.md [UNSPEC]: the hardest positive and
negative of each anchor in the batch), averaged over the anchors (the seed writes a sum; the mean
keeps the loss weight independent of the batch size, as the project's other triplet losses do).
"""

from __future__ import annotations

import torch
from torch import nn

from vireid.losses.selection import check_feature_name, select_feature
from vireid.methods.mos.jaccard import pairwise_soft_jaccard
from vireid.types import Batch, ModelOutput


def jaccard_triplet(features: torch.Tensor, pids: torch.Tensor, *, margin: float = 0.1,
                    tau: float = 10.0) -> torch.Tensor:
    """``mean_n [margin + max_{p} D_J(n, p) - min_{q} D_J(n, q)]_+`` over the batch (batch-hard).

    Args:
        features: (B, C) non-negative embeddings. pids: (B,) identity labels.
        margin: delta. tau: soft Jaccard temperature.

    The positives include the anchor itself (``D_J = 0``), as the project's batch-hard triplet; a
    batch of one identity has no negatives and gives 0 (still attached to the graph).
    """
    if pids.shape != (features.shape[0],):
        raise ValueError(f"jaccard_triplet: expected pids of shape ({features.shape[0]},), got {tuple(pids.shape)}")
    dist = 1.0 - pairwise_soft_jaccard(features.float(), features.float(), tau)  # (B, B)
    same = pids[:, None] == pids[None, :]  # (B, B)
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)  # (B,)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # (B,)
    valid = torch.isfinite(hardest_neg)  # (B,) anchors with a negative
    if not bool(valid.any()):
        return dist.sum() * 0.0
    return torch.relu(margin + hardest_pos[valid] - hardest_neg[valid]).mean()


class JaccardTriplet(nn.Module):
    """Batch-hard soft-Jaccard triplet on a non-negative feature of the output (default ``features``).

    Args:
        margin: delta (METHODS.md default 0.1). tau: soft Jaccard temperature (default 10).
        feature: ``features`` (MoS: the post-ReLU average-pooled ``g``), ``bn_features`` or ``extras:<key>``.
    """

    def __init__(self, margin: float = 0.1, tau: float = 10.0, feature: str = "features") -> None:
        super().__init__()
        if margin < 0 or tau <= 0:
            raise ValueError(f"JaccardTriplet: need margin >= 0 and tau > 0, got margin={margin}, tau={tau}")
        self.margin, self.tau, self.feature = float(margin), float(tau), check_feature_name(feature, "jaccard_triplet")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return jaccard_triplet(select_feature(output, self.feature), batch.pids, margin=self.margin, tau=self.tau)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, tau={self.tau}, feature={self.feature!r}"
