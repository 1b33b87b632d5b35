"""GeM, non-local block, BNNeck and the init helpers (vireid.models.layers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vireid.models.layers import (
    BNNeck,
    GeM,
    GlobalAvgPool,
    NonLocalBlock,
    weights_init_classifier,
    weights_init_kaiming,
)


def test_gem_p1_is_average_pooling() -> None:
    x = torch.rand(2, 3, 4, 5) + 0.1
    torch.testing.assert_close(GeM(p=1.0)(x), x.mean(dim=(2, 3)))
    torch.testing.assert_close(GlobalAvgPool()(x), x.mean(dim=(2, 3)))


def test_gem_p3_hand_worked() -> None:
    # one channel with values 1, 2 (and 0 clamped to eps): ((1 + 8 + eps^3) / 3)^(1/3) = 3^(1/3)
    x = torch.tensor([[[[0.0, 1.0, 2.0]]]])  # (1, 1, 1, 3)
    torch.testing.assert_close(GeM(p=3.0)(x), torch.tensor([[3.0 ** (1 / 3)]]))


def test_gem_tends_to_max_pooling() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 4, 4, 4) * 0.9 + 0.1  # values in [0.1, 1], 16 per channel
    xmax = x.amax(dim=(2, 3))
    err = [(GeM(p=p)(x) - xmax).abs().max().item() for p in (3.0, 20.0, 200.0)]
    assert err[0] > err[1] > err[2]
    # (1/16)^(1/200) = 0.986: at worst 1.4 % below the maximum, never above it
    assert err[2] < 0.015 and bool((GeM(p=200.0)(x) <= xmax + 1e-6).all())


def test_gem_learnable_p_gets_gradient_and_fixed_p_is_buffer() -> None:
    gem = GeM(p=3.0, learnable=True)
    x = torch.rand(2, 3, 4, 4) + 0.1
    gem(x).sum().backward()
    assert gem.p.grad is not None and torch.isfinite(gem.p.grad)
    fixed = GeM(p=3.0)
    assert [n for n, _ in fixed.named_parameters()] == [] and "p" in dict(fixed.named_buffers())


def test_gem_float32_under_bf16_and_bad_p() -> None:
    out = GeM()(torch.rand(2, 3, 4, 4).bfloat16())
    assert out.dtype == torch.float32 and out.shape == (2, 3)
    with pytest.raises(ValueError, match="p must be > 0"):
        GeM(p=0.0)


def test_non_local_is_identity_at_init_and_bn_weight_zero() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(8)
    assert torch.equal(block.bn.weight, torch.zeros(8)) and torch.equal(block.bn.bias, torch.zeros(8))
    x = torch.randn(2, 8, 5, 3)
    for mode in (block.train, block.eval):
        mode()
        torch.testing.assert_close(block(x), x)


def test_non_local_matches_direct_formula() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(6, reduction=2).eval()
    with torch.no_grad():
        block.bn.weight.fill_(1.5)
        block.bn.bias.fill_(0.1)
        block.bn.running_mean.uniform_(-0.2, 0.2)
        block.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 6, 3, 4)
    # direct form: y_i = (1/HW) sum_j (theta_i . phi_j) g_j ;  z = BN(W y) + x
    theta = block.theta(x).flatten(2)  # (B, 3, HW)
    phi = block.phi(x).flatten(2)
    g = block.g(x).flatten(2)
    hw = 12
    y = torch.zeros_like(theta)
    for b in range(2):
        for i in range(hw):
            for j in range(hw):
                y[b, :, i] += (theta[b, :, i] @ phi[b, :, j]) / hw * g[b, :, j]
    expected = block.bn(block.W(y.reshape(2, 3, 3, 4))) + x
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_non_local_channels_last() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(8)
    with torch.no_grad():
        block.bn.weight.fill_(1.0)
    x = torch.randn(2, 8, 4, 3)
    ref = block(x)
    out = block.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_bnneck_bias_frozen_at_zero() -> None:
    neck = BNNeck(4)
    assert not neck.bias.requires_grad and torch.equal(neck.bias, torch.zeros(4))
    assert torch.equal(neck.weight, torch.ones(4)) and neck.weight.requires_grad
    x = torch.randn(6, 4) * 3 + 2
    out = neck(x)
    out.pow(2).sum().backward()
    assert neck.bias.grad is None and neck.weight.grad is not None
    # train mode: per-feature standardisation with the biased batch variance
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + neck.eps)
    torch.testing.assert_close(out, expected)


def test_init_helpers() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(256, 512)
    lin.apply(weights_init_classifier)
    assert abs(lin.weight.std().item() - 0.001) < 1e-4 and torch.equal(lin.bias, torch.zeros(512))
    bn = nn.BatchNorm1d(1000)
    conv = nn.Conv2d(16, 32, 3)
    for m in (bn, conv):
        m.apply(weights_init_kaiming)
    assert abs(bn.weight.mean().item() - 1.0) < 2e-3 and abs(bn.weight.std().item() - 0.01) < 2e-3
    # Kaiming normal, fan_in = 16 * 3 * 3: std = sqrt(2 / 144)
    assert abs(conv.weight.std().item() - (2 / 144) ** 0.5) < 0.01
    assert torch.equal(conv.bias, torch.zeros(32))
