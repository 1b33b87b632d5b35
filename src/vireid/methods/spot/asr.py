"""SPOT's attended structure representation (ASR), seeds/001 §4 §3.1; METHODS.md §11.

- Fusion: ``F~_S = W_phi2(ReLU(W_phi1([F_I, F_S])))``, two 1x1 conv + BN layers
  ((C_I + C_S) -> (C_I + C_S) -> C_I), a ReLU between them as the equation writes;
- attention over the H x W positions: ``D(j, t) = K(F~_{S,j})^T Q(F~_{S,t})`` with K, Q 1x1 convs,
  read as standard attention (METHODS.md §11 "Ambiguities": the seed swaps m's indices):
  ``m_{j,t} = softmax_t D(j, t)`` and ``F^_{I,j} = sum_t m_{j,t} V(F_{I,t})``: the output position j
  is the row, the softmax runs over the positions t it reads from;
- ``F_IS = F^_I + BN(F_I)``.

``scaled=True`` divides D by sqrt(d_k) (Transformer practice; the seed does not).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ASR", "StructureFusion", "asr_attention"]


class StructureFusion(nn.Module):
    """``phi``: ``[F_I, F_S]`` (B, C_I + C_S, H, W) -> ``F~_S`` (B, C_I, H, W) (seeds/001 §4 §3.1)."""

    def __init__(self, appearance_channels: int, structure_channels: int) -> None:
        super().__init__()
        both = appearance_channels + structure_channels
        self.phi1 = nn.Sequential(nn.Conv2d(both, both, 1, bias=False), nn.BatchNorm2d(both), nn.ReLU(inplace=True))
        self.phi2 = nn.Sequential(nn.Conv2d(both, appearance_channels, 1, bias=False),
                                  nn.BatchNorm2d(appearance_channels))

    def forward(self, appearance: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        """(B, C_I, H, W), (B, C_S, H, W) -> (B, C_I, H, W)."""
        return self.phi2(self.phi1(torch.cat([appearance, structure], dim=1)))


def asr_attention(keys: torch.Tensor, queries: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``m[b, j, t] = softmax_t(scale * K_j . Q_t)`` for (B, d, N) ``keys`` = K(F~_S) and ``queries`` = Q(F~_S).

    Row j (the output position) sums to 1 over t. The softmax runs in float32 (the product follows
    autocast). Returns (B, N, N).
    """
    scores = torch.bmm(keys.transpose(1, 2), queries) * scale  # (B, N_j, N_t): D(j, t)
    return scores.float().softmax(dim=2)  # (B, N, N) normalised over t


class ASR(nn.Module):
    """Attended structure representation: ``(F_I, F_S) -> (F_IS, m)`` (seeds/001 §4 §3.1).

    Args:
        appearance_channels: C_I. structure_channels: C_S.
        qk_channels: d_k of K and Q (METHODS.md leaves it open; default C_I // 8).
        scaled: divide the scores by sqrt(d_k).
    """

    def __init__(self, appearance_channels: int, structure_channels: int, qk_channels: int | None = None,
                 scaled: bool = False) -> None:
        super().__init__()
        d = qk_channels or max(appearance_channels // 8, 1)
        self.qk_channels, self.scaled = d, scaled
        self.fusion = StructureFusion(appearance_channels, structure_channels)
        self.key = nn.Conv2d(appearance_channels, d, 1)
        self.query = nn.Conv2d(appearance_channels, d, 1)
        self.value = nn.Conv2d(appearance_channels, appearance_channels, 1)
        self.bn = nn.BatchNorm2d(appearance_channels)

    def attention(self, appearance: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        """m (B, HW, HW): row j = output position, columns t = positions it attends to (row-major h, w)."""
        fused = self.fusion(appearance, structure)  # (B, C_I, H, W)  F~_S
        scale = 1.0 / math.sqrt(self.qk_channels) if self.scaled else 1.0
        return asr_attention(self.key(fused).flatten(2), self.query(fused).flatten(2), scale)  # (B, HW, HW)

    def forward(self, appearance: torch.Tensor, structure: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C_I, H, W) F_I and (B, C_S, H, W) F_S -> F_IS (B, C_I, H, W) and m (B, HW, HW)."""
        b, c, h, w = appearance.shape
        m = self.attention(appearance, structure)  # (B, HW, HW)
        v = self.value(appearance).flatten(2)  # (B, C_I, HW)
        attended = torch.bmm(v, m.transpose(1, 2).to(v.dtype)).reshape(b, c, h, w)  # (B, C_I, H, W): out_j = sum_t m_jt V_t
        return attended + self.bn(appearance), m
