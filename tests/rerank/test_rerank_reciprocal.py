"""k-reciprocal sets R and R* (Zhong et al., CVPR 2017 Eq. 3-7) against Python-set versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rerank_oracles import euclidean, expanded_set, reciprocal_set

from vireid.errors import ConfigError, FeaturesError
from vireid.rerank import expanded_reciprocal_sets, k_reciprocal_sets, knn_from_distances
from vireid.rerank.reciprocal import half_k, reciprocal_mask


def _distances(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 6))
    return euclidean(x, x)


def test_half_k_rounds_half_to_even_like_numpy() -> None:
    assert [half_k(k) for k in (1, 2, 3, 5, 7, 10, 20, 21)] == [0, 1, 2, 2, 4, 5, 10, 10]


def test_knn_from_distances_equals_argsort_in_any_chunking() -> None:
    d = torch.from_numpy(_distances(30, 0))
    expected = torch.from_numpy(np.argsort(d.numpy(), axis=1)[:, :7])
    for chunk in (1, 4, 1000):
        assert torch.equal(knn_from_distances(d, 7, chunk_size=chunk), expected)
    assert knn_from_distances(d, 99).shape == (30, 30)  # k is capped at the row length


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_plain_reciprocal_sets_match_python_sets(k: int) -> None:
    d = _distances(30, k)
    rank = np.argsort(d, axis=1)
    got = k_reciprocal_sets(d, k, expand=False)
    for p in range(30):
        assert set(got[p].tolist()) == reciprocal_set(rank, p, k)
        assert p in got[p]  # p ranks itself first, so p is in R(p, k)


@pytest.mark.parametrize("k", [2, 5, 7, 10, 20])
@pytest.mark.parametrize("strict", [True, False])
def test_expanded_sets_match_python_sets(k: int, strict: bool) -> None:
    d = _distances(40, 100 + k)
    rank = np.argsort(d, axis=1)
    got = k_reciprocal_sets(d, k, strict=strict)
    for p in range(40):
        assert got[p].tolist() == sorted(expanded_set(rank, p, k, strict=strict))


def test_strict_and_paper_rules_differ_exactly_at_two_thirds() -> None:
    # Points on a line; k = 3, round(3/2) = 2. R(0, 3) = {0, 5, 4, 6}. R(4, 2) = {4, 5, 2} shares
    # {4, 5} with it: 2 == 2/3 * 3, so the code's strict ">" rejects R(4, 2) and the paper's ">="
    # adds item 2. R(5, 2) = {5, 0, 4} is inside R(0, 3) and R(6, 2) = {6, 3, 1} shares only 6.
    x = np.array([[5.12], [9.5], [1.44], [9.49], [3.12], [4.23], [8.28]])
    d = euclidean(x, x)
    assert k_reciprocal_sets(d, 3)[0].tolist() == [0, 4, 5, 6]
    assert k_reciprocal_sets(d, 3, strict=False)[0].tolist() == [0, 2, 4, 5, 6]
    rank = np.argsort(d, axis=1)
    for strict in (True, False):
        got = k_reciprocal_sets(d, 3, strict=strict)
        assert [set(g.tolist()) for g in got] == [expanded_set(rank, p, 3, strict) for p in range(7)]


def test_reciprocal_mask_marks_mutual_neighbours() -> None:
    # ranks of 3 items on a line 0, 1, 3: item 2's nearest is item 1, item 1's nearest is item 0.
    knn = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    mask = reciprocal_mask(knn, 1)
    assert mask.tolist() == [[True, True], [True, True], [True, False]]


def test_expanded_sets_layout_is_sorted_unique_and_padded() -> None:
    d = torch.from_numpy(_distances(25, 3))
    knn = knn_from_distances(d, 11)
    idx, mask = expanded_reciprocal_sets(knn, 10)
    assert idx.shape == mask.shape and idx.shape[0] == 25
    for row, m in zip(idx, mask):
        members = row[m]
        assert torch.all(members[1:] > members[:-1])
        assert bool(m[: int(m.sum())].all())  # valid entries are left-aligned


def test_errors_name_the_problem() -> None:
    with pytest.raises(FeaturesError, match="square"):
        k_reciprocal_sets(np.zeros((3, 4)), 2)
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        k_reciprocal_sets(np.zeros((3, 3)), 0)
