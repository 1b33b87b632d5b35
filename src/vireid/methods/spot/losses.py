"""SPOT's four loss terms, seeds/001 §4 §3.3; METHODS.md §11:

``L_total = L_B + lambda1 L_IS + lambda2 L_IP + L_IF``, each ``L_X = L_id(X) + L_tri(X)``: a
label-smoothed identity loss on the branch's post-BNNeck logits and a triplet loss (WRT by default,
METHODS.md §11; batch-hard with a margin as the option) on its pre-BN embedding.

One registered loss per term, so the recipe's weights are lambda1 and lambda2 and the trainer logs
each term by name: ``spot_base`` (L_B: pooled F_I), ``spot_is`` (L_IS), ``spot_ip`` (L_IP),
``spot_if`` (L_IF: the fused feature, the model's main output).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from vireid.losses.identity import cross_entropy_label_smooth
from vireid.losses.triplet import triplet_batch_hard, weighted_regularized_triplet
from vireid.types import Batch, ModelOutput

__all__ = ["SPOTBaseLoss", "SPOTBranchLoss", "SPOTFusedLoss", "SPOTPartLoss", "SPOTStructureLoss", "TRIPLETS",
           "branch_outputs", "spot_branch_loss"]

TRIPLETS: tuple[str, ...] = ("wrt", "hard")


def spot_branch_loss(features: torch.Tensor, logits: torch.Tensor, pids: torch.Tensor, *, epsilon: float = 0.1,
                     triplet: str = "wrt", margin: float = 0.3) -> torch.Tensor:
    """``L_X = CE_eps(logits, pids) + L_tri(features, pids)`` for one branch (seeds/001 §4 §3.3).

    Args:
        features: (B, D) pre-BN embedding. logits: (B, N). pids: (B,) class indices.
        epsilon: label smoothing. triplet: ``"wrt"`` (no margin) or ``"hard"`` (batch-hard, ``margin``).
    """
    if triplet not in TRIPLETS:
        raise ValueError(f"spot loss: triplet must be one of {TRIPLETS}, got {triplet!r}")
    tri = (weighted_regularized_triplet(features, pids) if triplet == "wrt"
           else triplet_batch_hard(features, pids, margin))
    return cross_entropy_label_smooth(logits, pids, epsilon) + tri


def branch_outputs(output: ModelOutput, branch: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (B, D), logits (B, N))`` of SPOT's ``branch`` (``base``, ``is``, ``ip`` or ``if``)."""
    if branch == "if":
        features, logits = output.features, output.logits
    else:
        missing = [k for k in (f"{branch}_features", f"{branch}_logits") if k not in output.extras]
        if missing:
            raise KeyError(f"spot_{branch}: the model output has no extras {missing} (is the model 'spot', built "
                           f"with num_classes > 0?); extras: {sorted(output.extras)}")
        features, logits = output.extras[f"{branch}_features"], output.extras[f"{branch}_logits"]
    if logits is None:
        raise ValueError(f"spot_{branch}: the model output has no logits (built with num_classes=0?)")
    return features, logits


class SPOTBranchLoss(nn.Module):
    """``L_id + L_tri`` on one SPOT branch (subclasses fix the branch).

    Args:
        epsilon: label smoothing of the identity loss (0.1; 0 = plain cross-entropy).
        triplet: ``"wrt"`` (METHODS.md §11 default) or ``"hard"``. margin: the batch-hard margin.
    """

    branch: ClassVar[str] = ""

    def __init__(self, epsilon: float = 0.1, triplet: Literal["wrt", "hard"] = "wrt", margin: float = 0.3) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"spot_{self.branch}: epsilon must be in [0, 1), got {epsilon}")
        if triplet not in TRIPLETS:
            raise ValueError(f"spot_{self.branch}: triplet must be one of {TRIPLETS}, got {triplet!r}")
        self.epsilon, self.triplet, self.margin = epsilon, triplet, margin

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        features, logits = branch_outputs(output, self.branch)
        return spot_branch_loss(features, logits, batch.pids, epsilon=self.epsilon, triplet=self.triplet,
                                margin=self.margin)

    def extra_repr(self) -> str:
        return f"branch={self.branch!r}, epsilon={self.epsilon}, triplet={self.triplet!r}, margin={self.margin}"


class SPOTBaseLoss(SPOTBranchLoss):
    """``L_B``: identity + triplet on the pooled appearance feature F_I (seeds/001 §4 §3.3)."""

    branch = "base"


class SPOTStructureLoss(SPOTBranchLoss):
    """``L_IS``: identity + triplet on the pooled structure-attended feature F_IS (weight lambda1)."""

    branch = "is"


class SPOTPartLoss(SPOTBranchLoss):
    """``L_IP``: identity + triplet on the part-interaction feature F_IP (weight lambda2)."""

    branch = "ip"


class SPOTFusedLoss(SPOTBranchLoss):
    """``L_IF``: identity + triplet on the fused feature F_IF (the model's main output)."""

    branch = "if"
