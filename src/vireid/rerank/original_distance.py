"""The original distance of k-reciprocal re-ranking (Zhong et al., CVPR 2017, Eq. 1), in tiles.

``d(i, j) = |x_i - x_j|^2`` over all N = nq + ng items, produced as (block, block) tiles of the
upper triangle so that no N x N matrix is ever held: a consumer uses each tile for its rows and,
transposed, for its columns. The matrix is exactly symmetric with an exact zero diagonal.

Memory: one (N, D + 2) matrix ``[x_i - mean, |x_i - mean|^2, 1]`` in the GEMM dtype, built chunk by
chunk from the caller's features (no float64 copy of the whole set); the matching right-hand rows
``[-2 x_j, 1, |x_j|^2]`` are made per tile (exact: a scaling by -2), so one tile is one GEMM.

Precision: float32 GEMM on the CPU (as the reference's float32 ``addmm``) on mean-centred
features (the mean taken in float64), which shrinks the rounding of ``|a|^2 + |b|^2 - 2 a.b``;
float64 GEMM rounded to float32 on other devices, where a global TF32 switch could otherwise
silently degrade float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from vireid.errors import FeaturesError
from vireid.rerank._distance import ArrayLike, check_int, gemm_dtype, resolve_device

_ROWS = 8192  # rows per pass when building the augmented matrix
QUERY_BLOCK = 128  # rows of the fixed-shape GEMMs behind the query-gallery distances


def _raw(x: ArrayLike, name: str) -> Tensor:
    """``x`` as a tensor without copying; checks shape and dtype (values are checked per chunk)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x.detach()
    if t.dim() != 2:
        raise FeaturesError(f"{name}: expected a 2-D (n, D) feature matrix, got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise FeaturesError(f"{name}: empty feature matrix of shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise FeaturesError(f"{name}: expected a real-valued feature matrix, got dtype {t.dtype}")
    return t


def augmented_pair(qf: ArrayLike, gf: ArrayLike, device: torch.device) -> Tensor:
    """``[x - mean, |x - mean|^2, 1]`` of the concatenation ``[qf; gf]``: (N, D + 2), GEMM dtype.

    Raises :class:`FeaturesError` on malformed input, a dimension mismatch or a NaN/inf row.
    """
    parts = [(_raw(qf, "query features"), "query features"), (_raw(gf, "gallery features"), "gallery features")]
    dim = parts[0][0].shape[1]
    if parts[1][0].shape[1] != dim:
        raise FeaturesError(f"query features have dimension {dim} but gallery features {parts[1][0].shape[1]}")
    n = parts[0][0].shape[0] + parts[1][0].shape[0]
    total = torch.zeros(dim, dtype=torch.float64, device=device)
    for x, name in parts:
        bad_rows: list[int] = []
        num_bad = 0
        for s in range(0, x.shape[0], _ROWS):
            chunk = x[s : s + _ROWS].to(device=device, dtype=torch.float64)  # (c, D)
            bad = ~torch.isfinite(chunk).all(dim=1)  # (c,)
            if bool(bad.any()):
                num_bad += int(bad.sum())
                bad_rows += (torch.nonzero(bad).flatten()[:5] + s).tolist()
            total += chunk.sum(dim=0)
        if num_bad:
            raise FeaturesError(f"{name}: {num_bad} row(s) hold NaN/inf values, first rows {bad_rows[:5]}")
    mean = total / n  # (D,)
    left = torch.empty(n, dim + 2, dtype=gemm_dtype(device), device=device)  # (N, D+2)
    row = 0
    for x, _ in parts:
        for s in range(0, x.shape[0], _ROWS):
            chunk = x[s : s + _ROWS].to(device=device, dtype=torch.float64)
            out = left[row : row + chunk.shape[0]]
            out[:, :dim] = chunk - mean
            xc = out[:, :dim]
            torch.sum(xc * xc, dim=1, out=out[:, dim])  # |x_i|^2 in the GEMM dtype
            out[:, dim + 1] = 1.0
            row += chunk.shape[0]
    return left


def right_rows(left: Tensor, rows: slice) -> Tensor:
    """``[-2 x_j, 1, |x_j|^2]`` for ``rows`` of ``left`` (a fresh, owned (r, D + 2) tensor)."""
    dim = left.shape[1] - 2
    blk = left[rows]
    right = torch.empty(blk.shape, dtype=left.dtype, device=left.device)  # (r, D+2)
    torch.mul(blk[:, :dim], -2.0, out=right[:, :dim])
    right[:, dim] = 1.0
    right[:, dim + 1] = blk[:, dim]
    return right


def distance_tiles(left: Tensor, block: int) -> Iterator[tuple[slice, slice, Tensor]]:
    """Yield ``(rows, cols, d)`` for the upper-triangle tiles, ``d`` (r, c) float32 squared distances.

    ``left`` is :func:`augmented_pair`'s matrix. ``rows.start <= cols.start``; on diagonal tiles
    (``rows == cols``) ``d`` is symmetric with a zero diagonal; off-diagonal tiles stand for their
    transposes too. ``d`` lives in a buffer that the next tile overwrites: a consumer copies what it keeps.
    """
    n = left.shape[0]
    direct = left.dtype == torch.float32  # GEMM straight into the reused float32 buffer
    buf = torch.empty(min(block, n) ** 2, dtype=torch.float32, device=left.device)
    for b in range(0, n, block):
        cols = slice(b, min(b + block, n))
        right = right_rows(left, cols)  # (c, D+2), |x_i - x_j|^2 = left_i . right_j
        for a in range(0, b + 1, block):
            rows = slice(a, min(a + block, n))
            d = buf[: (rows.stop - a) * (cols.stop - b)].view(rows.stop - a, cols.stop - b)  # (r, c)
            if a == b:  # only the upper triangle, mirrored: exact symmetry and a zero diagonal
                _diagonal_tile(left[rows], right, d)
            elif direct:
                torch.mm(left[rows], right.T, out=d)
                d.clamp_min_(0.0)
            else:
                d.copy_((left[rows] @ right.T).clamp_min_(0.0))
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


def query_gallery_rows(left: Tensor, nq: int, rows: slice, block: int) -> Tensor:
    """float32 squared distances of the queries ``rows`` to every gallery item: (len(rows), ng).

    Every GEMM has a fixed shape, (QUERY_BLOCK, D + 2) x (D + 2, block) on fresh owned buffers,
    over absolute QUERY_BLOCK-aligned query blocks (the last one zero-padded) and block-aligned
    gallery columns, so a row's values do not depend on which rows were asked together: streamed
    re-ranking equals the unstreamed one bit for bit, whatever the stream's chunk size.
    """
    n, width = left.shape
    first, last = rows.start // QUERY_BLOCK, (rows.stop - 1) // QUERY_BLOCK
    out = torch.empty(rows.stop - rows.start, n - nq, dtype=torch.float32, device=left.device)  # (c, ng)
    lq = torch.zeros(QUERY_BLOCK, width, dtype=left.dtype, device=left.device)  # (B, D+2)
    for k in range(first, last + 1):
        a, b = k * QUERY_BLOCK, min((k + 1) * QUERY_BLOCK, nq)
        lq.zero_()
        lq[: b - a] = left[a:b]
        lo, hi = max(a, rows.start), min(b, rows.stop)  # the rows of this block that were asked for
        for c0 in range(nq, n, block):
            cols = slice(c0, min(c0 + block, n))
            d = (lq @ right_rows(left, cols).T)[lo - a : hi - a]  # (h, c)
            out[lo - rows.start : hi - rows.start, c0 - nq : cols.stop - nq] = d.clamp_min_(0.0)
    return out


def original_distance_matrix(
    qf: ArrayLike, gf: ArrayLike, *, chunk_size: int = 2048, device: str | torch.device | None = None
) -> np.ndarray:
    """The dense (N, N) float32 squared-distance matrix, bit-identical to the tiles that
    :func:`~vireid.rerank.k_reciprocal_rerank` computes with the same ``chunk_size``.

    For tests and benchmarks that feed the reference implementation the very same distances;
    it holds N x N floats, which the re-ranker itself never does.
    """
    dev = resolve_device(qf, device)
    left = augmented_pair(qf, gf, dev)  # (N, D+2)
    n = left.shape[0]
    out = torch.empty(n, n, dtype=torch.float32, device=dev)  # (N, N)
    for rows, cols, d in distance_tiles(left, check_int("chunk_size", chunk_size, 1)):
        out[rows, cols] = d
        out[cols, rows] = d.T
    return out.cpu().numpy()
