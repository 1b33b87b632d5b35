"""MoS conflict penalty and co-occurrence prior (seeds/002 §3) against loops and hand-built cases."""

import math

import pytest
import torch

from vireid.methods.mos.conflict import conflict_penalty, cooccurrence_prior, pairwise_conflict_penalty


def _loop_prior(g: torch.Tensor, pids: list[int]) -> torch.Tensor:
    """The seed's M^p = max over same-identity pairs (t, n) of (g_t v g_n)(g_t v g_n)^T, all channels."""
    c = g.shape[1]
    prior = torch.zeros(c, c, dtype=torch.float64)
    for t in range(len(pids)):
        for n in range(len(pids)):
            if pids[t] == pids[n]:
                u = torch.maximum(g[t], g[n]).double()
                prior = torch.maximum(prior, torch.outer(u, u))
    return prior


def _loop_penalty(g1, g2, prior, eps):
    u = torch.maximum(g1, g2).double()
    m = torch.outer(u, u)
    return sum(max(0.0, math.exp(float(m[i, j] - prior[i, j]) - eps) - 1.0)
               for i in range(len(u)) for j in range(len(u)))


def test_prior_equals_loop_with_all_channels():
    torch.manual_seed(0)
    g = torch.relu(torch.randn(7, 6))
    pids = [0, 0, 1, 1, 1, 2, 0]
    torch.testing.assert_close(cooccurrence_prior(g, torch.tensor(pids), top_k=None), _loop_prior(g, pids).float())


def test_prior_top_k_records_only_the_top_channels():
    g = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    prior = cooccurrence_prior(g, torch.tensor([5]), top_k=2)
    expected = torch.zeros(4, 4)
    expected[:2, :2] = torch.tensor([[9.0, 6.0], [6.0, 4.0]])
    torch.testing.assert_close(prior, expected)


def test_penalty_is_zero_when_m_below_prior():
    torch.manual_seed(1)
    g = torch.rand(6, 8)
    prior = cooccurrence_prior(g, torch.zeros(6, dtype=torch.long), top_k=None)  # one identity: every pair seen
    cp = conflict_penalty(g[:, None, :], g[None, :, :], prior, top_k=None, eps=0.0)
    assert float(cp.abs().max()) == 0.0
    big = torch.full((8, 8), 100.0)  # M <= M^p everywhere
    assert float(conflict_penalty(g[0], g[1], big, top_k=3, eps=0.05)) == 0.0


def test_penalty_equals_loop_and_hand_value():
    torch.manual_seed(2)
    g1, g2 = torch.rand(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    prior = torch.rand(5, 5, dtype=torch.float64) * 0.3
    assert float(conflict_penalty(g1, g2, prior, top_k=None, eps=0.05)) == pytest.approx(
        _loop_penalty(g1, g2, prior, 0.05), rel=1e-10)
    # one channel pair (0, 1) co-occurs 1.0 above the prior: exactly 2 * (e^(1 - 0) - 1) off the diagonal
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    prior = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(conflict_penalty(a, b, prior, top_k=None, eps=0.0)) == pytest.approx(2 * (math.e - 1))


def test_pairwise_penalty_equals_per_pair_and_is_differentiable():
    torch.manual_seed(3)
    x, y = torch.rand(4, 10, dtype=torch.float64), torch.rand(9, 10, dtype=torch.float64)
    prior = torch.rand(10, 10, dtype=torch.float64) * 0.5
    full = pairwise_conflict_penalty(x, y, prior, top_k=4, eps=0.05, budget=300)  # several row blocks
    for i in range(4):
        for j in range(9):
            assert float(full[i, j]) == pytest.approx(float(conflict_penalty(x[i], y[j], prior, top_k=4, eps=0.05)))
    a = x[0].clone().requires_grad_(True)
    conflict_penalty(a, a.detach(), prior, top_k=4).backward()  # a tie with itself
    assert torch.isfinite(a.grad).all()
