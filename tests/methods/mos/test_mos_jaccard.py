"""MoS Jaccard similarities (seeds/002 §3 Eq. 5) against hand-worked values and per-pair loops."""

import pytest
import torch

from vireid.methods.mos.jaccard import hard_jaccard, pairwise_hard_jaccard, pairwise_soft_jaccard, soft_jaccard


def _loop_hard(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(min(float(x), float(y)) for x, y in zip(a, b)) / sum(max(float(x), float(y)) for x, y in zip(a, b))


def _loop_soft(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    """Eq. 5 written out: softmin/softmax weights over the two values of each channel."""
    import math

    num = den = 0.0
    for x, y in zip(a.tolist(), b.tolist()):
        e1, e2 = math.exp(-tau * x), math.exp(-tau * y)
        f1, f2 = math.exp(tau * x), math.exp(tau * y)
        num += e1 / (e1 + e2) * x + e2 / (e1 + e2) * y
        den += f1 / (f1 + f2) * x + f2 / (f1 + f2) * y
    return num / den


def test_hand_worked_value():
    a, b = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 1.0, 2.0])
    assert float(hard_jaccard(a, b)) == pytest.approx((0.5 + 0 + 2) / (1 + 1 + 2))


def test_identical_is_one_and_disjoint_is_zero():
    g = torch.rand(5, 16) + 0.1
    torch.testing.assert_close(hard_jaccard(g, g), torch.ones(5))
    torch.testing.assert_close(soft_jaccard(g, g, 10.0), torch.ones(5))
    a = torch.tensor([1.0, 2.0, 0.0, 0.0])
    b = torch.tensor([0.0, 0.0, 3.0, 0.5])
    assert float(hard_jaccard(a, b)) == 0.0
    assert float(soft_jaccard(a, b, 50.0)) == pytest.approx(0.0, abs=1e-12)


def test_soft_matches_equation_5_loop():
    torch.manual_seed(0)
    a, b = torch.rand(12, dtype=torch.float64), torch.rand(12, dtype=torch.float64)
    for tau in (0.5, 3.0, 10.0):
        assert float(soft_jaccard(a, b, tau)) == pytest.approx(_loop_soft(a, b, tau), rel=1e-10)


def test_soft_tends_to_hard_as_tau_grows():
    torch.manual_seed(1)
    a, b = torch.rand(64, dtype=torch.float64), torch.rand(64, dtype=torch.float64)
    hard = float(hard_jaccard(a, b))
    gaps = [abs(float(soft_jaccard(a, b, tau)) - hard) for tau in (1.0, 10.0, 100.0, 1e4)]
    assert all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-3 and gaps[0] > 1e-2


def test_finite_gradients_at_ties():
    a = torch.tensor([1.0, 0.5, 0.0, 2.0], requires_grad=True)
    b = torch.tensor([1.0, 0.5, 0.0, 1.0], requires_grad=True)  # three tied channels, one of them zero
    for fn in (lambda: soft_jaccard(a, b, 10.0), lambda: hard_jaccard(a, b)):
        a.grad = b.grad = None
        fn().backward()
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    z = torch.zeros(4, requires_grad=True)  # an empty union: similarity 0, finite gradient
    s = soft_jaccard(z, torch.zeros(4), 10.0)
    s.backward()
    assert float(s.detach()) == 0.0 and torch.isfinite(z.grad).all()


def test_pairwise_equals_per_pair_loop():
    torch.manual_seed(2)
    x = torch.relu(torch.randn(5, 9, dtype=torch.float64))
    y = torch.relu(torch.randn(7, 9, dtype=torch.float64))
    hard = pairwise_hard_jaccard(x, y)
    soft = pairwise_soft_jaccard(x, y, 4.0)
    for i in range(5):
        for j in range(7):
            assert float(hard[i, j]) == pytest.approx(_loop_hard(x[i], y[j]), abs=1e-12)
            assert float(soft[i, j]) == pytest.approx(_loop_soft(x[i], y[j], 4.0), rel=1e-10)


def test_negative_activations_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        hard_jaccard(torch.tensor([1.0, -0.5]), torch.tensor([1.0, 1.0]))
