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


def centred_pair(q: Tensor, g: Tensor) -> Tensor:
    """:func:`centred` of the concatenation ``[q; g]`` (N, D), written straight into its GEMM dtype."""
    nq, n = q.shape[0], q.shape[0] + g.shape[0]
    mean = (q.sum(dim=0) + g.sum(dim=0)) / n  # (D,)
    xc = torch.empty(n, q.shape[1], dtype=gemm_dtype(q.device), device=q.device)  # (N, D)
    torch.sub(q, mean, out=xc[:nq])
    torch.sub(g, mean, out=xc[nq:])
    return xc


def distance_tiles(xc: Tensor, block: int) -> Iterator[tuple[slice, slice, Tensor]]:
    """Yield ``(rows, cols, d)`` for the upper-triangle tiles, ``d`` (r, c) float32 squared distances.

    ``rows.start <= cols.start``; on diagonal tiles (``rows == cols``) ``d`` is symmetric with a zero
    diagonal; off-diagonal tiles stand for their transposes too. ``d`` lives in a buffer that the
    next tile overwrites: a consumer copies what it keeps.
    """
    n = xc.shape[0]
    dim = xc.shape[1]
    # |x_i - x_j|^2 = [x_i, |x_i|^2, 1] . [-2 x_j, 1, |x_j|^2]: one GEMM per tile, no extra passes.
    left = torch.empty(n, dim + 2, dtype=xc.dtype, device=xc.device)  # (N, D+2)
    right = torch.empty_like(left)  # (N, D+2)
    left[:, :dim] = xc
    torch.sum(xc * xc, dim=1, out=left[:, dim])  # |x_i|^2
    left[:, dim + 1] = 1.0
    torch.mul(xc, -2.0, out=right[:, :dim])
    right[:, dim] = 1.0
    right[:, dim + 1] = left[:, dim]
    direct = xc.dtype == torch.float32  # GEMM straight into the reused float32 buffer
    buf = torch.empty(min(block, n) ** 2, dtype=torch.float32, device=xc.device)
    for a in range(0, n, block):
        rows = slice(a, min(a + block, n))
        for b in range(a, n, block):
            cols = slice(b, min(b + block, n))
            d = buf[: (rows.stop - a) * (cols.stop - b)].view(rows.stop - a, cols.stop - b)  # (r, c)
            if a == b:  # only the upper triangle, mirrored: exact symmetry and a zero diagonal
                _diagonal_tile(left[rows], right[rows], d)
            elif direct:
                torch.mm(left[rows], right[cols].T, out=d)
                d.clamp_min_(0.0)
            else:
                d.copy_((left[rows] @ right[cols].T).clamp_min_(0.0))
            yield rows, cols, d


_SUB = 256  # side of the sub-blocks of a diagonal tile


def _diagonal_tile(left: Tensor, right: Tensor, d: Tensor) -> None:
    """Fill the symmetric (r, r) ``d`` from the GEMMs of its upper-triangle sub-blocks."""
    r = d.shape[0]
    for p in range(0, r, _SUB):
        ps = slice(p, min(p + _SUB, r))
        for q in range(p, r, _SUB):
            qs = slice(q, min(q + _SUB, r))
            blk = (left[ps] @ right[qs].T).clamp_min_(0.0).to(torch.float32)  # (p', q')
            if p == q:
                blk = blk.triu(1)
                blk = blk + blk.T
                d[ps, ps] = blk
            else:
                d[ps, qs] = blk
                d[qs, ps] = blk.T


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
    xc = centred_pair(q, g)  # (N, D)
    n = xc.shape[0]
    out = torch.empty(n, n, dtype=torch.float32, device=dev)  # (N, N)
    for rows, cols, d in distance_tiles(xc, check_int("chunk_size", chunk_size, 1)):
        out[rows, cols] = d
        out[cols, rows] = d.T
    return out.cpu().numpy()
