"""Shared plumbing of the re-rankers: input checks and chunked pairwise distances.

Distances are accumulated in float64 and rounded once to float32, so that a chunked computation
gives the same float32 matrix as a full one (up to one float32 ulp in ~1e-9 of the entries) and
small distances keep their precision (the ``|a|^2 + |b|^2 - 2 a.b`` form loses it in float32).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from vireid.errors import ConfigError, FeaturesError

logger = logging.getLogger(__name__)

ArrayLike = Tensor | np.ndarray


_MALLOC_TRIM = None  # glibc's malloc_trim once looked up; False where there is none


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Between set-up phases that free hundreds of MB of tensors below glibc's mmap threshold, the
    freed pages otherwise stay in the process (fragmentation) and add to every later peak: at
    MSMT17 size and D = 2048 this keeps k-reciprocal's peak ~120 MB lower (issue 17, 2 GB budget).
    The same remedy Dask documents for "memory not released back to the OS".
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


def as_features(x: ArrayLike, name: str, device: torch.device) -> Tensor:
    """Return ``x`` as a float64 (n, D) tensor on ``device``; raise on a malformed matrix."""
    t = torch.as_tensor(x)
    if t.dim() != 2:
        raise FeaturesError(f"{name}: expected a 2-D (n, D) feature matrix, got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise FeaturesError(f"{name}: empty feature matrix of shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise FeaturesError(f"{name}: expected a real-valued feature matrix, got dtype {t.dtype}")
    t = t.to(device=device, dtype=torch.float64)
    bad = ~torch.isfinite(t).all(dim=1)  # (n,)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise FeaturesError(f"{name}: {int(bad.sum())} row(s) hold NaN/inf values, first rows {rows}")
    return t


def check_pair(qf: Tensor, gf: Tensor) -> None:
    """Query and gallery features must share the embedding size."""
    if qf.shape[1] != gf.shape[1]:
        raise FeaturesError(
            f"query features have dimension {qf.shape[1]} but gallery features {gf.shape[1]}"
        )


def resolve_device(qf: ArrayLike, device: str | torch.device | None) -> torch.device:
    """``device`` if given, else the query tensor's device (CPU for numpy input)."""
    if device is not None:
        return torch.device(device)
    return qf.device if isinstance(qf, Tensor) else torch.device("cpu")


def check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: float, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= v <= high):
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}")
    return v


def gemm_dtype(device: torch.device) -> torch.dtype:
    """float32 on the CPU (the reference's precision, half the cost); float64 on accelerators,
    where a global TF32 setting could otherwise silently round float32 products to 10 bits."""
    return torch.float32 if device.type == "cpu" else torch.float64


def squared_distances(x: Tensor, y: Tensor, x_sq: Tensor, y_sq: Tensor) -> Tensor:
    """Squared Euclidean distances ``|x_i - y_j|^2`` in the inputs' dtype, clamped at 0.

    ``x_sq`` / ``y_sq`` are the precomputed squared norms, shapes (n,) and (m,).
    """
    d = torch.addmm(x_sq[:, None] + y_sq[None, :], x, y.T, beta=1.0, alpha=-2.0)  # (n, m)
    return d.clamp_min_(0.0)


def distance_block(
    x: Tensor, y: Tensor, x_sq: Tensor, y_sq: Tensor, *, squared: bool, diagonal_offset: int | None = None
) -> Tensor:
    """float32 (n, m) block of (squared) Euclidean distances between rows of ``x`` and ``y``.

    ``diagonal_offset``: when ``x`` is rows ``[o, o + n)`` of ``y``, set ``d[r, o + r] = 0`` exactly
    (the rounding of the Gram form leaves ~1e-13 there).
    """
    d = squared_distances(x, y, x_sq, y_sq)  # (n, m) float64
    if not squared:
        d = d.sqrt_()
    if diagonal_offset is not None:
        r = torch.arange(x.shape[0], device=x.device)
        d[r, r + diagonal_offset] = 0.0
    return d.to(torch.float32)


def pair_distances(
    x: Tensor, x_sq: Tensor, rows: Tensor, cols: Tensor, *, squared: bool, max_pairs: int = 1 << 14
) -> Tensor:
    """float32 distances for explicit index pairs ``(rows[p], cols[p])``, same formula as the blocks
    (computed in ``x``'s dtype)."""
    out = torch.empty(rows.shape[0], dtype=torch.float32, device=x.device)  # (P,)
    for s in range(0, rows.shape[0], max_pairs):
        r, c = rows[s : s + max_pairs], cols[s : s + max_pairs]
        dot = (x[r] * x[c]).sum(dim=1)  # (p,)
        d = (x_sq[r] + x_sq[c] - 2.0 * dot).clamp_min_(0.0)  # (p,)
        d[r == c] = 0.0
        if not squared:
            d = d.sqrt_()
        out[s : s + max_pairs] = d.to(torch.float32)
    return out


class FixedBlockRows:
    """Euclidean distances of any query rows to all of ``g``, computed in fixed-shape GEMMs.

    Queries are split into absolute ``block``-aligned blocks (the last zero-padded), each computed
    as one (block, D) x (D, ng) GEMM on a fresh buffer, so a row's values do not depend on which
    rows were asked together (BLAS kernels differ with the matrix shape). The last block is cached:
    consecutive small requests reuse it.
    """

    def __init__(self, q: Tensor, g: Tensor, q_sq: Tensor, g_sq: Tensor, *, squared: bool, block: int = 256) -> None:
        self.q, self.g, self.q_sq, self.g_sq, self.squared, self.block = q, g, q_sq, g_sq, squared, block
        self._cached: tuple[int, Tensor] | None = None

    def _block(self, k: int) -> Tensor:
        if self._cached is None or self._cached[0] != k:
            a, b = k * self.block, min((k + 1) * self.block, self.q.shape[0])
            x = torch.zeros(self.block, self.q.shape[1], dtype=self.q.dtype, device=self.q.device)  # (B, D)
            x_sq = torch.zeros(self.block, dtype=self.q.dtype, device=self.q.device)  # (B,)
            x[: b - a], x_sq[: b - a] = self.q[a:b], self.q_sq[a:b]
            self._cached = (k, distance_block(x, self.g, x_sq, self.g_sq, squared=self.squared)[: b - a])
        return self._cached[1]

    def rows(self, rows: slice) -> Tensor:
        """float32 (len(rows), ng) distances of the queries ``rows``."""
        parts = []
        for k in range(rows.start // self.block, (rows.stop - 1) // self.block + 1):
            a = k * self.block
            parts.append(self._block(k)[max(rows.start, a) - a : min(rows.stop, a + self.block) - a])
        return torch.cat(parts) if len(parts) > 1 else parts[0].clone()


def collect_stream(stream: Iterable[tuple[slice, Tensor]]) -> np.ndarray:
    """Concatenate a re-ranker's stream of (rows, block) into the full (nq, ng) float32 numpy matrix."""
    parts = [block.cpu().numpy() for _, block in stream]
    return np.concatenate(parts, axis=0) if len(parts) != 1 else parts[0]
