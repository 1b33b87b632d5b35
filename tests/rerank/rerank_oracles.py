"""Straightforward, obviously-correct re-rankers for the tests: dense float64/float32 matrices,
loops over items and Python sets. Slow on purpose; only for tiny problems."""

from __future__ import annotations

import numpy as np


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) Euclidean distances by explicit differences, float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))


def reciprocal_set(rank: np.ndarray, p: int, k: int) -> set[int]:
    """R(p, k): the items g among p's first k + 1 ranked items that have p among their own."""
    return {int(g) for g in rank[p, : k + 1] if p in set(rank[g, : k + 1].tolist())}


def expanded_set(rank: np.ndarray, p: int, k: int, strict: bool = True) -> set[int]:
    """R*(p, k) with the 2/3 rule over the round-half-even(k/2) sets (Zhong et al., CVPR 2017)."""
    r = reciprocal_set(rank, p, k)
    out = set(r)
    for c in r:
        rc = reciprocal_set(rank, c, int(np.around(k / 2.0)))
        common = len(rc & r)
        if (common > 2.0 / 3.0 * len(rc)) if strict else (common >= 2.0 / 3.0 * len(rc)):
            out |= rc
    return out


def reference_k_reciprocal(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """The public reference ``re_ranking`` (zhunzhong07/person-re-ranking, torchreid), step by step
    on dense matrices: squared Euclidean over all N items, float32, divided by the column max and
    transposed; full argsort; R* sets; V; k2 query expansion; Jaccard; final mix."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    nq, n = len(qf), len(x)
    dist = (euclidean(x, x) ** 2).astype(np.float32)  # (N, N)
    d0 = np.transpose(dist / np.max(dist, axis=0))
    rank = np.argsort(d0, axis=1)
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        members = np.array(sorted(expanded_set(rank, i, k1)))
        w = np.exp(-d0[i, members])
        v[i, members] = w / np.sum(w)
    if k2 != 1:
        v = np.stack([np.mean(v[rank[i, :k2]], axis=0) for i in range(n)]).astype(np.float32)
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        common = np.minimum(v[i][None, :], v).sum(axis=1)  # (N,) sum of element-wise minima
        jaccard[i] = 1.0 - common / (2.0 - common)
    final = jaccard * (1 - lambda_value) + d0[:nq] * lambda_value
    return final[:, nq:]


def reference_sim(
    qf: np.ndarray,
    gf: np.ndarray,
    *,
    lam: float = 1.0,
    top_k: int = 3,
    k_q: int = 10,
    k_g: int = 10,
    alpha: float = 0.5,
    normalize: bool = True,
) -> np.ndarray:
    """SIM (seeds/002 §5, Eq. 1-8), one query at a time on full float64 matrices."""
    q, g = np.asarray(qf, np.float64), np.asarray(gf, np.float64)
    if normalize:
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
    d_qg, d_gg = euclidean(q, g), euclidean(g, g)
    nq, ng = d_qg.shape
    rank = np.argsort(d_gg, axis=1, kind="stable")
    r_star = [expanded_set(rank, j, k_g) for j in range(ng)]
    out = np.zeros((nq, ng))
    for i in range(nq):
        paths = d_qg[i][:, None] + lam * d_gg  # (t, j): q -> g_t -> g_j
        d_s = np.sort(paths, axis=0)[:top_k].mean(axis=0)  # (ng,)
        n_c = set(np.argsort(d_s, kind="stable")[:k_q].tolist())
        for j in range(ng):
            d_m = 1.0 - len(n_c & r_star[j]) / len(n_c | r_star[j])
            out[i, j] = alpha * d_s[j] + (1.0 - alpha) * d_m
    return out
