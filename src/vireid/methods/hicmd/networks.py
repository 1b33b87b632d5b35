"""The ID-PIG networks of Hi-CMD (seeds/001 §9 "2.1 ID-PIG 网络"; METHODS.md §12): the prototype
encoder ``E_p``, the attribute encoder ``E_a`` (style ``a^s``, illumination ``a^c``, pose ``a^p``),
the AdaIN decoder ``G(p, a^s, a^c, a^p)`` and the per-modality image discriminators.

MUNIT-style building blocks (METHODS.md §12 Settings: "MUNIT-style networks with AdaIN"), sized by
one width ``dim`` so that the CPU recipe runs at 64x32: ``E_p`` keeps a spatial map at 1/4 of the
input (instance-normalised residual blocks), ``E_a`` pools a strided stack into vectors, and the
decoder modulates residual blocks on ``p`` with AdaIN parameters predicted by an MLP from
``[a^s; a^c; a^p]``, then upsamples back to the image. Images enter and leave the decoder as
pixels in [0, 1]; the encoders see ImageNet-normalised images (the data pipeline's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaINResBlock", "AttributeEncoder", "Decoder", "ImageDiscriminator", "PrototypeEncoder", "ResBlock",
           "init_kaiming"]


def init_kaiming(module: nn.Module) -> None:
    """MUNIT's ``init: kaiming`` for the generator: He-normal weights (fan_in, ReLU gain) and zero
    biases in every conv and linear layer of ``module``.

    PyTorch's default (He-uniform with a = sqrt(5), a gain of 1/sqrt(3) per layer) shrinks the signal
    of the attribute encoder, which has no normalisation: at 64x32 its pooled activations differed
    between images by 0.006 (standard deviation over 80 test images, against 0.11 with this init),
    so the decoder saw nearly the same ``a^s``, ``a^c``, ``a^p`` for every image.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv(cin: int, cout: int, k: int, s: int, norm: str = "in", leaky: float = 0.0) -> nn.Sequential:
    """Reflection-padded conv -> norm ("in", "ln" = GroupNorm(1), "none") -> ReLU (LeakyReLU if ``leaky`` > 0)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(k // 2 if k % 2 else (k - 1) // 2), nn.Conv2d(cin, cout, k, s)]
    if norm == "in":
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    elif norm == "ln":
        layers.append(nn.GroupNorm(1, cout))
    layers.append(nn.LeakyReLU(leaky, inplace=True) if leaky > 0 else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and a skip connection (channels unchanged)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim, affine=True), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # (B, C, h, w)


class PrototypeEncoder(nn.Module):
    """``E_p``: image (B, 3, H, W) -> prototype code ``p`` (B, 4*dim, H/4, W/4).

    Returns ``(p, levels)`` with ``levels`` the intermediate maps at 1/2 and 1/4 of the input (the
    hierarchical feature learner reads only ``p`` and ``a^s``; the levels are for diagnostics).
    """

    def __init__(self, dim: int = 16, num_res: int = 2) -> None:
        super().__init__()
        self.stem = _conv(3, dim, 7, 1)
        self.down1 = _conv(dim, 2 * dim, 4, 2)
        self.down2 = _conv(2 * dim, 4 * dim, 4, 2)
        self.res = nn.Sequential(*[ResBlock(4 * dim) for _ in range(num_res)])
        self.out_channels = 4 * dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x1 = self.down1(self.stem(images))  # (B, 2d, H/2, W/2)
        x2 = self.down2(x1)  # (B, 4d, H/4, W/4)
        return self.res(x2), [x1, x2]


class AttributeEncoder(nn.Module):
    """``E_a``: image (B, 3, H, W) -> ``a^s`` (B, style_dim), and mean / log-variance of
    ``a^ex = [a^c; a^p]`` (B, illum_dim + pose_dim) each (VAE-style ID-excluded codes; METHODS.md §12).

    No normalisation layers (instance norm would erase the global statistics these codes carry).
    ``leaky`` > 0 uses LeakyReLU: with ReLU (and He init, :func:`init_kaiming`, which
    :class:`~vireid.methods.hicmd.model.HiCMD` applies) a synthetic CPU run still lost 20 of the 32
    last-layer units by step 160 and its decoder ignored ``a^ex`` (README "Hi-CMD on the synthetic dataset").
    """

    def __init__(self, dim: int = 16, style_dim: int = 8, illum_dim: int = 8, pose_dim: int = 8,
                 leaky: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(3, dim, 7, 1, "none", leaky), _conv(dim, 2 * dim, 4, 2, "none", leaky),
            _conv(2 * dim, 4 * dim, 4, 2, "none", leaky), _conv(4 * dim, 4 * dim, 4, 2, "none", leaky),
            nn.AdaptiveAvgPool2d(1))
        self.style = nn.Linear(4 * dim, style_dim)
        ex = illum_dim + pose_dim
        self.ex_mu = nn.Linear(4 * dim, ex)
        self.ex_logvar = nn.Linear(4 * dim, ex)
        self.style_dim, self.illum_dim, self.pose_dim = style_dim, illum_dim, pose_dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(images).flatten(1)  # (B, 4d)
        return self.style(h), self.ex_mu(h), self.ex_logvar(h).clamp(-10.0, 10.0)  # (B, ds), (B, dex), (B, dex)


class AdaINResBlock(nn.Module):
    """A residual block whose two normalisations are AdaIN: ``(1 + gamma) * IN(x) + beta``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.num_params = 4 * dim  # gamma and beta of two AdaIN layers

    @staticmethod
    def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Adaptive instance norm of x (B, C, h, w) with per-sample (B, C) gamma and beta."""
        return F.instance_norm(x) * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = params.chunk(4, dim=1)  # each (B, C)
        h = F.relu(self.adain(self.conv1(x), g1, b1))
        return x + self.adain(self.conv2(h), g2, b2)  # (B, C, h, w)


class Decoder(nn.Module):
    """``G(p, a^s, a^ex)``: p (B, C, h, w) and the attribute vector (B, A) -> pixels (B, 3, 4h, 4w) in [0, 1].

    An MLP maps ``[a^s; a^c; a^p]`` to the AdaIN parameters of ``num_res`` residual blocks on ``p``;
    two nearest-neighbour x2 upsamplings with 3x3 convs (MUNIT: 5x5; 3x3 for the CPU budget) and layer norm, a 7x7 conv and ``tanh``.
    """

    def __init__(self, channels: int = 64, attr_dim: int = 24, num_res: int = 2, mlp_dim: int = 128) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([AdaINResBlock(channels) for _ in range(num_res)])
        total = sum(b.num_params for b in self.blocks)
        self.mlp = nn.Sequential(nn.Linear(attr_dim, mlp_dim), nn.ReLU(inplace=True), nn.Linear(mlp_dim, mlp_dim),
                                 nn.ReLU(inplace=True), nn.Linear(mlp_dim, total))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(channels, channels // 2, 3, 1, "ln"),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(channels // 2, channels // 4, 3, 1, "ln"),
            nn.ReflectionPad2d(3), nn.Conv2d(channels // 4, 3, 7))

    def forward(self, p: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        params = self.mlp(attributes.float())  # (B, total)
        x = p
        for block, chunk in zip(self.blocks, params.split([b.num_params for b in self.blocks], dim=1)):
            x = block(x, chunk.to(x.dtype))
        return (torch.tanh(self.up(x)) + 1.0) / 2.0  # (B, 3, 4h, 4w) pixels in [0, 1]


class ImageDiscriminator(nn.Module):
    """A PatchGAN image discriminator: pixels (B, 3, H, W) in [0, 1] -> logits (B, 1, H/2^n, W/2^n)."""

    def __init__(self, dim: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i in range(num_layers):
            cout = dim * 2 ** i
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.body(pixels * 2.0 - 1.0)  # (B, 1, h, w) logits
