"""k-reciprocal re-ranking against a dense step-by-step statement of the public reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rerank_oracles import euclidean, reference_k_reciprocal

from vireid.errors import ConfigError, FeaturesError
from vireid.rerank import k_reciprocal_rerank, original_distance_matrix

ATOL = 1e-6


def _features(nq: int, ng: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(nq, dim)), rng.normal(size=(ng, dim)) + 0.3  # a "modality" offset


@pytest.mark.parametrize(
    ("nq", "ng", "k1", "k2", "lam"),
    [
        (12, 30, 20, 6, 0.3),
        (12, 30, 5, 3, 0.3),
        (12, 30, 7, 1, 0.5),
        (12, 30, 20, 6, 0.0),
        (12, 30, 3, 10, 0.3),  # k2 > k1 + 1
        (3, 4, 20, 6, 0.3),  # N < k1 + 1: every neighbour list is the whole set
    ],
)
def test_equals_reference(nq: int, ng: int, k1: int, k2: int, lam: float) -> None:
    qf, gf = _features(nq, ng, 8, seed=k1 + k2 + nq)
    expected = reference_k_reciprocal(qf, gf, k1, k2, lam)
    got = k_reciprocal_rerank(qf, gf, k1=k1, k2=k2, lambda_value=lam)
    assert got.dtype == np.float32 and got.shape == (nq, ng)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_equals_reference_on_clustered_features() -> None:
    # identities with 3-6 images each: large, overlapping k-reciprocal sets, many expansions.
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(10, 16))
    ids = rng.integers(0, 10, size=60)
    x = centres[ids] + 0.4 * rng.normal(size=(60, 16))
    expected = reference_k_reciprocal(x[:15], x[15:], 20, 6, 0.3)
    np.testing.assert_allclose(k_reciprocal_rerank(x[:15], x[15:]), expected, rtol=0, atol=ATOL)


def test_chunk_sizes_do_not_change_the_result() -> None:
    qf, gf = _features(12, 30, 8, seed=1)
    full = k_reciprocal_rerank(qf, gf, chunk_size=4096)
    for chunk in (1, 5, 13):
        np.testing.assert_allclose(k_reciprocal_rerank(qf, gf, chunk_size=chunk), full, rtol=0, atol=ATOL)


def test_gallery_permutation_invariance() -> None:
    qf, gf = _features(12, 30, 8, seed=2)
    perm = np.random.default_rng(0).permutation(30)
    base = k_reciprocal_rerank(qf, gf)
    permuted = k_reciprocal_rerank(qf, gf[perm])
    np.testing.assert_allclose(permuted[:, np.argsort(perm)], base, rtol=0, atol=ATOL)


def test_lambda_one_is_the_normalised_original_distance() -> None:
    qf, gf = _features(5, 9, 4, seed=3)
    x = np.concatenate([qf, gf])
    sq = euclidean(x, x) ** 2
    expected = (sq / sq.max(axis=1, keepdims=True))[:5, 5:]  # divided by the row (= column) max
    got = k_reciprocal_rerank(qf, gf, lambda_value=1.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_tensor_input_float32_and_explicit_device() -> None:
    qf, gf = _features(6, 10, 5, seed=4)
    expected = k_reciprocal_rerank(qf, gf, k1=4, k2=2)
    got = k_reciprocal_rerank(
        torch.from_numpy(qf).float(), torch.from_numpy(gf).float(), k1=4, k2=2, device="cpu"
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_jaccard_part_is_a_distance_in_unit_interval() -> None:
    qf, gf = _features(8, 20, 6, seed=5)
    jaccard = k_reciprocal_rerank(qf, gf, lambda_value=0.0)
    assert jaccard.min() >= 0.0 and jaccard.max() <= 1.0
    assert (jaccard < 1.0).any()  # the sets do overlap


def test_bad_inputs_raise_with_the_offending_name() -> None:
    qf, gf = _features(3, 5, 4, seed=6)
    with pytest.raises(ConfigError, match="k1 must be an integer >= 1"):
        k_reciprocal_rerank(qf, gf, k1=0)
    with pytest.raises(ConfigError, match=r"lambda_value must be in \[0.0, 1.0\]"):
        k_reciprocal_rerank(qf, gf, lambda_value=1.5)
    with pytest.raises(FeaturesError, match="dimension 4 but gallery features 3"):
        k_reciprocal_rerank(qf, gf[:, :3])
    bad = gf.copy()
    bad[2, 1] = np.nan
    with pytest.raises(FeaturesError, match=r"gallery features: 1 row\(s\) hold NaN/inf values, first rows \[2\]"):
        k_reciprocal_rerank(qf, bad)
    with pytest.raises(FeaturesError, match="expected a 2-D"):
        k_reciprocal_rerank(qf[0], gf)


@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_original_distance_matrix_is_exact_symmetric_squared_euclidean(chunk: int) -> None:
    qf, gf = _features(7, 11, 5, seed=8)
    d = original_distance_matrix(qf, gf, chunk_size=chunk)
    x = np.concatenate([qf, gf])
    assert d.dtype == np.float32 and d.shape == (18, 18)
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    np.testing.assert_allclose(d, euclidean(x, x) ** 2, rtol=1e-6, atol=1e-5)


def test_duplicate_features_and_tiny_sets_run() -> None:
    # Exact ties (duplicated images) are broken arbitrarily, as np.argsort does; the result is
    # still a finite distance, and an identical query-gallery pair is at distance ~0 on d0.
    qf, gf = _features(3, 5, 4, seed=9)
    gf = np.concatenate([gf, gf[:2], qf[:1]])
    out = k_reciprocal_rerank(qf, gf, k1=3, k2=2, lambda_value=1.0)
    assert out.shape == (3, 8) and np.isfinite(out).all()
    assert out[0, 7] < 1e-6
    single = k_reciprocal_rerank(qf[:1], gf[:1])  # N = 2: both items are each other's sets
    np.testing.assert_allclose(single, [[0.3]], rtol=0, atol=ATOL)  # Jaccard 0, d0 = 1
