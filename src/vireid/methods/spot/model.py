"""SPOT network: Chen et al., "Structure-Aware Positional Transformer for Visible-Infrared Person
Re-Identification", IEEE TIP 2022 (seeds/001 §4; METHODS.md §11).

Appearance ``F_I = N_shared(N_specific(I))`` (two-stream ResNet), structure ``F_S = N_r(S)`` from
keypoint heatmaps (:mod:`.structure`), ASR ``F_IS = F^_I + BN(F_I)`` (:mod:`.asr`), TPI over the
structure-masked part features of ``F_IS`` (:mod:`.tpi`), and the fusion block
``F_IF = W_gamma([F_IS, F_IP])`` (W_gamma in R^{C x 2C}). Four embeddings, each with a BNNeck and an
identity classifier, feed the four loss terms of ``L = L_B + lambda1 L_IS + lambda2 L_IP + L_IF``
(:mod:`.losses`); ``F_IF`` is the retrieval feature.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar, Literal

import torch
from torch import nn

from vireid.methods.spot.asr import ASR
from vireid.methods.spot.structure import HEATMAP_SCALE, PartMasks, RelationNet, part_pool, resize_heatmaps, uniform_heatmaps
from vireid.methods.spot.tpi import PartInteraction
from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.layers import BNNeck, GeM, weights_init_classifier
from vireid.types import ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["BRANCHES", "SPOT", "SPOT_EXTRAS", "STRUCTURES"]

BRANCHES: tuple[str, ...] = ("base", "is", "ip", "if")
"""The four supervised embeddings: pooled F_I (L_B), pooled F_IS (L_IS), F_IP (L_IP), F_IF (L_IF)."""
SPOT_EXTRAS: tuple[str, ...] = tuple(f"{b}_{k}" for b in BRANCHES[:3] for k in ("features", "bn_features", "logits")) \
    + ("part_masks", "uniform_structure")
STRUCTURES: tuple[str, ...] = ("keypoints", "uniform")


class _Embedding(nn.Module):
    """BNNeck + bias-free identity classifier on a (B, C) embedding."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bnneck = BNNeck(dim)
        self.classifier: nn.Linear | None = None
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = None
        if num_classes > 0:
            self.classifier = nn.Linear(self.bnneck.num_features, num_classes, bias=False)
            self.classifier.apply(weights_init_classifier)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        bn = self.bnneck(features.float())  # (B, C)
        return bn, (self.classifier(bn) if self.classifier is not None else None)  # (B, C), (B, N)


class SPOT(nn.Module):
    """SPOT (seeds/001 §4): ``model(images, modality, aux={"heatmaps": (B, K_S, H_S, W_S)}) -> ModelOutput``.

    ``features`` / ``bn_features`` / ``logits`` are those of the fused ``F_IF`` (retrieval uses
    ``bn_features``). ``extras`` (train and eval mode alike):

    * ``"<b>_features"``, ``"<b>_bn_features"``, ``"<b>_logits"`` for b in ``base`` (GeM of F_I),
      ``is`` (average of F_IS: F_IS is not non-negative, so GeM does not apply), ``ip`` (F_IP);
      (B, C), (B, C), (B, num_classes) (logits only with a classifier);
    * ``"part_masks"``: (B, p, H, W) the part masks M; ``"uniform_structure"``: (B,) bool, True where
      the uniform-heatmap fallback replaced missing heatmaps.

    Heatmaps come from ``aux["heatmaps"]`` (:class:`vireid.data.aux_dataset.AuxImageDataset`: COCO
    joints as Gaussians at 1/4 of the image size) and are resized to 4x the appearance map. Without
    them (no ``aux`` or no ``"heatmaps"`` key), or with ``structure="uniform"``, every joint's map
    is uniform (METHODS.md §11 fallback) and a warning is logged (once per model; the count is kept
    in :attr:`fallback_batches`). An image whose heatmaps are all zero (no labelled joint: a
    sidecar without its entry under ``data.aux.missing: empty``, or every joint cropped away) gets
    the uniform heatmaps too (warned once, counted in :attr:`fallback_images`).

    Args:
        num_classes: training identities (0 = embedding only).
        arch, num_specific_stages, last_stride, pretrained: the two-stream ResNet (as AGW: stem specific).
        joints: K_S heatmap channels (17 COCO joints; OpenPose's 18 with a neck also works).
        structure_channels: C_S. relation_hidden: width of the relation net's first convs.
        qk_channels: d_k of ASR's K and Q (None: C_I // 8). scaled_attention: divide scores by sqrt(d_k).
        parts: p. tpi_depth, tpi_heads, tpi_mlp_ratio, tpi_dropout: the part transformer.
        position_base: Q of the sinusoidal part encoding. gem_p: GeM exponent of the base branch.
        structure: ``"keypoints"`` (read ``aux["heatmaps"]``, fall back when absent) or ``"uniform"``
            (always the fallback: the ablation without structure).
    """

    aux_inputs: ClassVar[tuple[str, ...]] = ("heatmaps",)

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        joints: int = 17,
        structure_channels: int = 256,
        relation_hidden: int = 64,
        qk_channels: int | None = None,
        scaled_attention: bool = False,
        parts: int = 6,
        tpi_depth: int = 2,
        tpi_heads: int = 8,
        tpi_mlp_ratio: float = 2.0,
        tpi_dropout: float = 0.0,
        position_base: float = 10000.0,
        gem_p: float = 3.0,
        structure: Literal["keypoints", "uniform"] = "keypoints",
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"SPOT: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if structure not in STRUCTURES:
            raise ValueError(f"SPOT: structure must be one of {STRUCTURES}, got {structure!r}")
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained)
        c = self.backbone.out_channels
        if c % tpi_heads:
            raise ValueError(f"SPOT: tpi_heads ({tpi_heads}) must divide the feature width {c} of {arch}")
        self.joints, self.structure, self.out_dim = joints, structure, c
        self.relation = RelationNet(joints, structure_channels, relation_hidden)
        self.asr = ASR(c, structure_channels, qk_channels, scaled=scaled_attention)
        self.part_masks = PartMasks(structure_channels, parts)
        self.tpi = PartInteraction(c, parts, depth=tpi_depth, heads=tpi_heads, mlp_ratio=tpi_mlp_ratio,
                                   dropout=tpi_dropout, base=position_base)
        self.gem = GeM(gem_p)
        self.fuse = nn.Linear(2 * c, c, bias=False)  # W_gamma in R^{C x 2C}
        self.heads = nn.ModuleDict({b: _Embedding(c, num_classes) for b in BRANCHES})
        self.fallback_batches = 0  # batches without heatmaps (or structure="uniform")
        self.fallback_images = 0  # images whose heatmaps are all zero (no labelled joint)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the four identity classifiers."""
        for head in self.heads.values():
            head.reset_classifier(num_classes)

    def _heatmaps(self, aux: dict[str, torch.Tensor] | None, b: int, h: int, w: int,
                  like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K_S, 4h, 4w) heatmaps and (B,) bool "uniform fallback used"."""
        given = None if self.structure == "uniform" or aux is None else aux.get("heatmaps")
        size = (HEATMAP_SCALE * h, HEATMAP_SCALE * w)
        if given is None:
            self.fallback_batches += 1
            if self.fallback_batches == 1:
                why = "structure='uniform'" if self.structure == "uniform" else "no aux['heatmaps'] in the batch"
                logger.warning("SPOT: %s; using uniform keypoint heatmaps (METHODS.md §11 fallback: ASR reduces to "
                               "appearance self-attention and the part masks carry no pose; expect lower accuracy)", why)
            return uniform_heatmaps(b, self.joints, *size, like=like), torch.ones(b, dtype=torch.bool, device=like.device)
        if given.dim() != 4 or given.shape[0] != b or given.shape[1] != self.joints:
            raise ValueError(f"SPOT: aux['heatmaps'] must be (B={b}, K_S={self.joints}, H_S, W_S), got {tuple(given.shape)}")
        heatmaps = resize_heatmaps(given.to(like.device), *size)  # (B, K_S, 4h, 4w)
        empty = heatmaps.flatten(1).abs().amax(dim=1) == 0  # (B,) no labelled joint (data.aux.missing: empty)
        if bool(empty.any()):
            self.fallback_images += int(empty.sum())
            if self.fallback_images == int(empty.sum()):
                logger.warning("SPOT: %d image(s) of a batch have no labelled keypoint; using uniform keypoint "
                               "heatmaps for them (METHODS.md §11 fallback; counted in fallback_images)", int(empty.sum()))
            uniform = uniform_heatmaps(b, self.joints, *size, like=like)
            heatmaps = torch.where(empty[:, None, None, None], uniform, heatmaps)
        return heatmaps, empty

    def forward(self, images: torch.Tensor, modality: torch.Tensor,
                aux: dict[str, torch.Tensor] | None = None) -> ModelOutput:
        """(B, 3, H, W) images, (B,) modality, optional aux with "heatmaps" -> ModelOutput (class docs)."""
        appearance = self.backbone(images, modality)  # (B, C, h, w)  F_I
        b, _, h, w = appearance.shape
        heatmaps, uniform = self._heatmaps(aux, b, h, w, appearance)  # (B, K_S, 4h, 4w)
        structure = self.relation(heatmaps.to(memory_format=torch.contiguous_format))  # (B, C_S, h, w)  F_S
        if structure.shape[-2:] != (h, w):
            raise RuntimeError(f"SPOT: structure map {tuple(structure.shape[-2:])} != appearance map {(h, w)}")
        f_is, _ = self.asr(appearance, structure)  # (B, C, h, w)  F_IS
        masks = self.part_masks(structure)  # (B, p, h, w)  M
        parts = part_pool(masks, f_is)  # (B, p, C)  F_P (TPI reads F_IS, METHODS.md §11)
        _, f_ip = self.tpi(parts)  # (B, C)  F_IP
        pooled = {"base": self.gem(appearance), "is": f_is.float().mean(dim=(2, 3)), "ip": f_ip.float()}  # (B, C)
        pooled["if"] = self.fuse(torch.cat([pooled["is"], pooled["ip"]], dim=1)).float()  # (B, C)  F_IF
        extras: dict[str, torch.Tensor] = {"part_masks": masks, "uniform_structure": uniform}
        out = None
        for name in BRANCHES:
            bn, logits = self.heads[name](pooled[name])
            if name == "if":
                out = ModelOutput(features=pooled[name], bn_features=bn, logits=logits, extras=extras)
            else:
                extras[f"{name}_features"], extras[f"{name}_bn_features"] = pooled[name], bn
                if logits is not None:
                    extras[f"{name}_logits"] = logits
        assert out is not None
        return out
