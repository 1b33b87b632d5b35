"""CM-LSP + BN-GE network: attention two-stream ResNet, global, enhanced and stripe branches.

Wang, Li, Ma, "Cross-modal Local Shortest Path and Global Enhancement for Visible-Thermal Person
Re-Identification" (seeds/001 §6 "3.1 网络模型", "3.3 全局特性增强模块"; METHODS.md §9). The seed gives
only headings for the network and for BN-GE; our reading, per METHODS.md's [UNSPEC] defaults:

* backbone: AGW's two-stream ResNet (modality-specific stem, shared layer1-4, non-local blocks
  2 + 3 in layer2/layer3, last stride 1) as the "attention-based two-stream ResNet";
* global branch: GeM pooling -> ``f^g`` (``features``), BNNeck -> bias-free classifier (``L_id^g``);
* BN-GE: a BNNeck-style BatchNorm followed by a linear layer, ``f^eg = FC(BN(f^g))``, with its own
  bias-free classifier (``L_id^eg``) and centre triplet (``L_Tri^eg``);
* local branch: the final map cut into h equal horizontal stripes (average pooling over each stripe's
  rows and the width), each reduced by a shared 1x1 conv + BN + ReLU (as AlignedReID) to the local
  feature ``f^j`` (B, h, d_l), with one bias-free classifier per stripe (``L_id^lv``, ``L_id^lt``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.head import ReIDHead
from vireid.models.layers import GeM, weights_init_classifier, weights_init_kaiming
from vireid.types import ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["CMLSP", "CMLSP_EXTRAS", "TEST_FEATURES"]

CMLSP_EXTRAS: tuple[str, ...] = ("enhanced", "enhanced_logits", "local", "local_logits")
TEST_FEATURES: tuple[str, ...] = ("global", "enhanced", "global+enhanced")
_AGW_NON_LOCAL = (0, 2, 3, 0)


class CMLSP(nn.Module):
    """CM-LSP + BN-GE (seeds/001 §6): two-stream attention ResNet with global, BN-GE and stripe branches.

    ``forward(images (B, 3, H, W), modality (B,))`` returns, in train and eval mode alike,
    ``ModelOutput(features = f^g (B, C) [L_Tri^g], bn_features = the retrieval embedding (see
    ``test_feature``), logits = global classifier (B, N) [L_id^g])`` and ``extras``:

    * ``"enhanced"``: f^eg (B, E) [L_Tri^eg]; ``"enhanced_logits"``: (B, N) [L_id^eg];
    * ``"local"``: stripe features (B, h, d_l) [L_PA^vt]; ``"local_logits"``: (B, h, N) [L_id^lv/lt].

    The ``*_logits`` keys (and ``logits``) are absent / ``None`` with ``num_classes = 0``.

    Args:
        num_classes: training identities (0 = embedding only).
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``. num_specific_stages: 1 (AGW).
        last_stride: stride of layer4 (1). non_local: ``True`` = AGW placement capped by the layer
            depths, ``False`` = none, or blocks per layer1..4. gem_p: GeM exponent (3).
        stripes: h, the horizontal stripe count (6 [UNSPEC]). local_dim: d_l (the 1x1 reduction; 256).
        enhanced_dim: E, width of f^eg (0 = the backbone's C).
        test_feature: the retrieval embedding: ``"global"`` (post-BNNeck f^g, default: ``bn_features`` then
            has the width ``out_dim`` of ``features``, as every model's), ``"enhanced"`` (f^eg) or
            ``"global+enhanced"`` (both L2-normalised and concatenated, C + E wide; the recipes' choice).
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
        stripes: int = 6,
        local_dim: int = 256,
        enhanced_dim: int = 0,
        test_feature: str = "global",
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"CMLSP: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if stripes < 1 or local_dim < 1 or enhanced_dim < 0:
            raise ValueError(f"CMLSP: stripes and local_dim must be >= 1 and enhanced_dim >= 0, got "
                             f"{stripes}, {local_dim}, {enhanced_dim}")
        if test_feature not in TEST_FEATURES:
            raise ValueError(f"CMLSP: test_feature must be one of {TEST_FEATURES}, got {test_feature!r}")
        if isinstance(non_local, bool):
            placement = tuple(min(n, b) for n, b in zip(_AGW_NON_LOCAL, ARCHS[arch])) if non_local else (0, 0, 0, 0)
        else:
            placement = tuple(int(n) for n in non_local)
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained, non_local=placement)
        c = self.backbone.out_channels
        e = int(enhanced_dim) or c
        self.stripes, self.test_feature, self.out_dim = int(stripes), test_feature, c
        self.head = ReIDHead(c, num_classes, GeM(gem_p))
        self.ge_bn = nn.BatchNorm1d(c)  # BN-GE
        self.ge_fc = nn.Linear(c, e)
        self.local_reduce = nn.Sequential(nn.Conv1d(c, local_dim, 1), nn.BatchNorm1d(local_dim), nn.ReLU(inplace=True))
        for m in (self.ge_bn, self.ge_fc, *self.local_reduce):
            m.apply(weights_init_kaiming)
        self.enhanced_dim, self.local_dim = e, int(local_dim)
        self._build_classifiers(num_classes)
        logger.debug("CMLSP(%s): non-local %s, %d stripes x %d, enhanced %d", arch, placement, stripes, local_dim, e)

    def _build_classifiers(self, num_classes: int) -> None:
        self.classifier_eg: nn.Linear | None = None
        self.classifier_local: nn.ModuleList | None = None
        if num_classes > 0:
            self.classifier_eg = nn.Linear(self.enhanced_dim, num_classes, bias=False)
            self.classifier_local = nn.ModuleList(
                nn.Linear(self.local_dim, num_classes, bias=False) for _ in range(self.stripes))
            self.classifier_eg.apply(weights_init_classifier)
            self.classifier_local.apply(weights_init_classifier)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality labels -> ModelOutput (see the class docs)."""
        fmap = self.backbone(images, modality)  # (B, C, h_map, w_map)
        out = self.head(fmap)  # features f^g (B, C), bn_features (B, C), logits (B, N)
        enhanced = self.ge_fc(self.ge_bn(out.features))  # (B, E)
        rows = F.adaptive_avg_pool2d(fmap, (self.stripes, 1)).flatten(2)  # (B, C, h)
        local = self.local_reduce(rows).transpose(1, 2)  # (B, h, d_l)
        extras = {"enhanced": enhanced, "local": local}
        if self.classifier_eg is not None and self.classifier_local is not None:
            extras["enhanced_logits"] = self.classifier_eg(enhanced)  # (B, N)
            extras["local_logits"] = torch.stack(
                [clf(local[:, j]) for j, clf in enumerate(self.classifier_local)], dim=1)  # (B, h, N)
        if self.test_feature == "global":
            embedding = out.bn_features  # (B, C)
        elif self.test_feature == "enhanced":
            embedding = enhanced  # (B, E)
        else:
            embedding = torch.cat([F.normalize(out.bn_features.float(), dim=1),
                                   F.normalize(enhanced.float(), dim=1)], dim=1)  # (B, C + E)
        return ModelOutput(features=out.features, bn_features=embedding, logits=out.logits, extras=extras)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the global, enhanced and stripe classifiers."""
        self.head.reset_classifier(num_classes)
        self._build_classifiers(num_classes)
