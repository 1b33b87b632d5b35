"""Building blocks of the AGW baseline: GeM pooling, the non-local block, the BNNeck, init helpers.

AGW: Ye et al., TPAMI 2021, "Deep Learning for Person Re-identification: A Survey and Outlook",
seeds/001 §1 (METHODS.md §3). The non-local block follows the dot-product form of the public AGW
code; the BNNeck follows Luo et al., CVPRW 2019, "Bag of Tricks and a Strong Baseline for Deep
Person Re-identification".
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import init


class GeM(nn.Module):
    """Generalized-mean pooling, seeds/001 §1 Eq. (GeM): ``f_k = (mean_{x in X_k} x^p)^(1/p)``.

    Inputs are clamped to ``>= eps`` (so fractional powers stay real) and the pooling runs in
    float32 even under autocast (``x^p`` of bf16 activations loses too many bits). ``p = 1`` is
    average pooling; ``p -> inf`` tends to max pooling.

    Args:
        p: the exponent (AGW: 3, fixed).
        learnable: make ``p`` a trained parameter (one scalar shared by all channels).
        eps: lower clamp of the input.
    """

    def __init__(self, p: float = 3.0, learnable: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM: p must be > 0, got {p}")
        p_tensor = torch.tensor(float(p))
        if learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)
        self.learnable = learnable
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C) float32."""
        p = self.p.float()
        x = x.float().clamp(min=self.eps).flatten(2)  # (B, C, H*W)
        return x.pow(p).mean(dim=2).pow(1.0 / p)  # (B, C)

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4g}, learnable={self.learnable}, eps={self.eps}"


class GlobalAvgPool(nn.Module):
    """Global average pooling to a flat float32 vector: (B, C, H, W) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean(dim=(2, 3))  # (B, C) float32, like GeM


class NonLocalBlock(nn.Module):
    """Non-local block, dot-product form (AGW's attention, seeds/001 §1; METHODS.md §3).

    ``y = (theta(x)^T phi(x) / HW) g(x)`` and ``z = BN(W y) + x``, with theta, phi, g and W
    1x1 convolutions (``in_ch -> in_ch // reduction -> in_ch``). The BN weight and bias start at
    0, so the block is the identity at initialisation and a pretrained backbone is unchanged.
    W has no bias: the BN right after it would cancel one.
    """

    def __init__(self, in_ch: int, reduction: int = 2) -> None:
        super().__init__()
        if in_ch < reduction or reduction < 1:
            raise ValueError(f"NonLocalBlock: need in_ch >= reduction >= 1, got in_ch={in_ch}, reduction={reduction}")
        self.in_ch = in_ch
        self.inter_ch = in_ch // reduction
        self.theta = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1)
        self.phi = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1)
        self.g = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1)
        self.W = nn.Conv2d(self.inter_ch, in_ch, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(in_ch)
        init.zeros_(self.bn.weight)
        init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape  # (B, C, H, W)
        # flatten/reshape (never .view) so channels_last inputs work too
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        phi = self.phi(x).flatten(2)  # (B, C', HW)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        affinity = torch.matmul(theta, phi) / (h * w)  # (B, HW, HW)
        y = torch.matmul(affinity, g)  # (B, HW, C')
        y = y.transpose(1, 2).reshape(b, self.inter_ch, h, w)  # (B, C', H, W)
        return self.bn(self.W(y)) + x  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"in_ch={self.in_ch}, inter_ch={self.inter_ch}"


class BNNeck(nn.BatchNorm1d):
    """BNNeck (Luo et al., CVPRW 2019; used by AGW, seeds/001 §1): BatchNorm1d with its bias frozen at 0.

    Metric losses read the feature before it, the identity classifier and retrieval the
    feature after it. Weight starts at 1, bias at 0 with ``requires_grad=False`` ("no shift").
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        init.ones_(self.weight)
        init.zeros_(self.bias)
        self.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D)."""
        return super().forward(x)


def weights_init_kaiming(m: nn.Module) -> None:
    """AGW's ``weights_init_kaiming``: Kaiming-normal convs (fan_in) and linears (fan_out), BN1d ~ N(1, 0.01).

    Use with ``module.apply(weights_init_kaiming)``.
    """
    if isinstance(m, nn.Conv2d):
        init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        if m.bias is not None:
            init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        init.kaiming_normal_(m.weight, a=0, mode="fan_out")
        if m.bias is not None:
            init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm1d):
        init.normal_(m.weight, 1.0, 0.01)
        init.zeros_(m.bias)


def weights_init_classifier(m: nn.Module) -> None:
    """AGW's ``weights_init_classifier``: linear weights ~ N(0, 0.001), bias 0."""
    if isinstance(m, nn.Linear):
        init.normal_(m.weight, 0.0, 0.001)
        if m.bias is not None:
            init.zeros_(m.bias)
