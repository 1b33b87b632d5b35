"""The original distance of k-reciprocal re-ranking (Zhong et al., CVPR 2017, Eq. 1), in tiles.

``d(i, j) = |x_i - x_j|^2`` over all N = nq + ng items, produced as (block, block) tiles of the
upper triangle so that no N x N matrix is ever held: a consumer uses each tile for its rows and,
transposed, for its columns. The matrix is exactly symmetric with an exact zero diagonal.

Memory: no copy of the features (issue 17: MSMT17 at D = 2048 within 2 GB). The (N, D + 2) matrix
``[x_i - mean, |x_i - mean|^2, 1]`` in the GEMM dtype (:class:`AugmentedRows`) is made a row block at
a time from the caller's features, with the N squared norms kept; the matching right-hand rows
``[-2 x_j, 1, |x_j|^2]`` are made per tile (exact: a scaling by -2), so one tile is one GEMM. On
accelerators the matrix is built once instead.

Precision: float32 GEMM on the CPU (as the reference's float32 ``addmm``) on mean-centred
features (the mean taken in float64; float32 features centred in float32), which shrinks the rounding
of ``|a|^2 + |b|^2 - 2 a.b``;
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

_ROWS = 2048  # rows per pass of the set-up (mean, norms): a float64 chunk is 32 MB at D = 2048
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


class AugmentedRows:
    """``[x - mean, |x - mean|^2, 1]`` of the concatenation ``[qf; gf]``: an (N, D + 2) matrix in the
    GEMM dtype whose rows are made on demand (``rows[a:b]``, ``rows[index]``) from the caller's
    features, so the re-ranker holds no copy of the set (at MSMT17 size and D = 2048 a copy is 769 MB).

    Centring: ``x - mean`` in float32 for float32 features on the CPU (one correctly rounded
    subtraction of the float32-rounded float64 mean: any common centre gives the same distances,
    centring only shrinks the rounding of ``|a|^2 + |b|^2 - 2 a.b``); otherwise in float64, rounded to
    the GEMM dtype. Every row is computed by the same formula wherever it is asked for, so a tile's
    values do not depend on the blocks around it. On accelerators the matrix is built once
    (``materialise``): per-tile host-to-device copies would cost more than its memory.

    Raises :class:`FeaturesError` on malformed input, a dimension mismatch or a NaN/inf row.
    """

    def __init__(self, qf: ArrayLike, gf: ArrayLike, device: torch.device, *, materialise: bool | None = None) -> None:
        parts = [(_raw(qf, "query features"), "query features"), (_raw(gf, "gallery features"), "gallery features")]
        dim = parts[0][0].shape[1]
        if parts[1][0].shape[1] != dim:
            raise FeaturesError(f"query features have dimension {dim} but gallery features {parts[1][0].shape[1]}")
        self.nq = parts[0][0].shape[0]
        n = self.nq + parts[1][0].shape[0]
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
        self.dtype = gemm_dtype(device)
        self.device = device
        self.shape = (n, dim + 2)
        self._q, self._g = (x.to(device) for x, _ in parts)  # no copy when already there (numpy on the CPU)
        self._mean64 = total / n  # (D,)
        self._mean = self._mean64.to(self.dtype)  # (D,)
        self._dense: Tensor | None = None
        self.norms = torch.empty(n, dtype=self.dtype, device=device)  # (N,) |x_i - mean|^2
        for s in range(0, n, _ROWS):
            xc = self.centred(slice(s, min(s + _ROWS, n)))  # (c, D)
            torch.sum(xc * xc, dim=1, out=self.norms[s : s + xc.shape[0]])
        if materialise if materialise is not None else device.type != "cpu":
            self._dense = self.dense()  # (N, D+2)
            del self._q, self._g  # the dense rows replace the features

    @property
    def centred_rows(self) -> "_CentredRows":
        """``x - mean`` as an indexable (N, D) matrix (``pair_distances`` takes it)."""
        return _CentredRows(self)

    def _centre(self, raw: Tensor, out: Tensor | None = None) -> Tensor:
        """``raw - mean`` in the GEMM dtype by the rule of ``raw``'s dtype (so per part, per row, the same)."""
        if raw.dtype == self.dtype:
            return torch.sub(raw, self._mean, out=out)
        xc = (raw.to(torch.float64) - self._mean64).to(self.dtype)
        return xc if out is None else out.copy_(xc)

    def centred(self, rows: slice | Tensor, out: Tensor | None = None) -> Tensor:
        """(r, D) ``x - mean`` of ``rows`` in the GEMM dtype (into ``out`` if given)."""
        if self._dense is not None:
            xc = self._dense[rows, :-2]
            return xc if out is None else out.copy_(xc)
        nq = self.nq
        if isinstance(rows, slice):
            a, b = rows.start or 0, min(rows.stop, self.shape[0])
            if b <= nq:
                return self._centre(self._q[a:b], out)
            if a >= nq:
                return self._centre(self._g[a - nq : b - nq], out)
            if out is None:
                out = torch.empty(b - a, self.shape[1] - 2, dtype=self.dtype, device=self.device)
            self._centre(self._q[a:], out[: nq - a])  # a block across the query/gallery boundary
            self._centre(self._g[: b - nq], out[nq - a :])
            return out
        if out is None:
            out = torch.empty(rows.shape[0], self.shape[1] - 2, dtype=self.dtype, device=self.device)
        in_q = rows < nq
        out[in_q] = self._centre(self._q[rows[in_q]])
        out[~in_q] = self._centre(self._g[rows[~in_q] - nq])
        return out

    def __getitem__(self, rows: slice | Tensor) -> Tensor:
        """(r, D + 2) augmented rows ``[x - mean, |x - mean|^2, 1]`` (a fresh tensor)."""
        if self._dense is not None:
            return self._dense[rows]
        dim = self.shape[1] - 2
        norms = self.norms[rows]  # (r,)
        out = torch.empty(norms.shape[0], dim + 2, dtype=self.dtype, device=self.device)  # (r, D+2)
        self.centred(rows, out=out[:, :dim])
        out[:, dim] = norms
        out[:, dim + 1] = 1.0
        return out

    def dense(self) -> Tensor:
        """The whole (N, D + 2) matrix (for tests and for feeding a reference implementation)."""
        if self._dense is not None:
            return self._dense
        return torch.cat([self[slice(s, min(s + _ROWS, self.shape[0]))] for s in range(0, self.shape[0], _ROWS)])


class _CentredRows:
    """Index ``[rows]`` -> (r, D) centred rows of an :class:`AugmentedRows`."""

    def __init__(self, left: AugmentedRows) -> None:
        self.left, self.device, self.dtype = left, left.device, left.dtype

    def __getitem__(self, rows: slice | Tensor) -> Tensor:
        return self.left.centred(rows)


Augmented = AugmentedRows | Tensor  # a dense (N, D + 2) tensor works wherever the lazy rows do


def augmented_pair(qf: ArrayLike, gf: ArrayLike, device: torch.device) -> Tensor:
    """The dense (N, D + 2) matrix of :class:`AugmentedRows` (tests, benchmarks, reference inputs)."""
    return AugmentedRows(qf, gf, device).dense()


def right_rows(left: Augmented, rows: slice) -> Tensor:
    """``[-2 x_j, 1, |x_j|^2]`` for ``rows`` of ``left`` (a fresh, owned (r, D + 2) tensor)."""
    dim = left.shape[1] - 2
    if isinstance(left, AugmentedRows):
        norms = left.norms[rows]  # (r,)
        right = torch.empty(norms.shape[0], dim + 2, dtype=left.dtype, device=left.device)  # (r, D+2)
        left.centred(rows, out=right[:, :dim]).mul_(-2.0)  # exact: a scaling by -2
        right[:, dim + 1] = norms
    else:
        blk = left[rows]
        right = torch.empty(blk.shape, dtype=left.dtype, device=left.device)  # (r, D+2)
        torch.mul(blk[:, :dim], -2.0, out=right[:, :dim])
        right[:, dim + 1] = blk[:, dim]
    right[:, dim] = 1.0
    return right


def distance_tiles(left: Augmented, block: int) -> Iterator[tuple[slice, slice, Tensor]]:
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


def query_gallery_rows(left: Augmented, nq: int, rows: slice, block: int) -> Tensor:
    """float32 squared distances of the queries ``rows`` to every gallery item: (len(rows), ng).

    Every GEMM has a fixed shape, (QUERY_BLOCK, D + 2) x (D + 2, block) on fresh owned buffers,
    over absolute QUERY_BLOCK-aligned query blocks (the last one zero-padded) and block-aligned
    gallery columns, so a row's values do not depend on which rows were asked together: streamed
    re-ranking equals the unstreamed one bit for bit, whatever the stream's chunk size.
    """
    n, width = left.shape
    first, last = rows.start // QUERY_BLOCK, (rows.stop - 1) // QUERY_BLOCK
    out = torch.empty(rows.stop - rows.start, n - nq, dtype=torch.float32, device=left.device)  # (c, ng)
    blocks = []  # (a, lo, hi, lq): the query blocks touching ``rows``, each (B, D+2), zero-padded
    for k in range(first, last + 1):
        a, b = k * QUERY_BLOCK, min((k + 1) * QUERY_BLOCK, nq)
        lq = torch.zeros(QUERY_BLOCK, width, dtype=left.dtype, device=left.device)  # (B, D+2)
        lq[: b - a] = left[a:b]
        blocks.append((a, max(a, rows.start), min(b, rows.stop), lq))  # lo:hi, the rows asked for
    for c0 in range(nq, n, block):
        cols = slice(c0, min(c0 + block, n))
        right = right_rows(left, cols)  # (c, D+2), made once for every query block
        for a, lo, hi, lq in blocks:
            d = (lq @ right.T)[lo - a : hi - a]  # (h, c)
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
