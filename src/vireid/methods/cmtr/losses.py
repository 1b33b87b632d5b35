"""CMTR's modality-aware enhancement (MAE) loss: L_MAE = L_MAC + L_MAID (seeds/001 §2 §3.3; METHODS.md §6).

Both act on the BNNeck feature with the modality information removed, ``f_{q,k}^m - phi_m(e^m)``
(the model's ``extras["removed_features"]``; :class:`vireid.methods.cmtr.model.CMTR`):

* L_MAC (modality-aware centre): ``sum_q sum_k log(1 + exp(D(f_{q,k}^m - phi_m(e^m), f_{q,c})))`` with D the
  Euclidean distance and the centre ``f_{q,c}`` the mean removed feature of identity q: over both
  modalities (``centre="joint"``, the default: the stated aim is closing the gap within an identity) or
  per (identity, modality) (``centre="per_modality"``, the seed's literal ``f_{q,c}^m``); METHODS.md §6
  "Ambiguities". The centre is not detached (the seed does not say so).
* L_MAID (modality-aware identity): ``sum_q sum_k CE(softmax(FC_id(f_{q,k}^m - phi_m(e^m))), t_{q,k})``
  with the shared identity classifier (``extras["removed_logits"]``).

The seed writes sums over the batch; both losses here average over the B images
(``reduction="sum"`` gives the seed's sums), so the weight lambda of ``L_ID + L_WRT + lambda L_MAE``
does not depend on the batch size.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid.losses.identity import cross_entropy_label_smooth
from vireid.types import Batch, ModelOutput

__all__ = ["ModalityAwareCentre", "ModalityAwareID", "modality_aware_centre"]

CENTRES = ("joint", "per_modality")


def _extra(output: ModelOutput, key: str, loss: str) -> torch.Tensor:
    if key not in output.extras:
        raise ValueError(f"{loss}: the model output has no extras[{key!r}] (use model cmtr; built with num_classes=0?)")
    return output.extras[key]


def modality_aware_centre(removed: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor,
                          centre: str = "joint", reduction: str = "mean") -> torch.Tensor:
    """L_MAC: ``log(1 + exp(||r_i - c(i)||_2))`` per image, averaged (or summed) over the batch.

    Args:
        removed: (B, D) features with the modality removed, ``f - phi_m(e^m)``.
        pids, modality: (B,) identity and modality labels.
        centre: ``"joint"`` (c = mean over the identity's images of both modalities) or
            ``"per_modality"`` (over its images of the same modality).
        reduction: ``"mean"`` or ``"sum"`` (the seed's).
    """
    if centre not in CENTRES:
        raise ValueError(f"cmtr_mac: centre must be one of {CENTRES}, got {centre!r}")
    r = removed.float()  # (B, D)
    group = pids.long() if centre == "joint" else pids.long() * 2 + modality.long()  # (B,) group id
    same = (group[:, None] == group[None, :]).float()  # (B, B)
    centres = (same @ r) / same.sum(dim=1, keepdim=True)  # (B, D): the centre of each image's group
    dist = ((r - centres).pow(2).sum(dim=1)).clamp_min(1e-12).sqrt()  # (B,) Euclidean, finite gradient at 0
    per_image = F.softplus(dist)  # log(1 + exp(d))
    return per_image.mean() if reduction == "mean" else per_image.sum()


class ModalityAwareCentre(nn.Module):
    """L_MAC on ``extras["removed_features"]`` (see :func:`modality_aware_centre`).

    Args:
        centre: ``"joint"`` (default) or ``"per_modality"``.
        reduction: ``"mean"`` over the batch (default) or ``"sum"`` (the seed's).
    """

    def __init__(self, centre: Literal["joint", "per_modality"] = "joint",
                 reduction: Literal["mean", "sum"] = "mean") -> None:
        super().__init__()
        if centre not in CENTRES:
            raise ValueError(f"cmtr_mac: centre must be one of {CENTRES}, got {centre!r}")
        self.centre, self.reduction = centre, reduction

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        removed = _extra(output, "removed_features", "cmtr_mac")
        return modality_aware_centre(removed, batch.pids, batch.modality, self.centre, self.reduction)

    def extra_repr(self) -> str:
        return f"centre={self.centre!r}, reduction={self.reduction!r}"


class ModalityAwareID(nn.Module):
    """L_MAID: cross-entropy of ``extras["removed_logits"]`` (the shared FC_id on ``f - phi_m(e^m)``).

    Args:
        epsilon: label smoothing (0 = the seed's plain cross-entropy).
        reduction: ``"mean"`` over the batch (default) or ``"sum"`` (the seed's).
    """

    def __init__(self, epsilon: float = 0.0, reduction: Literal["mean", "sum"] = "mean") -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"cmtr_maid: epsilon must be in [0, 1), got {epsilon}")
        self.epsilon, self.reduction = epsilon, reduction

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        logits = _extra(output, "removed_logits", "cmtr_maid")
        loss = cross_entropy_label_smooth(logits, batch.pids, self.epsilon)  # mean over the batch
        return loss if self.reduction == "mean" else loss * logits.shape[0]

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"
