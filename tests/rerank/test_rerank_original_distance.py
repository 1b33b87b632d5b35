"""The lazily made augmented rows of k-reciprocal's original distance: equal to the dense matrix bit for
bit, no copy of the caller's features, and the centring's precision on float32 input."""

from __future__ import annotations

import numpy as np
import torch

from vireid.rerank.original_distance import AugmentedRows, distance_tiles, query_gallery_rows

CPU = torch.device("cpu")


def _features(n: int, dim: int, seed: int, dtype: type = np.float32, offset: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, dim)) + offset).astype(dtype)


def test_lazy_rows_equal_the_dense_matrix_for_slices_and_indices() -> None:
    x = _features(50, 6, seed=0, offset=3.0)
    lazy = AugmentedRows(x[:17], x[17:], CPU)
    dense = AugmentedRows(x[:17], x[17:], CPU, materialise=True).dense()
    assert dense.shape == (50, 8) and dense.dtype == torch.float32
    # float32 input: one float32 subtraction of the float32-rounded float64 mean, norms of those rows
    mean32 = (x.astype(np.float64).sum(axis=0) / 50).astype(np.float32)
    xc = x - mean32
    assert np.array_equal(dense[:, :6].numpy(), xc)
    np.testing.assert_array_equal(dense[:, 6].numpy(), (torch.from_numpy(xc) ** 2).sum(1).numpy())
    assert (dense[:, 7] == 1).all()
    for rows in (slice(0, 5), slice(20, 50), slice(10, 30), slice(0, 50)):  # query part, gallery, both
        assert torch.equal(lazy[rows], dense[rows]), rows
    index = torch.tensor([49, 0, 16, 17, 3, 30])
    assert torch.equal(lazy[index], dense[index])
    assert torch.equal(lazy.centred_rows[index], dense[index, :6])


def test_each_part_keeps_its_own_centring_rule_across_the_boundary() -> None:
    x = _features(30, 4, seed=6, dtype=np.float64, offset=2.0)
    qf, gf = x[:12], x[12:].astype(np.float32)  # float64 queries, float32 gallery
    lazy = AugmentedRows(qf, gf, CPU)
    dense = lazy.dense()
    for rows in (slice(0, 12), slice(12, 30), slice(8, 20), slice(0, 30)):
        assert torch.equal(lazy[rows], dense[rows]), rows
    index = torch.tensor([29, 3, 12, 11])
    assert torch.equal(lazy[index], dense[index])


def test_float64_input_is_centred_in_float64() -> None:
    x = _features(20, 5, seed=1, dtype=np.float64, offset=100.0)
    dense = AugmentedRows(x[:7], x[7:], CPU).dense()
    expected = (x - x.mean(axis=0)).astype(np.float32)  # the float64 difference, rounded once
    np.testing.assert_allclose(dense[:, :5].numpy(), expected, rtol=0, atol=2e-6)


def test_the_rows_are_made_from_the_callers_arrays_without_a_copy() -> None:
    x = _features(40, 4, seed=2)
    qf, gf = x[:10], x[10:]
    lazy = AugmentedRows(qf, gf, CPU)
    assert lazy._q.data_ptr() == qf.__array_interface__["data"][0]
    assert lazy._g.data_ptr() == gf.__array_interface__["data"][0]
    assert lazy._dense is None


def test_tiles_and_query_rows_equal_those_of_the_dense_matrix() -> None:
    x = _features(70, 5, seed=3, offset=1.0)
    lazy = AugmentedRows(x[:23], x[23:], CPU)
    dense = lazy.dense()
    lazy_tiles = [(r, c, d.clone()) for r, c, d in distance_tiles(lazy, 16)]
    dense_tiles = [(r, c, d.clone()) for r, c, d in distance_tiles(dense, 16)]
    assert len(lazy_tiles) == len(dense_tiles) == 5 * 6 // 2
    for (r1, c1, d1), (r2, c2, d2) in zip(lazy_tiles, dense_tiles):
        assert (r1, c1) == (r2, c2) and torch.equal(d1, d2)
    for rows in (slice(0, 23), slice(5, 9)):
        assert torch.equal(query_gallery_rows(lazy, 23, rows, 16), query_gallery_rows(dense, 23, rows, 16))


def test_centring_keeps_float32_distances_accurate_under_a_large_offset() -> None:
    x = _features(30, 5, seed=4, offset=100.0)  # |x|^2 ~ 5e4: uncentred float32 would lose ~3e-3
    tiles = {(r.start, c.start): d.clone() for r, c, d in distance_tiles(AugmentedRows(x[:10], x[10:], CPU), 30)}
    d = tiles[(0, 0)].double().numpy()  # (30, 30), one tile
    x64 = x.astype(np.float64)
    exact = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)  # (30, 30)
    np.testing.assert_allclose(d, exact, rtol=0, atol=5e-5)


def test_k_reciprocal_hands_freed_heap_back_between_phases(monkeypatch) -> None:
    import vireid.rerank._distance as distance_module
    from vireid.rerank import k_reciprocal_rerank

    distance_module.release_free_heap()  # resolves glibc's malloc_trim on this (Linux) machine
    assert distance_module._MALLOC_TRIM not in (None, False)
    calls = []
    monkeypatch.setattr(distance_module, "_MALLOC_TRIM", lambda pad: calls.append(pad) or 1)
    x = _features(40, 4, seed=5)
    k_reciprocal_rerank(x[:10], x[10:], k1=5, k2=3)
    assert calls == [0, 0]  # after the query expansion, after the inverted index
