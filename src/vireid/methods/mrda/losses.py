"""MRDA's losses (seeds/003 §2.3 Eq. 7 and §2.5 Eq. 18-23; METHODS.md §1 "Losses" and "Ambiguities").

* ``mrda_id``: label-smoothed identity loss (Eq. 18) over every image the network saw, the
  masked copies included (METHODS.md: "they go through the whole net with L_id");
* ``hetero_centre_triplet``: hetero-centre triplet (Eq. 19-20, anchors ``C_i^v`` and ``C_i^r``,
  the corrected form; Liu et al., TMM 2021, ref. [19]);
* ``correlation_consistency``: modality correlation consistency (Eq. 21-22, Frobenius norms;
  CM-NAS, ref. [21]);
* ``region_centre``: region-centre loss (Eq. 7) on the stage maps of the originals and the
  masked copies (needs ``MRDA(use_mrm=True)``).

The total of Eq. 23 is the trainer's weighted sum of the config's loss list. All distances are
Euclidean and computed in float32. The visible/infrared pairing ("pair i <-> i by sampler order")
is the layout of :class:`~vireid.data.sampler.CrossModalitySampler`: the i-th visible row and the
i-th infrared row of a batch belong to the same identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Batch, Modality
from vireid.losses.distance import pairwise_euclidean
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.losses.selection import check_feature_name, select_feature
from vireid.types import ModelOutput

__all__ = [
    "AC_ON", "AC_THIRD", "MRM_LOSSES", "CorrelationConsistency", "HeteroCentreTriplet", "MRDAIdentity",
    "RegionCentre", "correlation_consistency", "hetero_centre_triplet", "modality_pairs", "region_centre",
]

MRM_LOSSES: tuple[str, ...] = ("region_centre",)
"""Registered losses needing the masked copies of ``MRDA(use_mrm=True)`` (``vireid ablate`` drops them without MRM)."""
AC_ON: tuple[str, ...] = ("pooled", "map")
AC_THIRD: tuple[str, ...] = ("orig", "masked")


def modality_pairs(pids: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(visible (n,), infrared (n,))`` in batch order, the i-th of each the same identity.

    Raises:
        ValueError: the two modalities have different counts or their identities do not match
            position by position (the batch is not in the cross-modality sampler's layout).
    """
    vis = (modality == Modality.VISIBLE).nonzero().squeeze(1)  # (n_v,)
    ir = (modality == Modality.INFRARED).nonzero().squeeze(1)  # (n_r,)
    if vis.numel() != ir.numel():
        raise ValueError(f"MRDA losses pair visible and infrared rows by position; the batch has {vis.numel()} "
                         f"visible and {ir.numel()} infrared rows")
    bad = (pids[vis] != pids[ir]).nonzero().squeeze(1)
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f"MRDA losses pair the i-th visible and i-th infrared rows by identity (cross-modality "
                         f"sampler layout); {bad.numel()} pairs differ, first: position {i}, visible pid "
                         f"{int(pids[vis[i]])} vs infrared pid {int(pids[ir[i]])}")
    return vis, ir


def _l2(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=1)  # (N,)  (gradient 0 at x = 0)


# ----------------------------------------------------------------------------- identity


class MRDAIdentity(nn.Module):
    """Label-smoothed identity loss (seeds/003 Eq. 18) over the originals and, when present, the masked copies.

    With ``extras["masked_logits"]`` (``MRDA(use_mrm=True)`` in training) it is the mean over the
    2B logits ``cat(logits, masked_logits)`` against ``cat(pids, pids)``; otherwise the plain
    :func:`~vireid.losses.identity.cross_entropy_label_smooth` of the B originals.

    Args:
        epsilon: label smoothing xi (MRDA: 0.1).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"mrda_id: epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("mrda_id: the model output has no logits (built with num_classes=0?)")
        logits, targets = output.logits, batch.pids
        masked = output.extras.get("masked_logits")
        if masked is not None:
            logits = torch.cat([logits, masked])  # (2B, N)
            targets = torch.cat([targets, targets])  # (2B,)
        return cross_entropy_label_smooth(logits, targets, self.epsilon)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"


# ----------------------------------------------------------------------------- hetero-centre triplet


def hetero_centre_triplet(
    features: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor, margin: float = 0.3,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hetero-centre triplet, seeds/003 Eq. 19-20 in the corrected form of METHODS.md §1.

    Centres ``C_i^v = mean_j F_i^{v,j}`` and ``C_i^r`` per identity and modality (Eq. 19). Every
    centre of an identity that has both is an anchor: for ``C_i^v``,
    ``[margin + ||C_i^v - C_i^r|| - min_{n in {v,r}, j != i} ||C_i^v - C_j^n||]_+``, and the same
    with ``C_i^r`` as anchor (Eq. 20). ``reduction="mean"`` averages over the 2K anchors (as the
    reference implementation of ref. [19]); ``"sum"`` is Eq. 20's literal sum. A batch with one
    identity, or with no identity in both modalities, gives 0 (attached to the graph).

    Args:
        features: (B, D) embeddings (MRDA: the pre-BN ``F_bar``); pids, modality: (B,) labels.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"hetero_centre_triplet: reduction must be 'mean' or 'sum', got {reduction!r}")
    if features.dim() != 2 or pids.shape != features.shape[:1] or modality.shape != pids.shape:
        raise ValueError(f"hetero_centre_triplet: expected features (B, D), pids (B,), modality (B,); got "
                         f"{tuple(features.shape)}, {tuple(pids.shape)}, {tuple(modality.shape)}")
    x = features.float()  # (B, D)
    keys, group = torch.unique(torch.stack([pids, modality], dim=1), dim=0, return_inverse=True)  # (M, 2), (B,)
    counts = torch.bincount(group, minlength=keys.shape[0]).to(x.dtype)  # (M,)
    centres = torch.zeros(keys.shape[0], x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, group, x)
    centres = centres / counts.unsqueeze(1)  # (M, D)  Eq. 19
    dist = pairwise_euclidean(centres)  # (M, M)
    cid, cmod = keys[:, 0], keys[:, 1]  # (M,)
    same_id = cid.unsqueeze(0) == cid.unsqueeze(1)  # (M, M)
    partner = same_id & (cmod.unsqueeze(0) != cmod.unsqueeze(1))  # (M, M) the other modality's centre
    anchors = partner.any(dim=1) & (~same_id).any(dim=1)  # (M,) has a positive and a negative
    if not bool(anchors.any()):
        return x.sum() * 0.0
    pos = dist.masked_fill(~partner, float("-inf")).amax(dim=1)  # (M,)
    neg = dist.masked_fill(same_id, float("inf")).amin(dim=1)  # (M,)
    losses = F.relu(margin + pos - neg)[anchors]  # (A,)
    return losses.mean() if reduction == "mean" else losses.sum()


class HeteroCentreTriplet(nn.Module):
    """Hetero-centre triplet (seeds/003 Eq. 19-20, corrected) on ``output.<feature>``.

    Args:
        margin: rho (0.3). reduction: ``"mean"`` over anchors (default) or ``"sum"`` (Eq. 20 literal).
        feature: ``"features"`` (pre-BN, default), ``"bn_features"`` or ``"extras:<key>"``.
    """

    def __init__(self, margin: float = 0.3, reduction: str = "mean", feature: str = "features") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"hetero_centre_triplet: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.margin, self.reduction = margin, reduction
        self.feature = check_feature_name(feature, "hetero_centre_triplet")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return hetero_centre_triplet(select_feature(output, self.feature), batch.pids, batch.modality,
                                     self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}, feature={self.feature!r}"


# ----------------------------------------------------------------------------- correlation consistency


def correlation_consistency(features_v: torch.Tensor, features_r: torch.Tensor) -> torch.Tensor:
    """Modality correlation consistency, seeds/003 Eq. 21-22: ``||G^v - G^r||_F``.

    ``G = F F^T / ||F F^T||_F`` for each modality's (n, D) features, row i of ``features_v`` paired
    with row i of ``features_r`` (same identity). Eq. 22's matrix 2-norm is read as Frobenius.
    """
    if features_v.dim() != 2 or features_v.shape != features_r.shape:
        raise ValueError(f"correlation_consistency: expected two (n, D) feature matrices of one shape, "
                         f"got {tuple(features_v.shape)} and {tuple(features_r.shape)}")
    grams = []
    for f in (features_v.float(), features_r.float()):
        g = f @ f.t()  # (n, n)
        grams.append(g / torch.linalg.matrix_norm(g).clamp(min=1e-12))  # (n, n)  Eq. 21
    return torch.linalg.matrix_norm(grams[0] - grams[1])  # Eq. 22


class CorrelationConsistency(nn.Module):
    """Modality correlation consistency (seeds/003 Eq. 21-22) on ``output.<feature>``.

    The visible and infrared rows are paired by position (:func:`modality_pairs`).

    Args:
        feature: ``"features"`` (pre-BN ``F_bar``, default), ``"bn_features"`` or ``"extras:<key>"``.
    """

    def __init__(self, feature: str = "features") -> None:
        super().__init__()
        self.feature = check_feature_name(feature, "correlation_consistency")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        x = select_feature(output, self.feature)
        vis, ir = modality_pairs(batch.pids, batch.modality)
        return correlation_consistency(x[vis], x[ir])

    def extra_repr(self) -> str:
        return f"feature={self.feature!r}"


# ----------------------------------------------------------------------------- region centre


def region_centre(
    orig_map: torch.Tensor,
    masked_map: torch.Tensor,
    pids: torch.Tensor,
    modality: torch.Tensor,
    *,
    ac_on: str = "pooled",
    ac_third: str = "orig",
) -> torch.Tensor:
    """Region-centre loss, seeds/003 Eq. 7, as read in METHODS.md §1 (means, not sums):

    ``mean_{i in v} ||g(f_i^{orig}) - g(f_i^{M+})|| + mean_{i in r} ||g(f_i^{orig}) - g(f_i^{M+})||
    + mean_i ||GAP(f_i^{v,*}) - GAP(f_i^{r,*})||``

    with ``g`` = global average pooling over (h, w) (``ac_on="pooled"``, default) or the flattened
    map (``ac_on="map"``, terms 1-2 only: term 3 compares different images and is always pooled),
    and ``*`` = the originals (``ac_third="orig"``, Eq. 7 as written) or the masked copies
    (``ac_third="masked"``, the prose's "human-region features"). The i-th visible and infrared rows
    are paired by position (:func:`modality_pairs`). A modality with no rows contributes 0.

    Args:
        orig_map, masked_map: (B, C_s, h, w) stage maps of the originals and of their masked copies,
            row i of both from input image i. pids, modality: (B,).
    """
    if ac_on not in AC_ON or ac_third not in AC_THIRD:
        raise ValueError(f"region_centre: ac_on must be one of {AC_ON} and ac_third one of {AC_THIRD}, "
                         f"got {ac_on!r} and {ac_third!r}")
    if orig_map.shape != masked_map.shape or orig_map.dim() != 4 or orig_map.shape[0] != pids.shape[0]:
        raise ValueError(f"region_centre: expected two (B, C, h, w) maps of one shape for B={pids.shape[0]}, "
                         f"got {tuple(orig_map.shape)} and {tuple(masked_map.shape)}")
    orig, masked = orig_map.float(), masked_map.float()  # (B, C, h, w)
    pooled_o, pooled_m = orig.mean(dim=(2, 3)), masked.mean(dim=(2, 3))  # (B, C)
    g_o, g_m = (pooled_o, pooled_m) if ac_on == "pooled" else (orig.flatten(1), masked.flatten(1))  # (B, *)
    total = orig.sum() * 0.0
    for m in (Modality.VISIBLE, Modality.INFRARED):
        rows = (modality == m).nonzero().squeeze(1)  # (n_m,)
        if rows.numel():
            total = total + _l2(g_o[rows] - g_m[rows]).mean()  # terms 1 and 2
    vis, ir = modality_pairs(pids, modality)
    if vis.numel():
        third_feats = pooled_o if ac_third == "orig" else pooled_m  # (B, C)
        total = total + _l2(third_feats[vis] - third_feats[ir]).mean()  # term 3
    return total


class RegionCentre(nn.Module):
    """Region-centre loss (seeds/003 Eq. 7) on ``extras["stage_map"]`` and ``extras["masked_stage_map"]``.

    Needs the masked copies of ``MRDA(use_mrm=True)`` in training mode; raises a KeyError naming
    the missing extras otherwise (``vireid ablate`` drops this loss for the variants without MRM).

    Args:
        ac_on: ``"pooled"`` (GAP to C_s first, default) or ``"map"`` (terms 1-2 on the whole map).
        ac_third: ``"orig"`` (Eq. 7 as written, default) or ``"masked"`` (term 3 on the masked copies).
    """

    def __init__(self, ac_on: str = "pooled", ac_third: str = "orig") -> None:
        super().__init__()
        if ac_on not in AC_ON or ac_third not in AC_THIRD:
            raise ValueError(f"region_centre: ac_on must be one of {AC_ON} and ac_third one of {AC_THIRD}, "
                             f"got {ac_on!r} and {ac_third!r}")
        self.ac_on, self.ac_third = ac_on, ac_third

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        orig = select_feature(output, "extras:stage_map")
        masked = select_feature(output, "extras:masked_stage_map")
        return region_centre(orig, masked, batch.pids, batch.modality, ac_on=self.ac_on, ac_third=self.ac_third)

    def extra_repr(self) -> str:
        return f"ac_on={self.ac_on!r}, ac_third={self.ac_third!r}"
