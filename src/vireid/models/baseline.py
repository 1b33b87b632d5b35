"""The plain cross-modal baseline: two-stream ResNet + average pooling + BNNeck + classifier.

AGW without its three additions (no non-local blocks, average instead of GeM pooling), the
"baseline" row of AGW's ablation (Ye et al., TPAMI 2021, seeds/001 §1; METHODS.md §3).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from vireid.models.backbones import TwoStreamResNet
from vireid.models.head import ReIDHead
from vireid.models.layers import GlobalAvgPool
from vireid.models.output import ModelOutput
from vireid.models.registry import register_model


@register_model("baseline")
class Baseline(nn.Module):
    """Two-stream ResNet -> global average pooling -> BNNeck -> bias-free classifier.

    Same output contract and arguments as :class:`~vireid.models.agw.AGW`, minus non-local and GeM.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = TwoStreamResNet(
            arch, num_specific_stages=num_specific_stages, last_stride=last_stride, pretrained=pretrained
        )
        self.head = ReIDHead(self.backbone.out_channels, num_classes, GlobalAvgPool())
        self.out_dim = self.backbone.out_channels

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
        """Replace the identity classifier."""
        self.head.reset_classifier(num_classes)
