"""DAN's gradient reversal layer and per-modality domain discriminators (seeds/000 Eq. 2-4)."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.methods.dan.discriminator import DomainDiscriminator, ModalityDiscriminators
from vireid.methods.dan.grl import GradReverse, grad_reverse, grl_coefficient


def test_grad_reverse_is_identity_forward_and_flips_and_scales_the_gradient() -> None:
    x = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    y = grad_reverse(x, 0.25)
    assert torch.equal(y, x)
    upstream = torch.tensor([[2.0, 4.0, -8.0]])
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -0.25 * upstream)


def test_grad_reverse_module_and_zero_coefficient() -> None:
    layer = GradReverse(0.0)
    x = torch.randn(4, 3, requires_grad=True)
    (layer(x) * 3).sum().backward()
    assert torch.equal(x.grad, torch.zeros(4, 3))
    layer.coeff = 2.0
    x.grad = None
    (layer(x) * 3).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4, 3), -6.0))
    assert "coeff=2.0000" in repr(layer)


def test_grl_schedule_matches_the_dann_formula() -> None:
    assert grl_coefficient(0.0) == 0.0
    for p in (0.1, 0.5, 1.0):
        assert grl_coefficient(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)
    assert grl_coefficient(0.5, gamma=2.0, max_coeff=0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-1.0)) - 1))
    assert grl_coefficient(-1.0) == 0.0 and grl_coefficient(3.0) == grl_coefficient(1.0)


def test_discriminator_shape_and_argument_checks() -> None:
    disc = DomainDiscriminator(8, hidden=(5, 4), dropout=0.0)
    assert disc(torch.randn(3, 8)).shape == (3,)
    assert [m.out_features for m in disc.net if isinstance(m, torch.nn.Linear)] == [5, 4, 1]
    with pytest.raises(ValueError, match="dropout"):
        DomainDiscriminator(8, dropout=1.0)
    with pytest.raises(ValueError, match="positive"):
        DomainDiscriminator(0)


def test_modality_discriminators_route_rows_and_reverse_the_extractor_gradient() -> None:
    torch.manual_seed(0)
    heads = ModalityDiscriminators(6, hidden=(4,), dropout=0.0)
    x = torch.randn(5, 6, requires_grad=True)
    modality = torch.tensor([0, 1, 0, 1, 1])
    logits = heads(x, modality, coeff=0.5)
    expected = torch.stack([heads.discriminators[int(m)](x[i:i + 1])[0] for i, m in enumerate(modality)])
    torch.testing.assert_close(logits, expected)
    # the extractor's gradient is -0.5 times what it would be without the GRL
    logits.sum().backward()
    reversed_grad = x.grad.clone()
    x.grad = None
    plain = torch.stack([heads.discriminators[int(m)](x[i:i + 1])[0] for i, m in enumerate(modality)])
    plain.sum().backward()
    torch.testing.assert_close(reversed_grad, -0.5 * x.grad)


def test_each_discriminator_learns_only_from_its_modality() -> None:
    heads = ModalityDiscriminators(4, hidden=(3,), dropout=0.0)
    heads(torch.randn(3, 4), torch.tensor([1, 1, 1])).sum().backward()
    assert all(p.grad is None for p in heads.discriminators[0].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.discriminators[1].parameters())
    with pytest.raises(ValueError, match="expected features"):
        heads(torch.randn(3, 4), torch.tensor([0, 1]))
