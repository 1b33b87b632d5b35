"""SPOT's structure branch: keypoint heatmaps -> structure features ``F_S`` (relation net) -> part masks.

Chen et al., "Structure-Aware Positional Transformer for Visible-Infrared Person Re-Identification",
IEEE TIP 2022 (seeds/001 §4 §3.1-3.2; METHODS.md §11):

- ``F_S = N_r(S)`` (§3.1): a relation net of four 3x3 conv-BN-ReLU layers and two 2x2 max-poolings
  over the K_S keypoint heatmaps ``S``, which are first resized to 4x the appearance map (METHODS.md
  §11 default), so ``F_S`` has the appearance map's size (C_S x H x W);
- ``M = W_theta(F_S)`` (§3.2): a 1x1 conv + sigmoid, p part masks (p x H x W);
- ``f_i = (1 / K^i) sum_{h,w} M^i_{h,w} F_{I,h,w}`` with ``K^i = sum_{h,w} M^i_{h,w} + eps``
  (METHODS.md §11: the seed's M-bar read as M);
- the uniform-heatmap fallback (METHODS.md §11 "External inputs") when no heatmaps are given:
  every joint's map is ``1 / (H_S W_S)`` (the value of :func:`vireid.data.aux_store.uniform_heatmaps`),
  so ``F_S`` carries no structure and ASR reduces to appearance self-attention.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["HEATMAP_SCALE", "PartMasks", "RelationNet", "part_pool", "resize_heatmaps", "uniform_heatmaps"]

HEATMAP_SCALE = 4
"""The relation net's two poolings halve twice: heatmaps enter at 4x the appearance map's size."""


def uniform_heatmaps(batch: int, joints: int, height: int, width: int, *, like: torch.Tensor) -> torch.Tensor:
    """(batch, joints, height, width) heatmaps of value ``1 / (height * width)`` (SPOT's fallback)."""
    return torch.full((batch, joints, height, width), 1.0 / (height * width), dtype=torch.float32, device=like.device)


def resize_heatmaps(heatmaps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, height, width) float32; unchanged when the size already matches.

    Down-sizing averages (area), up-sizing interpolates bilinearly, so a heatmap's mass per region
    is kept either way.
    """
    x = heatmaps.float()
    if tuple(x.shape[-2:]) == (height, width):
        return x
    if x.shape[-2] >= height and x.shape[-1] >= width:
        return F.adaptive_avg_pool2d(x, (height, width))
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RelationNet(nn.Module):
    """``N_r`` of seeds/001 §4 Eq. ``F_S = N_r(S)``: conv, conv, pool, conv, conv, pool (4 convs, 2 poolings).

    Args:
        joints: K_S, heatmap channels (17 COCO joints from :mod:`vireid.data.aux`; OpenPose gives 18).
        out_channels: C_S. hidden: channels of the first two convs (the next two use ``2 * hidden``
            then ``out_channels``).
    """

    def __init__(self, joints: int = 17, out_channels: int = 256, hidden: int = 64) -> None:
        super().__init__()
        if min(joints, out_channels, hidden) < 1:
            raise ValueError(f"RelationNet: joints, out_channels and hidden must be >= 1, got "
                             f"{joints}, {out_channels}, {hidden}")
        self.joints, self.out_channels = joints, out_channels
        self.body = nn.Sequential(
            _conv_bn_relu(joints, hidden), _conv_bn_relu(hidden, hidden), nn.MaxPool2d(2),
            _conv_bn_relu(hidden, 2 * hidden), _conv_bn_relu(2 * hidden, out_channels), nn.MaxPool2d(2),
        )

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """(B, K_S, 4H, 4W) -> (B, C_S, H, W)."""
        if heatmaps.dim() != 4 or heatmaps.shape[1] != self.joints:
            raise ValueError(f"RelationNet: expected heatmaps (B, {self.joints}, H_S, W_S), got {tuple(heatmaps.shape)}")
        return self.body(heatmaps)


class PartMasks(nn.Module):
    """``M = W_theta(F_S)``: 1x1 conv + sigmoid, (B, C_S, H, W) -> (B, p, H, W) in (0, 1) (seeds/001 §4 §3.2)."""

    def __init__(self, in_channels: int, parts: int = 6) -> None:
        super().__init__()
        if parts < 1:
            raise ValueError(f"PartMasks: parts must be >= 1, got {parts}")
        self.parts = parts
        self.conv = nn.Conv2d(in_channels, parts, kernel_size=1)

    def forward(self, structure: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(structure))  # (B, p, H, W)


def part_pool(masks: torch.Tensor, features: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Part features ``f_i = sum_{h,w} M^i_{h,w} F_{h,w} / (sum_{h,w} M^i_{h,w} + eps)`` (seeds/001 §4 §3.2).

    Args:
        masks: (B, p, H, W) part masks M. features: (B, C, H, W) the map being pooled.
    Returns:
        (B, p, C) float32.
    """
    if masks.dim() != 4 or features.dim() != 4 or masks.shape[0] != features.shape[0] \
            or masks.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"part_pool: expected masks (B, p, H, W) and features (B, C, H, W) of one B, H, W; "
                         f"got {tuple(masks.shape)} and {tuple(features.shape)}")
    m = masks.float().flatten(2)  # (B, p, HW)
    f = features.float().flatten(2)  # (B, C, HW)
    weighted = torch.bmm(m, f.transpose(1, 2))  # (B, p, C)
    return weighted / (m.sum(dim=2, keepdim=True) + eps)  # (B, p, C)
