"""MAUM's network: two-stream ResNet, GAP, BNNeck and three identity classifiers.

Liu et al., "Learning Memory-Augmented Unidirectional Metrics for Cross-modality Person
Re-identification", CVPR 2022 (seeds/001 §5 "方法介绍"; METHODS.md §7 "Components"):

* ResNet-50 whose first block is split into an RGB and an IR copy, the later blocks shared
  (METHODS.md's recommended reading of "conv2 to conv4 shared": per-modality stem, shared layer1-4);
* global average pooling gives the embedding ``x``;
* three bias-free classifiers: the *common* one on every feature, the *RGB-only* one and the
  *IR-only* one; the rows ``w^R_y`` / ``w^I_y`` of the latter two are the modality-specific proxies
  (MS-Proxies) that :class:`~vireid.methods.maum.losses.MAUMUnidirectional` stores in its memories.

All three classifiers read the post-BNNeck feature (the BNNeck of AGW, the baseline MAUM builds on);
the unidirectional metrics compare that same feature with the proxies (the classifiers' input space).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.head import ReIDHead
from vireid.models.layers import GeM, GlobalAvgPool, weights_init_classifier
from vireid.types import ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["MAUM", "MAUM_EXTRAS"]

MAUM_EXTRAS: tuple[str, ...] = ("logits_rgb", "logits_ir", "proxies_rgb", "proxies_ir")
"""``extras`` keys set when the model has classifiers (documented on :class:`MAUM`)."""


class MAUM(nn.Module):
    """Two-stream ResNet -> GAP -> BNNeck -> common, RGB-only and IR-only classifiers (seeds/001 §5).

    ``forward(images (B, 3, H, W), modality (B,))`` returns, in train and eval mode alike,
    ``ModelOutput(features = pooled x (B, C), bn_features = after the BNNeck (B, C) [classifiers,
    unidirectional metrics, retrieval], logits = common classifier (B, N))`` and, with classifiers,
    ``extras``:

    * ``"logits_rgb"``, ``"logits_ir"``: (B, N) scores of the RGB-only / IR-only classifier for
      every row (the loss keeps the rows of the matching modality);
    * ``"proxies_rgb"``, ``"proxies_ir"``: (N, C) the two classifiers' weights, the MS-Proxies
      (not detached here; the memory detaches them).

    Args:
        num_classes: training identities (0 = embedding only: no classifiers, empty extras).
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"`` (MAUM: resnet50).
        num_specific_stages: modality-specific stages (MAUM: 1 = the first block).
        last_stride: stride of layer4 (1, as AGW).
        non_local: non-local blocks per layer1..4 (MAUM: none).
        pool: ``"gap"`` (MAUM) or ``"gem"`` (p = 3).
        pretrained: ``None``, ``"imagenet"`` (local torch hub cache only) or a state dict file.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        non_local: Sequence[int] = (0, 0, 0, 0),
        pool: str = "gap",
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"MAUM: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if pool not in ("gap", "gem"):
            raise ValueError(f"MAUM: pool must be 'gap' or 'gem', got {pool!r}")
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained, non_local=tuple(non_local))
        channels = self.backbone.out_channels
        self.head = ReIDHead(channels, num_classes, GlobalAvgPool() if pool == "gap" else GeM(3.0))
        self.out_dim = channels
        self.classifier_rgb: nn.Linear | None = None
        self.classifier_ir: nn.Linear | None = None
        self._build_specific(num_classes)
        logger.debug("MAUM(%s): %d classes, pool=%s", arch, num_classes, pool)

    def _build_specific(self, num_classes: int) -> None:
        self.classifier_rgb = self.classifier_ir = None
        if num_classes > 0:
            self.classifier_rgb = nn.Linear(self.out_dim, num_classes, bias=False)
            self.classifier_ir = nn.Linear(self.out_dim, num_classes, bias=False)
            self.classifier_rgb.apply(weights_init_classifier)
            self.classifier_ir.apply(weights_init_classifier)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality labels -> ModelOutput (see the class docs)."""
        out = self.head(self.backbone(images, modality))  # features, bn_features (B, C); logits (B, N)
        if self.classifier_rgb is None or self.classifier_ir is None:
            return out
        out.extras = {
            "logits_rgb": self.classifier_rgb(out.bn_features),  # (B, N)
            "logits_ir": self.classifier_ir(out.bn_features),  # (B, N)
            "proxies_rgb": self.classifier_rgb.weight,  # (N, C)
            "proxies_ir": self.classifier_ir.weight,  # (N, C)
        }
        return out

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the three identity classifiers."""
        self.head.reset_classifier(num_classes)
        self._build_specific(num_classes)
