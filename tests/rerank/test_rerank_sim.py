"""SIM (seeds/002 §5, Eq. 1-8) against a per-query float64 implementation and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rerank_oracles import euclidean, reference_sim

from vireid.errors import ConfigError
from vireid.rerank import min_plus_topk_mean, sim_rerank

ATOL = 1e-6


def _features(nq: int, ng: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(nq, dim)) + 0.5, rng.normal(size=(ng, dim))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"top_k": 1, "k_q": 5, "k_g": 7, "lam": 0.5},
        {"top_k": 4, "k_q": 3, "k_g": 5, "lam": 2.0, "alpha": 0.2},
        {"k_q": 40, "k_g": 40},  # both larger than the gallery: sets saturate
        {"normalize": False, "alpha": 0.8},
    ],
)
def test_equals_reference(params: dict) -> None:
    qf, gf = _features(12, 30, 8, seed=len(params))
    got = sim_rerank(qf, gf, **params)
    assert got.dtype == np.float32 and got.shape == (12, 30)
    np.testing.assert_allclose(got, reference_sim(qf, gf, **params), rtol=0, atol=ATOL)


def test_chunk_sizes_do_not_change_the_result() -> None:
    qf, gf = _features(12, 30, 8, seed=11)
    base = sim_rerank(qf, gf)
    for chunk, columns in [(1, None), (5, 7), (12, 1), (100, 29)]:
        got = sim_rerank(qf, gf, chunk_size=chunk, column_chunk_size=columns)
        np.testing.assert_array_equal(got, base)


def test_k1_alpha1_is_the_shortest_path_through_the_gallery() -> None:
    # Eq. 2 vs Eq. 4: Floyd-Warshall over the graph {q} ∪ gallery (query edges D_qg, gallery
    # edges lam * D_gg) gives the same distances as the two-hop min-plus form, because the
    # Euclidean gallery edges obey the triangle inequality (Eq. 3).
    qf, gf = _features(4, 15, 5, seed=12)
    lam = 0.7
    q = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    g = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    d_qg, d_gg = euclidean(q, g), euclidean(g, g)
    expected = np.zeros_like(d_qg)
    for i in range(4):
        n = 16  # node 0 is the query
        w = np.full((n, n), np.inf)
        w[0, 1:], w[1:, 0] = d_qg[i], d_qg[i]
        w[1:, 1:] = lam * d_gg
        np.fill_diagonal(w, 0.0)
        for k in range(n):
            w = np.minimum(w, w[:, k : k + 1] + w[k : k + 1, :])
        expected[i] = w[0, 1:]
    got = sim_rerank(qf, gf, top_k=1, alpha=1.0, lam=lam)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    assert (got <= d_qg + ATOL).all()  # a path is never longer than the direct edge


def test_large_lambda_returns_the_direct_edges() -> None:
    qf, gf = _features(6, 20, 5, seed=13)
    q = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    g = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    got = sim_rerank(qf, gf, top_k=1, alpha=1.0, lam=1e6)
    np.testing.assert_allclose(got, euclidean(q, g), rtol=0, atol=ATOL)


def test_set_distance_is_in_unit_interval_and_below_one_on_the_neighbour_set() -> None:
    qf, gf = _features(10, 25, 6, seed=14)
    d_m = sim_rerank(qf, gf, alpha=0.0, k_q=5, k_g=6)  # alpha = 0 leaves d_M alone
    assert d_m.min() >= 0.0 and d_m.max() <= 1.0
    d_s = sim_rerank(qf, gf, alpha=1.0)
    n_c = np.argsort(d_s, axis=1)[:, :5]
    # g_j in N_c(q) and g_j in R*(g_j): the intersection is never empty there.
    assert (np.take_along_axis(d_m, n_c, axis=1) < 1.0).all()


def test_gallery_permutation_invariance() -> None:
    qf, gf = _features(12, 30, 8, seed=15)
    perm = np.random.default_rng(1).permutation(30)
    base = sim_rerank(qf, gf)
    permuted = sim_rerank(qf, gf[perm])
    np.testing.assert_allclose(permuted[:, np.argsort(perm)], base, rtol=0, atol=ATOL)


def test_min_plus_topk_mean_keeps_tied_values() -> None:
    # Small integers: many exact ties, and every sum is exact in float32.
    rng = np.random.default_rng(16)
    a = rng.integers(0, 4, size=(5, 9)).astype(np.float32)
    e = rng.integers(0, 4, size=(9, 7)).astype(np.float32)
    cand = a[:, :, None] + e[None, :, :]  # (q, t, j)
    for k in (1, 2, 3, 9):
        expected = np.sort(cand, axis=1)[:, :k].mean(axis=1)
        got = min_plus_topk_mean(torch.from_numpy(a), torch.from_numpy(e), k, column_chunk=3)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_hand_worked_two_hop() -> None:
    # One query, gallery points 0, 1, 3 on a line; D_qg = [2, 1, 5]. lam = 1:
    # to g0: min(2+0, 1+1, 5+3) = 2; to g1: min(2+1, 1+0, 5+2) = 1; to g2: min(2+3, 1+2, 5+0) = 3.
    a = torch.tensor([[2.0, 1.0, 5.0]])
    e = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    assert min_plus_topk_mean(a, e, 1).tolist() == [[2.0, 1.0, 3.0]]
    assert min_plus_topk_mean(a, e, 2).tolist() == [[2.0, 2.0, 4.0]]  # (2+2)/2, (1+3)/2, (3+5)/2


def test_bad_parameters_raise() -> None:
    qf, gf = _features(3, 5, 4, seed=17)
    with pytest.raises(ConfigError, match="top_k=6 exceeds the gallery size 5"):
        sim_rerank(qf, gf, top_k=6)
    with pytest.raises(ConfigError, match="lam must be in"):
        sim_rerank(qf, gf, lam=-1.0)
    with pytest.raises(ConfigError, match="alpha must be in"):
        sim_rerank(qf, gf, alpha=2.0)
    with pytest.raises(ConfigError, match="k_g must be an integer >= 1"):
        sim_rerank(qf, gf, k_g=0)


def test_degenerate_inputs_run() -> None:
    qf, gf = _features(3, 6, 4, seed=18)
    gf = np.concatenate([gf, gf[:2]])  # duplicated gallery images: zero gallery edges
    qf[0] = 0.0  # a zero feature stays zero under normalisation: distance 1 to every unit vector
    out = sim_rerank(qf, gf, top_k=1, alpha=1.0)
    assert out.shape == (3, 8) and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], 1.0, rtol=0, atol=ATOL)
    np.testing.assert_allclose(out[:, 6:], out[:, :2], rtol=0, atol=ATOL)  # duplicates tie
