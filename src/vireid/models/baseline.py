"""The plain cross-modal baseline: two-stream ResNet + average pooling + BNNeck + classifier.

AGW without its three additions (no non-local blocks, average instead of GeM pooling), the
"baseline" row of AGW's ablation (Ye et al., TPAMI 2021, seeds/001 §1; METHODS.md §3).
"""

from __future__ import annotations

import os

from vireid.models.backbones import TwoStreamResNet
from vireid.models.base import BackboneHeadModel
from vireid.models.head import ReIDHead
from vireid.models.layers import GlobalAvgPool
from vireid.models.mobilenet import MOBILENET_ARCHS, TwoStreamMobileNetV2
from vireid.models.registry import register_model


@register_model("baseline")
class Baseline(BackboneHeadModel):
    """Two-stream ResNet -> global average pooling -> BNNeck -> bias-free classifier.

    Same output contract and arguments as :class:`~vireid.methods.agw.model.AGW`, minus non-local and GeM.
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
        backbone_cls = TwoStreamMobileNetV2 if arch in MOBILENET_ARCHS else TwoStreamResNet
        self.backbone = backbone_cls(
            arch, num_specific_stages=num_specific_stages, last_stride=last_stride, pretrained=pretrained
        )
        self.head = ReIDHead(self.backbone.out_channels, num_classes, GlobalAvgPool())
        self.out_dim = self.backbone.out_channels
