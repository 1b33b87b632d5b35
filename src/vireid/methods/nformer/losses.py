"""NFormer's identity loss on the refined features (METHODS.md §8: losses unspecified in the seed ->
CE + triplet). The refined features' triplet is ``triplet_hard`` with ``feature: extras:refined_features``;
the CNN embedding uses the generic ``cross_entropy`` and ``wrt``.
"""

from __future__ import annotations

import torch
from torch import nn

from vireid.losses.identity import cross_entropy_label_smooth
from vireid.types import Batch, ModelOutput

__all__ = ["RefinedIdentity"]


class RefinedIdentity(nn.Module):
    """Label-smoothed cross-entropy on ``extras["refined_logits"]`` (the NFormer classifier on the
    jointly refined batch, set by :class:`~vireid.methods.nformer.model.NFormerNet` in training mode)
    against ``batch.pids``.

    Args:
        epsilon: label smoothing (0.1; 0 = plain cross-entropy).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"nformer_refined_id: epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        logits = output.extras.get("refined_logits")
        if logits is None:
            raise ValueError("nformer_refined_id: the model output has no extras['refined_logits'] "
                             "(model nformer in training mode with num_classes > 0 sets it)")
        return cross_entropy_label_smooth(logits, batch.pids, self.epsilon)
