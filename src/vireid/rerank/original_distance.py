"""The original distance of k-reciprocal re-ranking (Zhong et al., CVPR 2017, Eq. 1), in tiles.

``d(i, j) = |x_i - x_j|^2`` over all N = nq + ng items, produced as (block, block) tiles of the
upper triangle so that no N x N matrix is ever held: a consumer uses each tile for its rows and,
transposed, for its columns. The matrix is exactly symmetric with an exact zero diagonal.

Precision: float32 GEMM on the CPU (as the reference's float32 ``addmm``) on mean-centred
features, which shrinks the rounding of ``|a|^2 + |b|^2 - 2 a.b``; float64 GEMM rounded to
float32 on other devices, where a global TF32 switch could otherwise silently degrade float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from vireid.rerank._distance import ArrayLike, as_features, check_int, check_pair, gemm_dtype, resolve_device


def centred(x: Tensor) -> Tensor:
    """Mean-centred features in the GEMM dtype of their device: same distances, less rounding."""
    return (x - x.mean(dim=0)).to(gemm_dtype(x.device))  # (N, D)


def distance_tiles(xc: Tensor, block: int) -> Iterator[tuple[slice, slice, Tensor]]:
    """Yield ``(rows, cols, d)`` for the upper-triangle tiles, ``d`` (r, c) float32 squared distances.

    ``rows.start <= cols.start``; on diagonal tiles (``rows == cols``) ``d`` is symmetric with a zero
    diagonal; off-diagonal tiles stand for their transposes too.
    """
    n = xc.shape[0]
    sq = (xc * xc).sum(dim=1, keepdim=True)  # (N, 1)
    one = torch.ones_like(sq)
    # |x_i - x_j|^2 = [x_i, |x_i|^2, 1] . [-2 x_j, 1, |x_j|^2]: one GEMM per tile, no extra passes.
    left = torch.cat([xc, sq, one], dim=1)  # (N, D+2)
    right = torch.cat([-2.0 * xc, one, sq], dim=1)  # (N, D+2)
    for a in range(0, n, block):
        rows = slice(a, min(a + block, n))
        for b in range(a, n, block):
            cols = slice(b, min(b + block, n))
            d = (left[rows] @ right[cols].T).clamp_min_(0.0).to(torch.float32)  # (r, c)
            if a == b:  # mirror the upper triangle: exact symmetry and a zero diagonal
                d = d.triu(1)
                d = d + d.T
            yield rows, cols, d


def original_distance_matrix(
    qf: ArrayLike, gf: ArrayLike, *, chunk_size: int = 2048, device: str | torch.device | None = None
) -> np.ndarray:
    """The dense (N, N) float32 squared-distance matrix, bit-identical to what
    :func:`~vireid.rerank.k_reciprocal_rerank` computes tile by tile with the same ``chunk_size``.

    For tests and benchmarks that feed the reference implementation the very same distances;
    it holds N x N floats, which the re-ranker itself never does.
    """
    dev = resolve_device(qf, device)
    q = as_features(qf, "query features", dev)
    g = as_features(gf, "gallery features", dev)
    check_pair(q, g)
    xc = centred(torch.cat([q, g]))  # (N, D)
    n = xc.shape[0]
    out = torch.empty(n, n, dtype=torch.float32, device=dev)  # (N, N)
    for rows, cols, d in distance_tiles(xc, check_int("chunk_size", chunk_size, 1)):
        out[rows, cols] = d
        out[cols, rows] = d.T
    return out.cpu().numpy()
