"""Triplet losses over the whole batch (both modalities): batch-hard and weighted regularized (WRT).

Batch-hard: Hermans et al., 2017, "In Defense of the Triplet Loss for Person Re-Identification".
WRT: AGW, Ye et al., TPAMI 2021, "Deep Learning for Person Re-identification: A Survey and
Outlook", seeds/001 §1 Eq. (L_wrt); METHODS.md §3. Distances are Euclidean, in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Batch
from vireid.losses.distance import pairwise_euclidean
from vireid.losses.registry import register_loss
from vireid.losses.selection import check_feature_name, select_feature
from vireid.types import ModelOutput


def _same_identity(pids: torch.Tensor, n: int) -> torch.Tensor:
    if pids.shape != (n,):
        raise ValueError(f"triplet: expected pids of shape ({n},), got {tuple(pids.shape)}")
    return pids.unsqueeze(0) == pids.unsqueeze(1)  # (B, B) bool, diagonal True


def triplet_batch_hard(
    features: torch.Tensor, pids: torch.Tensor, margin: float = 0.3, normalize: bool = False
) -> torch.Tensor:
    """``mean_i [max_{p in P_i} d_ip - min_{n in N_i} d_in + margin]_+`` (batch-hard triplet).

    ``P_i`` includes the anchor itself (``d_ii = 0``), as in the public AGW/open-reid code. A
    batch of one identity has no negatives; the loss is then 0 (still attached to the graph).

    Args:
        features: (B, D); pids: (B,) identity labels; margin: the hinge margin;
        normalize: L2-normalise the features first.
    """
    dist = pairwise_euclidean(features, normalize=normalize)  # (B, B)
    same = _same_identity(pids, dist.shape[0])  # (B, B)
    # no host-side test for "no negatives" (a CUDA sync, a graph break under torch.compile): then
    # every hardest_neg is +inf, each hinge is relu(-inf) = 0 and its gradient 0
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)  # (B,)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # (B,)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of ``scores`` over the entries where ``mask`` is True (0 elsewhere).

    The maximum is taken over the masked entries only, so every non-empty row has a normaliser
    >= 1 and no exponent is positive. Rows with no masked entry get all-zero weights.
    """
    row_max = scores.masked_fill(~mask, float("-inf")).amax(dim=1, keepdim=True)  # (B, 1)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    e = (scores - row_max).masked_fill(~mask, float("-inf")).exp()  # (B, B)
    return e / e.sum(dim=1, keepdim=True).clamp(min=1e-12)  # (B, B)


def _public_code_softmax_weights(dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``softmax_weights`` of the public AGW code (mangye16/Cross-Modal-Re-ID-baseline, loss.py), verbatim.

    Its shift is ``max(dist * mask)``, which is 0 on the negative side (``dist = -d <= 0`` and
    the unmasked entries are 0), so its ``+1e-6`` guard is no longer negligible once the nearest
    negative is ~10 away: the negative weights then sum to less than 1.
    """
    max_v = torch.max(dist * mask, dim=1, keepdim=True)[0]  # (B, 1)
    diff = dist - max_v  # (B, B)
    z = torch.sum(torch.exp(diff) * mask, dim=1, keepdim=True) + 1e-6  # (B, 1)
    return torch.exp(diff) * mask / z  # (B, B)


def weighted_regularized_triplet(
    features: torch.Tensor, pids: torch.Tensor, normalize: bool = False, public_code_weights: bool = False
) -> torch.Tensor:
    """WRT, seeds/001 §1: ``mean_i log(1 + exp(sum_j w_ij^p d_ij^p - sum_k w_ik^n d_ik^n))``.

    ``w^p = softmax(d)`` over the anchor's positives and ``w^n = softmax(-d)`` over its
    negatives, both modalities; no margin. As in the public AGW code the anchor counts among its
    own positives (``d_ii = 0``). The softmaxes subtract the row maximum over their own set, so
    they are exact and overflow-free at any distance scale.

    Args:
        features: (B, D); pids: (B,) identity labels; normalize: L2-normalise the features first.
        public_code_weights: use the public code's ``softmax_weights`` instead (see
            :func:`_public_code_softmax_weights`); equal to the default up to ~1e-6 when the
            distances are small, smaller negative terms when they are not.
    """
    dist = pairwise_euclidean(features, normalize=normalize)  # (B, B)
    is_pos = _same_identity(pids, dist.shape[0])  # (B, B)
    is_neg = ~is_pos
    if public_code_weights:
        pos_f, neg_f = is_pos.float(), is_neg.float()
        dist_ap, dist_an = dist * pos_f, dist * neg_f  # (B, B)
        w_pos = _public_code_softmax_weights(dist_ap, pos_f)  # (B, B)
        w_neg = _public_code_softmax_weights(-dist_an, neg_f)  # (B, B)
    else:
        w_pos = _masked_softmax(dist, is_pos)  # (B, B)
        w_neg = _masked_softmax(-dist, is_neg)  # (B, B)
    furthest_pos = (dist * w_pos).sum(dim=1)  # (B,)
    closest_neg = (dist * w_neg).sum(dim=1)  # (B,)
    return F.softplus(furthest_pos - closest_neg).mean()


@register_loss("triplet_hard")
class TripletBatchHard(nn.Module):
    """Batch-hard triplet loss on ``output.<feature>`` against ``batch.pids``.

    Args:
        margin: hinge margin (0.3). normalize: L2-normalise the features first.
        feature: ``"features"`` (pre-BN, default), ``"bn_features"`` or ``"extras:<key>"``.
    """

    def __init__(self, margin: float = 0.3, normalize: bool = False, feature: str = "features") -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize
        self.feature = check_feature_name(feature, "triplet_hard")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return triplet_batch_hard(select_feature(output, self.feature), batch.pids, self.margin, self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, normalize={self.normalize}, feature={self.feature!r}"


@register_loss("wrt")
class WeightedRegularizedTriplet(nn.Module):
    """Weighted regularized triplet (WRT, AGW, seeds/001 §1) on ``output.<feature>`` against ``batch.pids``.

    Args:
        normalize: L2-normalise the features first (AGW: no).
        feature: ``"features"`` (pre-BN GeM feature, AGW's choice), ``"bn_features"`` or ``"extras:<key>"``.
        public_code_weights: reproduce the public code's softmax weights (see
            :func:`weighted_regularized_triplet`).
    """

    def __init__(self, normalize: bool = False, feature: str = "features", public_code_weights: bool = False) -> None:
        super().__init__()
        self.normalize = normalize
        self.feature = check_feature_name(feature, "wrt")
        self.public_code_weights = public_code_weights

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return weighted_regularized_triplet(
            select_feature(output, self.feature), batch.pids, self.normalize, self.public_code_weights
        )

    def extra_repr(self) -> str:
        return f"normalize={self.normalize}, feature={self.feature!r}, public_code_weights={self.public_code_weights}"
