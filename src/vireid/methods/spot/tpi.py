"""SPOT's transformer-based part interaction (TPI), seeds/001 §4 §3.2; METHODS.md §11.

``F^_P = Transformer(F_P + PE)`` over the p part features, with the sinusoidal encoding
``PE(pos, 2k) = sin(pos / Q^(2k / d_m))``, ``PE(pos, 2k + 1) = cos(pos / Q^(2k / d_m))``, read as
METHODS.md §11 corrects the seed: ``pos`` is the part index, ``d_m`` the feature width and ``2k`` /
``2k + 1`` the dimension index (the seed calls d_m and i "a patch's row and column"). Q = 10000.

The transformer is any module mapping a token sequence (B, p, C) to (B, p, C); the default is
torch's ``nn.TransformerEncoder`` (2 pre-norm layers, 8 heads, METHODS.md §11 defaults).
``F_IP`` is the mean of its p outputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PartInteraction", "sinusoidal_positions"]


def sinusoidal_positions(count: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(count, dim) float32: row ``pos``, column ``2k`` = sin(pos / base^(2k/dim)), ``2k + 1`` = cos(same)."""
    if count < 1 or dim < 1 or base <= 0:
        raise ValueError(f"sinusoidal_positions: need count >= 1, dim >= 1, base > 0; got {count}, {dim}, {base}")
    pos = torch.arange(count, dtype=torch.float64).unsqueeze(1)  # (count, 1)
    two_k = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(dim/2),)
    angle = pos / base ** (two_k / dim)  # (count, ceil(dim/2))
    pe = torch.zeros(count, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe.float()


def default_encoder(dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float) -> nn.Module:
    """torch's TransformerEncoder, pre-norm, GELU, batch-first: (B, p, C) -> (B, p, C)."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=int(dim * mlp_ratio), dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


class PartInteraction(nn.Module):
    """TPI: part features (B, p, C) -> interacted parts ``F^_P`` (B, p, C) and ``F_IP`` = their mean (B, C).

    Args:
        dim: C (the appearance channels). parts: p. depth, heads: transformer layers and heads (2, 8).
        mlp_ratio: feed-forward width / C. dropout: transformer dropout. base: Q of the encoding (10000).
        encoder: a module (B, p, C) -> (B, p, C) to use instead of the default (e.g. ViT blocks).
    """

    def __init__(self, dim: int, parts: int = 6, *, depth: int = 2, heads: int = 8, mlp_ratio: float = 2.0,
                 dropout: float = 0.0, base: float = 10000.0, encoder: nn.Module | None = None) -> None:
        super().__init__()
        if encoder is None and (depth < 1 or heads < 1 or dim % heads):
            raise ValueError(f"PartInteraction: need depth >= 1 and heads dividing dim; got depth {depth}, "
                             f"heads {heads}, dim {dim}")
        self.parts, self.dim = parts, dim
        self.register_buffer("positions", sinusoidal_positions(parts, dim, base), persistent=False)  # (p, C)
        self.encoder = encoder if encoder is not None else default_encoder(dim, depth, heads, mlp_ratio, dropout)

    def forward(self, part_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, p, C) -> (F^_P (B, p, C), F_IP (B, C))."""
        if part_features.dim() != 3 or part_features.shape[1:] != (self.parts, self.dim):
            raise ValueError(f"PartInteraction: expected part features (B, {self.parts}, {self.dim}), "
                             f"got {tuple(part_features.shape)}")
        tokens = self.encoder(part_features + self.positions.to(part_features.dtype))  # (B, p, C)
        return tokens, tokens.mean(dim=1)  # (B, p, C), (B, C)
