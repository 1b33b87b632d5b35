"""The re-ID embedding head shared by the CNN models: pooling -> BNNeck -> identity classifier.

BNNeck head of Luo et al., CVPRW 2019, as used by AGW (Ye et al., TPAMI 2021, seeds/001 §1;
METHODS.md §3): metric losses read the pooled feature, the classifier and retrieval read the
feature after the BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from vireid.models.layers import BNNeck, weights_init_classifier
from vireid.types import ModelOutput


class ReIDHead(nn.Module):
    """``pool`` -> ``features``; ``BNNeck`` -> ``bn_features``; bias-free linear -> ``logits``.

    Args:
        in_dim: channels of the incoming map (= embedding size).
        num_classes: training identities; 0 builds no classifier and ``logits`` is ``None``.
        pool: a module mapping (B, C, H, W) to (B, C) (e.g. :class:`~vireid.models.layers.GeM`).
    """

    def __init__(self, in_dim: int, num_classes: int, pool: nn.Module) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"ReIDHead: num_classes must be >= 0, got {num_classes}")
        self.pool = pool
        self.bnneck = BNNeck(in_dim)
        self.classifier: nn.Linear | None = None
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0 = none)."""
        self.num_classes = num_classes
        self.classifier = None
        if num_classes > 0:
            self.classifier = nn.Linear(self.bnneck.num_features, num_classes, bias=False)
            self.classifier.apply(weights_init_classifier)

    def forward(self, feature_map: torch.Tensor) -> ModelOutput:
        """(B, C, H, W) -> ModelOutput with (B, C) features/bn_features and (B, N) logits."""
        features = self.pool(feature_map)  # (B, C)
        bn_features = self.bnneck(features)  # (B, C)
        logits = self.classifier(bn_features) if self.classifier is not None else None  # (B, N)
        return ModelOutput(features=features, bn_features=bn_features, logits=logits)
