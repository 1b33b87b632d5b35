"""The screened (threshold-filtered) neighbour merge of k-reciprocal re-ranking against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rerank_oracles import reference_k_reciprocal

import vireid.rerank.k_reciprocal as kr
from vireid.rerank import k_reciprocal_rerank, original_distance_matrix
from vireid.rerank.original_distance import augmented_pair, query_gallery_rows


def _features(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim))


@pytest.mark.parametrize(("chunk", "piece"), [(7, 3), (16, 5), (64, 2048), (200, 16)])
def test_nearest_lists_equal_a_full_sort(monkeypatch: pytest.MonkeyPatch, chunk: int, piece: int) -> None:
    monkeypatch.setattr(kr, "_PIECE", piece)
    x = _features(150, 6, seed=chunk)
    dist = original_distance_matrix(x[:30], x[30:], chunk_size=chunk)  # (N, N), the same values
    left = augmented_pair(x[:30], x[30:], torch.device("cpu"))
    knn, knn_d0, row_max = kr._ranks_and_original(left, width=11, block=chunk)
    out = query_gallery_rows(left, 30, slice(0, 30), chunk) / row_max[:30, None]
    expected = np.argsort(dist, axis=1, kind="stable")[:, :11]
    assert np.array_equal(knn.numpy(), expected)
    np.testing.assert_array_equal(row_max.numpy(), dist.max(axis=1))
    np.testing.assert_array_equal(knn_d0.numpy(), np.take_along_axis(dist, expected, 1) / dist.max(axis=1)[:, None])
    # the query-gallery block is recomputed with other GEMM shapes than the tiles: equal to float32 rounding
    np.testing.assert_allclose(out.numpy(), dist[:30, 30:] / dist.max(axis=1)[:30, None], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("chunk", "piece"), [(9, 4), (32, 7)])
def test_rerank_with_small_pieces_equals_reference(monkeypatch: pytest.MonkeyPatch, chunk: int, piece: int) -> None:
    monkeypatch.setattr(kr, "_PIECE", piece)
    x = _features(90, 8, seed=piece)
    qf, gf = x[:20], x[20:] + 0.3
    expected = reference_k_reciprocal(qf, gf, 20, 6, 0.3)
    got = k_reciprocal_rerank(qf, gf, chunk_size=chunk)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_augmented_pair_centres_in_float64_and_appends_norms() -> None:
    x = _features(20, 5, seed=1) + 100.0  # a large common offset: centring matters
    left = augmented_pair(x[:7], x[7:], torch.device("cpu"))
    assert left.dtype == torch.float32 and left.shape == (20, 7)
    xc = x - x.mean(axis=0)
    np.testing.assert_allclose(left[:, :5].numpy(), xc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(left[:, 5].numpy(), (left[:, :5].double() ** 2).sum(1).numpy(), rtol=1e-6)
    assert (left[:, 6] == 1).all()
