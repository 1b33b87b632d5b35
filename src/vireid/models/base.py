"""The shared shape of the CNN re-ID models: a two-stream backbone followed by a re-ID head."""

from __future__ import annotations

import torch
from torch import nn

from vireid.types import ModelOutput


class BackboneHeadModel(nn.Module):
    """``forward(images, modality) = head(backbone(images, modality))``, timm-style split.

    Subclasses set ``self.backbone`` (images, modality -> (B, C, h, w)) and ``self.head``
    ((B, C, h, w) -> :class:`ModelOutput`, with ``reset_classifier``).
    """

    backbone: nn.Module
    head: nn.Module

    def forward_features(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), (B,) -> final backbone map (B, C, h, w)."""
        return self.backbone(images, modality)

    def forward_head(self, feature_map: torch.Tensor) -> ModelOutput:
        """(B, C, h, w) -> ModelOutput."""
        return self.head(feature_map)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) images, (B,) modality labels -> ModelOutput (same type in train and eval)."""
        return self.forward_head(self.forward_features(images, modality))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the identity classifier (e.g. to fine-tune on other identities)."""
        self.head.reset_classifier(num_classes)
