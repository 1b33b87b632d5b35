"""AGW: the cross-modal re-ID baseline with non-local Attention, GeM pooling and Weighted
regularized triplet (Ye et al., TPAMI 2021, "Deep Learning for Person Re-identification: A
Survey and Outlook", seeds/001 §1; METHODS.md §3). The WRT loss lives in ``vireid.losses``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.base import BackboneHeadModel
from vireid.models.head import ReIDHead
from vireid.models.layers import GeM
from vireid.models.mobilenet import MOBILENET_ARCHS, TwoStreamMobileNetV2

logger = logging.getLogger(__name__)

AGW_NON_LOCAL = (0, 2, 3, 0)  # public AGW code: 2 blocks in layer2, 3 in layer3


def agw_non_local(arch: str) -> tuple[int, int, int, int]:
    """AGW's non-local placement, capped at the number of blocks of each layer of ``arch``.

    ResNet-34/50: ``(0, 2, 3, 0)``; ResNet-18 (2 blocks per layer): ``(0, 2, 2, 0)``. (The public
    code indexes the blocks of ResNet-50, so with ResNet-18 it silently inserts none.)
    """
    depths = ARCHS.get(arch) or MOBILENET_ARCHS[arch]
    capped = tuple(min(n, b) for n, b in zip(AGW_NON_LOCAL, depths))
    if capped != AGW_NON_LOCAL:
        logger.info("AGW(%s): non-local blocks capped to %s by the layer depths %s", arch, capped, depths)
    return capped  # type: ignore[return-value]


class AGW(BackboneHeadModel):
    """Two-stream ResNet -> GeM -> BNNeck -> bias-free classifier (AGW, seeds/001 §1).

    ``forward(images (B,3,H,W), modality (B,))`` returns, in train and eval mode alike,
    ``ModelOutput(features=GeM feature (B, C) [WRT], bn_features=after BNNeck (B, C)
    [identity loss, retrieval], logits=(B, num_classes) or None when num_classes == 0)``.
    Works with ``model.to(memory_format=torch.channels_last)`` and channels_last inputs.

    Args:
        num_classes: training identities (0 = embedding only, no classifier).
        arch: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` (AGW: resnet50) or ``"mobilenet_v2"``
            (:class:`~vireid.models.mobilenet.TwoStreamMobileNetV2`, same split points).
        num_specific_stages: modality-specific stages (AGW: 1 = the stem).
        last_stride: stride of layer4 (AGW: 1).
        non_local: ``True`` = AGW placement (see :func:`agw_non_local`), ``False`` = none, or
            blocks per layer1..4.
        gem_p: GeM exponent (AGW: 3). gem_learnable: train it.
        pretrained: ``None``, ``"imagenet"`` (local torch hub cache only) or a state dict file.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        non_local: bool | Sequence[int] = True,
        gem_p: float = 3.0,
        gem_learnable: bool = False,
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS and arch not in MOBILENET_ARCHS:
            raise ValueError(f"AGW: unknown arch {arch!r}; valid: {sorted(ARCHS) + sorted(MOBILENET_ARCHS)}")
        if isinstance(non_local, bool):
            placement = agw_non_local(arch) if non_local else (0, 0, 0, 0)
        else:
            placement = tuple(non_local)
        backbone_cls = TwoStreamMobileNetV2 if arch in MOBILENET_ARCHS else TwoStreamResNet
        self.backbone = backbone_cls(
            arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
            pretrained=pretrained, non_local=placement,
        )
        self.head = ReIDHead(self.backbone.out_channels, num_classes, GeM(gem_p, learnable=gem_learnable))
        self.out_dim = self.backbone.out_channels
