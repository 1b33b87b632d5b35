"""NFormer network: a CNN embedding refined by NFormer blocks over the whole batch / test set.

Wang et al., "NFormer: Robust Person Re-identification with Neighbor Transformer", CVPR 2022
(seeds/001 §3; METHODS.md §8). Pipeline (§3.1): CNN + pooling -> NFormer blocks (LAA + RNS) over
all input images -> BNNeck -> classifier; trained with identity + triplet losses on the refined
features [UNSPEC in the seed -> CE + triplet, METHODS.md], plus the same on the CNN embedding
(the public code trains its backbone with ID + triplet before the NFormer stage; we train both
at once).

Test time: one image cannot be refined alone, so the eval-mode forward returns the CNN embedding
(the NFormer's input); the joint refinement of every query and gallery feature is the test-time
option ``--rerank nformer`` (:mod:`vireid.methods.nformer.refine`), which reads this model's
``nformer`` encoder from the run's checkpoint.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import torch
from torch import nn

from vireid.methods.nformer.blocks import NFormerEncoder
from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.head import ReIDHead
from vireid.models.layers import GeM, weights_init_classifier
from vireid.types import ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["NFormerNet"]


class NFormerNet(nn.Module):
    """Two-stream ResNet -> GeM -> BNNeck (the CNN embedding) -> NFormer encoder -> classifier.

    ``forward(images (B, 3, H, W), modality (B,))`` returns a :class:`ModelOutput` whose fields are the
    CNN embedding in train and eval mode alike: ``features`` (B, C) GeM feature before the BNNeck,
    ``bn_features`` (B, C) after it [retrieval without refinement], ``logits`` (B, N) of its classifier.
    In training mode the batch's B embeddings are also refined jointly and ``extras`` holds
    ``"refined_features"`` (B, d) [triplet], ``"refined_bn_features"`` (B, d) after the NFormer's
    BNNeck and ``"refined_logits"`` (B, N) of the NFormer classifier
    [:class:`~vireid.methods.nformer.losses.RefinedIdentity`]. One image cannot be refined alone, so
    eval mode returns no extras; refinement is the test-time option.

    Args:
        num_classes: training identities (0 = no classifiers).
        arch, num_specific_stages, last_stride, pretrained, gem_p: the CNN (as AGW's backbone).
        dim, blocks, heads, landmarks, topk, neighbours, cross_modal_quota, dropout, pre_norm: the NFormer
            (:class:`~vireid.methods.nformer.blocks.NFormerEncoder`).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        gem_p: float = 3.0,
        dim: int = 256,
        blocks: int = 4,
        heads: int = 2,
        landmarks: int = 5,
        topk: int = 20,
        neighbours: Literal["affinity", "input"] = "affinity",
        cross_modal_quota: int = 0,
        dropout: float = 0.1,
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"NFormerNet: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained)
        channels = self.backbone.out_channels
        self.head = ReIDHead(channels, num_classes, GeM(gem_p))
        self.nformer = NFormerEncoder(channels, dim=dim, blocks=blocks, heads=heads, landmarks=landmarks, topk=topk,
                                      neighbours=neighbours, cross_modal_quota=cross_modal_quota, dropout=dropout,
                                      pre_norm=pre_norm)
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.classifier = nn.Linear(dim, num_classes, bias=False)
            self.classifier.apply(weights_init_classifier)
        self.out_dim = channels
        logger.debug("NFormerNet(%s): d=%d, %d blocks, %d heads, m=%d, k=%d, %s neighbours, quota %d", arch, dim,
                     blocks, heads, landmarks, topk, neighbours, cross_modal_quota)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality labels -> ModelOutput (see the class docs)."""
        out = self.head(self.backbone(images, modality))  # (B, C) features / bn_features, (B, N) logits
        if not self.training:
            return out
        refined, refined_bn = self.nformer(out.bn_features, modality)  # (B, d) each
        out.extras.update(refined_features=refined, refined_bn_features=refined_bn)
        if self.classifier is not None:
            out.extras["refined_logits"] = self.classifier(refined_bn)  # (B, N)
        return out

    @torch.no_grad()
    def refine(self, embeddings: torch.Tensor, modality: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Jointly refined retrieval embeddings (N, d) of N CNN embeddings (eval mode; see
        :meth:`NFormerEncoder.forward` for ``topk``, ``cross_modal_quota``, ``generator``, ``chunk_size``)."""
        was = self.nformer.training
        self.nformer.eval()
        try:
            return self.nformer(embeddings, modality, **kwargs)[1]
        finally:
            self.nformer.train(was)
