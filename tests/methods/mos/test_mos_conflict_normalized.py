"""The bounded ("normalized") conflict penalty: each pair's union scaled to max 1, the k x k block averaged."""

import math

import numpy as np
import pytest
import torch

from vireid.errors import ConfigError, FeaturesError
from vireid.methods.mos.conflict import conflict_penalty, cooccurrence_prior, pairwise_conflict_penalty
from vireid.methods.mos.distance import JaccardDistance, load_prior, save_prior


def _loop_penalty(g1, g2, prior, k, eps):
    """Straight from the definition, one pair: u = max(g1, g2) / max, top-k, mean of max(0, e^(M - Mp - eps) - 1)."""
    u = [max(a, b) for a, b in zip(g1.tolist(), g2.tolist())]
    top = max(u)
    u = [x / top for x in u]
    idx = sorted(range(len(u)), key=lambda i: -u[i])[:k]
    total = 0.0
    for i in idx:
        for j in idx:
            total += max(0.0, math.exp(u[i] * u[j] - float(prior[i, j]) - eps) - 1)
    return total / (k * k)


def _loop_prior(g, pids, k):
    c = g.shape[1]
    prior = np.zeros((c, c))
    for t in range(len(g)):
        for n in range(t, len(g)):
            if pids[t] != pids[n]:
                continue
            u = np.maximum(g[t], g[n])
            u = u / u.max()
            idx = np.argsort(-u, kind="stable")[:k]
            for i in idx:
                for j in idx:
                    prior[i, j] = max(prior[i, j], u[i] * u[j])
    return prior


def test_normalized_penalty_and_prior_equal_loops():
    gen = torch.Generator().manual_seed(3)
    g = torch.relu(torch.randn(12, 9, generator=gen, dtype=torch.float64)) * 40  # raw scale far above 1
    pids = torch.arange(12) // 3
    prior = cooccurrence_prior(g, pids, top_k=4, form="normalized")
    np.testing.assert_allclose(prior.numpy(), _loop_prior(g.numpy(), pids.numpy(), 4), rtol=1e-6, atol=1e-7)
    a, b = torch.relu(torch.randn(9, generator=gen, dtype=torch.float64)), torch.relu(torch.randn(9, generator=gen, dtype=torch.float64))
    got = float(conflict_penalty(a, b, prior.double(), top_k=4, eps=0.05, form="normalized"))
    assert got == pytest.approx(_loop_penalty(a, b, prior, 4, 0.05), rel=1e-9)


def test_normalized_penalty_is_bounded_and_scale_free():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(5, 16, generator=gen) * 1e3, torch.rand(7, 16, generator=gen) * 1e3
    zero_prior = torch.zeros(16, 16)
    seed = pairwise_conflict_penalty(x, y, zero_prior, top_k=8, eps=0.05)
    norm = pairwise_conflict_penalty(x, y, zero_prior, top_k=8, eps=0.05, form="normalized")
    assert float(seed.min()) > 1e6  # the seed's form explodes on raw activations of this size
    assert 0 < float(norm.min()) and float(norm.max()) <= math.expm1(1 - 0.05) + 1e-6
    scaled = pairwise_conflict_penalty(x * 0.01, y * 0.01, zero_prior, top_k=8, eps=0.05, form="normalized")
    torch.testing.assert_close(scaled, norm, rtol=1e-5, atol=1e-6)
    # the largest union entry pairs with itself: M = 1 there, so with a zero prior the top-left term is e^0.95 - 1
    one = conflict_penalty(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), torch.zeros(2, 2), top_k=1,
                           eps=0.05, form="normalized")
    assert float(one) == pytest.approx(math.expm1(0.95), rel=1e-6)


def test_normalized_penalty_zero_on_training_pairs():
    gen = torch.Generator().manual_seed(1)
    g = torch.relu(torch.randn(10, 6, generator=gen)) * 7
    pids = torch.arange(10) // 2
    prior = cooccurrence_prior(g, pids, top_k=None, form="normalized")
    cp = conflict_penalty(g[0::2], g[1::2], prior, top_k=None, eps=0.0, form="normalized")  # same-id pairs
    assert float(cp.abs().max()) < 1e-6


def test_prior_file_records_its_form(tmp_path):
    prior = torch.rand(4, 4)
    save_prior(tmp_path / "n.npz", prior, form="normalized")
    torch.testing.assert_close(load_prior(tmp_path / "n.npz", "normalized"), prior)
    with pytest.raises(FeaturesError, match="collected for the 'normalized' penalty form, but --jaccard-penalty "
                                            "is 'seed'"):
        load_prior(tmp_path / "n.npz")
    with pytest.raises(ConfigError, match="--jaccard-penalty must be one of seed, normalized"):
        JaccardDistance(lam=0.1, prior=prior, form="bounded")
    fn = JaccardDistance(lam=0.1, prior=prior, top_k=2, form="normalized")
    assert fn.record()["form"] == "normalized"
    q, g = np.abs(np.random.default_rng(0).normal(size=(3, 4))), np.abs(np.random.default_rng(1).normal(size=(5, 4)))
    d = fn(q, g)
    base = JaccardDistance()(q, g)
    pen = pairwise_conflict_penalty(torch.from_numpy(q), torch.from_numpy(g), prior.double(), top_k=2,
                                    form="normalized").numpy()
    np.testing.assert_allclose(d, base + 0.1 * pen, rtol=1e-5, atol=1e-6)
