"""NFormer's LAA and RNS against straightforward dense implementations written here from the
equations (seeds/001 §3.2-3.3; METHODS.md §8)."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.methods.nformer.attention import (landmark_factors, neighbour_lists, reciprocal_candidates,
                                              rns_aggregate)
from vireid.methods.nformer.blocks import NFormerBlock, NFormerEncoder


def dense_topk_mask(a: torch.Tensor, k: int, modality: torch.Tensor | None = None, quota: int = 0) -> torch.Tensor:
    """M^k (N, N) of one head: 1 where j is among the top k - quota of row i overall, or among the
    top quota of row i over the other modality's columns."""
    n = a.shape[0]
    mk = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        order = sorted(range(n), key=lambda j: -float(a[i, j]))
        for j in order[: k - quota]:
            mk[i, j] = True
        if quota:
            others = [j for j in order if modality[j] != modality[i]]
            for j in others[:quota]:
                mk[i, j] = True
    return mk


def dense_rns(a: torch.Tensor, v: torch.Tensor, k: int, modality=None, quota: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """RNS(A~) (N, N) and RNS @ V for one head: M = M^k * M^k^T, M_ii = 1, masked softmax of exp(+A~)."""
    mk = dense_topk_mask(a, k, modality, quota)
    m = mk & mk.T
    m.fill_diagonal_(True)
    w = torch.zeros_like(a)
    for i in range(a.shape[0]):
        cols = torch.nonzero(m[i]).flatten()
        e = torch.exp(a[i, cols] - a[i, cols].max())
        w[i, cols] = e / e.sum()
    return w, w @ v


def test_laa_equals_explicit_two_factor_product() -> None:
    torch.manual_seed(0)
    h, n, dh, m = 2, 9, 4, 3
    q, k = torch.randn(h, n, dh, dtype=torch.float64), torch.randn(h, n, dh, dtype=torch.float64)
    lm = torch.tensor([5, 0, 7])
    q_t, k_t = landmark_factors(q, k, lm)
    for head in range(h):
        for i in range(n):
            for j in range(n):
                # (Q k_m^T)_i . (K q_m^T)_j = sum_l (q_i . k_l)(k_j . q_l) over the landmarks l
                want = sum(float(q[head, i] @ k[head, l]) * float(k[head, j] @ q[head, l]) for l in lm.tolist())
                assert float(q_t[head, i] @ k_t[head, j]) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert q_t.shape == (h, n, m) and k_t.shape == (h, n, m)


@pytest.mark.parametrize("quota", [0, 2])
def test_rns_rows_sum_to_one_and_vanish_outside_reciprocal_neighbours(quota: int) -> None:
    torch.manual_seed(1)
    n, m, k = 12, 3, 4
    q_t, k_t = torch.randn(1, n, m, dtype=torch.float64), torch.randn(1, n, m, dtype=torch.float64)
    v = torch.randn(1, n, 5, dtype=torch.float64)
    modality = torch.tensor([0, 1] * 6)
    scale = 1 / math.sqrt(5)
    lists = neighbour_lists(q_t, k_t, k, modality=modality, quota=quota, chunk_size=5)
    cols, valid = reciprocal_candidates(lists)
    out, w = rns_aggregate(q_t, k_t, v, cols, valid, scale=scale, chunk_size=5, return_weights=True)
    full = torch.zeros(n, n, dtype=torch.float64).scatter_add_(1, cols[0], w[0])  # (N, N) RNS matrix
    a = (q_t[0] @ k_t[0].T) * scale
    want_w, want_out = dense_rns(a, v[0], k, modality, quota)
    mk = dense_topk_mask(a, k, modality, quota)
    m_mask = (mk & mk.T) | torch.eye(n, dtype=torch.bool)
    torch.testing.assert_close(full.sum(1), torch.ones(n, dtype=torch.float64))
    assert bool((full[~m_mask] == 0).all())
    assert bool((full[m_mask] > 0).all())
    torch.testing.assert_close(full, want_w)
    torch.testing.assert_close(out[0], want_out)
    assert int((~(mk & mk.T)).logical_and(mk).sum()) > 0  # some top-k neighbours are not reciprocal


def test_reciprocal_candidates_by_hand() -> None:
    # rows' top-2: 0 -> {1, 2}, 1 -> {0, 3}, 2 -> {3, 1}, 3 -> {2, 0}; reciprocal pairs: (0,1), (2,3)
    lists = torch.tensor([[[1, 2], [0, 3], [3, 1], [2, 0]]])
    cols, valid = reciprocal_candidates(lists)
    got = {(i, int(j)) for i in range(4) for j, ok in zip(cols[0, i], valid[0, i]) if ok}
    assert got == {(0, 0), (1, 1), (2, 2), (3, 3), (0, 1), (1, 0), (2, 3), (3, 2)}


def test_quota_takes_the_other_modality() -> None:
    # scores = row_factor @ I: row 0 prefers 1 > 2 > 3 > 0; rows 0-2 are visible, row 3 infrared
    s = torch.tensor([[0.0, 5.0, 4.0, 1.0], [5.0, 0.0, 4.0, 1.0], [5.0, 4.0, 0.0, 1.0], [1.0, 4.0, 5.0, 0.0]])
    modality = torch.tensor([0, 0, 0, 1])
    eye = torch.eye(4)[None]
    plain = neighbour_lists(s[None], eye, 2, modality=modality, quota=0)
    assert sorted(plain[0, 0].tolist()) == [1, 2]
    reserved = neighbour_lists(s[None], eye, 2, modality=modality, quota=1)
    assert sorted(reserved[0, 0].tolist()) == [1, 3]  # top-1 overall + top-1 of the infrared rows
    assert reserved[0, 3].tolist() == [2, 2]  # row 3: top-1 overall and top-1 visible are both row 2 ...
    cols, valid = reciprocal_candidates(reserved)
    assert int(((cols[0, 3] == 2) & valid[0, 3]).sum()) <= 1  # ... and it counts once
@torch.no_grad()
@pytest.mark.parametrize("pre_norm", [False, True])
def test_block_chunked_equals_dense(pre_norm: bool) -> None:
    """A whole block (LAA + RNS + FF) with chunked neighbour search equals the same block on one chunk and a dense
    reimplementation of its attention."""
    torch.manual_seed(2)
    block = NFormerBlock(8, heads=2, landmarks=3, dropout=0.0, pre_norm=pre_norm).double().eval()
    x = torch.randn(30, 8, dtype=torch.float64)
    lm = torch.tensor([3, 11, 20])
    a = block(x, topk=5, landmarks=lm, chunk_size=7)
    b = block(x, topk=5, landmarks=lm, chunk_size=1000)
    torch.testing.assert_close(a, b)
    q, k, v = block.split(block.ln1(x) if pre_norm else x)
    heads = []
    for hd in range(2):
        q_t, k_t = landmark_factors(q[hd:hd + 1], k[hd:hd + 1], lm)
        att = (q_t[0] @ k_t[0].T) / math.sqrt(4)
        heads.append(dense_rns(att, v[hd], 5)[1])
    att_out = torch.cat(heads, dim=1)  # (N, d)
    if pre_norm:
        h = x + block.proj(att_out)
        torch.testing.assert_close(a, h + block.ff(block.ln2(h)))
    else:
        h = block.ln1(x + block.proj(att_out))
        torch.testing.assert_close(a, block.ln2(h + block.ff(h)))


@pytest.mark.parametrize("neighbours", ["affinity", "input"])
def test_encoder_gradients_reach_every_parameter(neighbours: str) -> None:
    torch.manual_seed(3)
    enc = NFormerEncoder(12, dim=8, blocks=2, heads=2, landmarks=3, topk=4, neighbours=neighbours, cross_modal_quota=1)
    z = torch.randn(16, 12, requires_grad=True)
    refined, bn = enc(z, torch.tensor([0, 1] * 8))
    (refined.pow(2).sum() + bn.pow(3).sum()).backward()
    for name, p in enc.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    assert z.grad is not None and bool(z.grad.abs().sum() > 0)
