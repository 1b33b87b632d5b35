"""MoS as a test-time distance: the streamed matrix against a per-pair loop, the evaluator contract."""

import numpy as np
import pytest
import torch

from vireid.errors import ConfigError, FeaturesError
from vireid.methods.mos.conflict import conflict_penalty, cooccurrence_prior
from vireid.methods.mos.distance import JaccardDistance, load_prior, save_prior
from vireid.methods.mos.jaccard import hard_jaccard


def test_distance_equals_per_pair_loop(tmp_path):
    rng = np.random.default_rng(0)
    q, g = np.maximum(rng.normal(size=(7, 12)), 0), np.maximum(rng.normal(size=(11, 12)), 0)
    train = torch.relu(torch.randn(20, 12, generator=torch.Generator().manual_seed(1)))
    prior = cooccurrence_prior(train, torch.arange(20) // 4, top_k=5)
    save_prior(tmp_path / "p.npz", prior, source="test")
    fn = JaccardDistance(lam=0.1, prior=load_prior(tmp_path / "p.npz"), top_k=5, eps=0.05, chunk_size=3)
    got = fn(q, g)
    assert got.shape == (7, 11) and got.dtype == np.float32
    for i in range(7):
        for j in range(11):
            a, b = torch.from_numpy(q[i]), torch.from_numpy(g[j])
            want = 1 - float(hard_jaccard(a, b)) + 0.1 * float(conflict_penalty(a, b, prior.double(), top_k=5))
            assert got[i, j] == pytest.approx(want, rel=1e-5, abs=1e-6)
    blocks = list(fn.stream(q, g))
    assert [s for s, _ in blocks] == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert fn.record() == {"lambda": 0.1, "top_k": 5, "eps": 0.05, "prior": "", "form": "seed"}


def test_plain_jaccard_ranks_by_one_minus_j():
    q = np.array([[1.0, 0.0, 1.0]])
    g = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(JaccardDistance()(q, g), [[0.0, 1.0, 1 - 1 / 3]], atol=1e-7)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(FeaturesError, match="non-negative features"):
        JaccardDistance()(np.array([[1.0, -1.0]]), np.array([[1.0, 1.0]]))
    with pytest.raises(ConfigError, match="needs a co-occurrence prior"):
        JaccardDistance(lam=0.1)
    np.savez(tmp_path / "bad.npz", other=np.zeros(3))
    with pytest.raises(FeaturesError, match="no 'prior' array"):
        load_prior(tmp_path / "bad.npz")
    fn = JaccardDistance(lam=0.1, prior=torch.zeros(3, 3))
    with pytest.raises(FeaturesError, match="prior is \\(3, 3\\) but the features have 2"):
        fn(np.ones((1, 2)), np.ones((1, 2)))
