"""The MoS network: a re-ID CNN whose retrieval embedding is the set of non-negative pattern
activations ``g`` (seeds/002 §3; METHODS.md §13 [UNSPEC→g = post-ReLU GAP]).

Any backbone whose last map is post-ReLU works (ResNet's last block ends in a ReLU, MobileNetV2's
last layer in a ReLU6): global average pooling then gives ``g`` (B, C) >= 0. The BNNeck and the
identity classifier sit on top for the identity loss, as in the project's other CNN models, but
retrieval reads ``g`` itself (:class:`SetOutput`), so the Jaccard set distance and the Euclidean /
cosine distances it is compared with score the same features.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.base import BackboneHeadModel
from vireid.models.head import ReIDHead
from vireid.models.layers import GlobalAvgPool
from vireid.models.mobilenet import MOBILENET_ARCHS, TwoStreamMobileNetV2
from vireid.types import ModelOutput


@dataclass
class SetOutput(ModelOutput):
    """A :class:`ModelOutput` whose retrieval embedding is ``features`` (the non-negative set ``g``)."""

    @property
    def embedding(self) -> torch.Tensor:
        return self.features


class MoSNet(BackboneHeadModel):
    """Backbone -> global average pooling (``features`` = g >= 0, retrieval) -> BNNeck -> classifier.

    ``forward(images (B,3,H,W), modality (B,))`` returns, in train and eval mode alike,
    ``SetOutput(features=g (B, C) >= 0 [Jaccard triplet, retrieval], bn_features=BNNeck(g) (B, C)
    [identity loss], logits=(B, num_classes) or None)``.

    Args:
        num_classes: training identities (0 = embedding only).
        arch: ``resnet18|34|50`` or ``mobilenet_v2``.
        num_specific_stages: modality-specific stages (0 for single-modality data: one stream).
        last_stride: stride of the last stage (1 doubles the final map).
        pretrained: ``None``, ``"imagenet"``, ``"imagenet-offline"`` (MobileNetV2) or a state dict file.
    """

    def __init__(self, num_classes: int, *, arch: str = "resnet50", num_specific_stages: int = 0,
                 last_stride: int = 1, pretrained: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        if arch not in ARCHS and arch not in MOBILENET_ARCHS:
            raise ValueError(f"MoSNet: unknown arch {arch!r}; valid: {sorted(ARCHS) + sorted(MOBILENET_ARCHS)}")
        backbone_cls = TwoStreamMobileNetV2 if arch in MOBILENET_ARCHS else TwoStreamResNet
        self.backbone = backbone_cls(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                     pretrained=pretrained)
        self.out_dim = self.backbone.out_channels
        self.head = ReIDHead(self.backbone.out_channels, num_classes, GlobalAvgPool())

    def forward_head(self, feature_map: torch.Tensor) -> SetOutput:
        """(B, C, h, w) post-ReLU map -> SetOutput (g = its channel means)."""
        out = self.head(feature_map)
        return SetOutput(features=out.features, bn_features=out.bn_features, logits=out.logits, extras=out.extras)
