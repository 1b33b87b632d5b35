"""Soft-edged drawing primitives and fabric patterns, vectorised over a pixel grid.

Part of the procedural synthetic VI-ReID dataset (not from a seed paper; it stands in for
SYSU-MM01, Wu et al. ICCV'17, whose layout it copies: see PROTOCOLS.md "SYSU-MM01").

Every primitive is evaluated on a :class:`Grid`, the body-space coordinates of every pixel of
one image (``u`` to the person's right, ``v`` down, both in units of the person's height, the
top of the head at ``v = 0`` and the soles at ``v = 1``). A primitive returns a coverage
``alpha`` in [0, 1] with a one-pixel soft edge (so drawings are anti-aliased without
super-sampling) and a normalised distance from its axis in [0, 1] that the renderer uses for
shading. No per-pixel Python loops: each call is a handful of NumPy array operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PATTERN_KINDS: tuple[str, ...] = ("plain", "stripes", "checks", "dots")


@dataclass(frozen=True)
class Grid:
    """Body-space coordinates of every pixel of one image.

    ``u`` and ``v`` are (H, W) float32 arrays; ``px`` is the size of one pixel in body units,
    which sets the width of the anti-aliased edge.
    """

    u: np.ndarray  # (H, W)
    v: np.ndarray  # (H, W)
    px: float
    # affine (u, v, 1) -> (column, row) as ((a, b, c), (d, e, f)); None: windows are the whole grid
    to_pixel: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    def window(self, u0: float, u1: float, v0: float, v1: float) -> tuple["Grid", tuple[slice, slice]] | None:
        """The sub-grid covering the body-space box ``[u0, u1] x [v0, v1]`` (plus a 2-pixel margin).

        Returns ``(sub_grid, (rows, cols))``, or ``None`` when the box is outside the image.
        Drawing only inside a primitive's window keeps the cost proportional to its area.
        """
        h, w = self.u.shape
        if self.to_pixel is None:
            return self, (slice(0, h), slice(0, w))
        (a, b, c), (d, e, f) = self.to_pixel
        # an affine map's extreme values over a box are at its corners: add the per-axis extremes
        c_lo = c + min(a * u0, a * u1) + min(b * v0, b * v1)
        c_hi = c + max(a * u0, a * u1) + max(b * v0, b * v1)
        r_lo = f + min(d * u0, d * u1) + min(e * v0, e * v1)
        r_hi = f + max(d * u0, d * u1) + max(e * v0, e * v1)
        r0, r1 = max(int(math.floor(r_lo)) - 2, 0), min(int(math.ceil(r_hi)) + 3, h)
        c0, c1 = max(int(math.floor(c_lo)) - 2, 0), min(int(math.ceil(c_hi)) + 3, w)
        if r0 >= r1 or c0 >= c1:
            return None
        sl = (slice(r0, r1), slice(c0, c1))
        return Grid(self.u[sl], self.v[sl], self.px), sl


@dataclass(frozen=True)
class PatternSpec:
    """A two-dye fabric pattern.

    ``kind`` is one of :data:`PATTERN_KINDS`; ``freq`` is in cycles per body height;
    ``angle`` (radians) rotates stripes/checks/dot lattices; ``phase`` in [0, 1) shifts them.
    """

    kind: str = "plain"
    freq: float = 0.0
    angle: float = 0.0
    phase: float = 0.0


def coverage(sd: np.ndarray, px: float) -> np.ndarray:
    """Signed distance (body units, negative inside) to a coverage in [0, 1] with a 1-pixel ramp."""
    return np.clip(0.5 - sd / px, 0.0, 1.0).astype(np.float32, copy=False)  # (H, W)


def capsule(grid: Grid, p0: tuple[float, float], p1: tuple[float, float], r0: float,
            r1: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A limb: the segment ``p0 -> p1`` (u, v) thickened to radius ``r0`` tapering to ``r1``.

    Returns ``(alpha, t, d)``: coverage, the position along the segment in [0, 1] (0 at ``p0``)
    and the distance from the axis divided by the local radius (0 on the axis, 1 on the edge).
    """
    r1 = r0 if r1 is None else r1
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    length2 = max(du * du + dv * dv, 1e-12)
    t = np.clip(((grid.u - p0[0]) * du + (grid.v - p0[1]) * dv) / length2, 0.0, 1.0)  # (H, W)
    cu = grid.u - (p0[0] + t * du)  # (H, W)
    cv = grid.v - (p0[1] + t * dv)  # (H, W)
    dist = np.sqrt(cu * cu + cv * cv)  # (H, W)
    radius = r0 + (r1 - r0) * t  # (H, W)
    alpha = coverage(dist - radius, grid.px)  # (H, W)
    return alpha, t.astype(np.float32), np.clip(dist / radius, 0.0, 1.0).astype(np.float32)


def ellipse(grid: Grid, centre: tuple[float, float], a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned ellipse with half-axes ``a`` (along u) and ``b`` (along v).

    Returns ``(alpha, d)`` with ``d`` the normalised radius (1 on the outline). The signed
    distance is the usual first-order approximation ``(rho - 1) * min(a, b)``.
    """
    rho = np.sqrt(((grid.u - centre[0]) / a) ** 2 + ((grid.v - centre[1]) / b) ** 2)  # (H, W)
    alpha = coverage((rho - 1.0) * min(a, b), grid.px)  # (H, W)
    return alpha, np.clip(rho, 0.0, 1.0).astype(np.float32)


def trapezoid(grid: Grid, v0: float, v1: float, w0: float, w1: float, cu: float = 0.0,
              round_top: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A vertical trapezoid: half-width ``w0`` at ``v = v0`` widening linearly to ``w1`` at ``v1``.

    ``round_top`` > 0 rounds the two top corners (shoulders) with that radius. Returns
    ``(alpha, d)`` with ``d = |u - cu| / half-width`` (horizontal position for shading).
    """
    s = np.clip((grid.v - v0) / max(v1 - v0, 1e-6), 0.0, 1.0)  # (H, W)
    half = w0 + (w1 - w0) * s  # (H, W)
    x = np.abs(grid.u - cu)  # (H, W)
    sd = np.maximum(np.maximum(x - half, v0 - grid.v), grid.v - v1)  # (H, W)
    if round_top > 0.0:
        # distance to the rounded corner region: inside the square of side round_top at the corner
        cx, cy = x - (w0 - round_top), v0 + round_top - grid.v  # (H, W)
        corner = (cx > 0) & (cy > 0)  # (H, W)
        sd = np.where(corner, np.sqrt(cx * cx + cy * cy) - round_top, sd)  # (H, W)
    return coverage(sd, grid.px), np.clip(x / half, 0.0, 1.0).astype(np.float32)


def rectangle(grid: Grid, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """An axis-aligned rectangle ``[u0, u1] x [v0, v1]``; returns its coverage."""
    sd = np.maximum(np.maximum(u0 - grid.u, grid.u - u1), np.maximum(v0 - grid.v, grid.v - v1))  # (H, W)
    return coverage(sd, grid.px)


def band(grid: Grid, p0: tuple[float, float], p1: tuple[float, float], half_width: float) -> np.ndarray:
    """A strap: the segment ``p0 -> p1`` of constant half-width (flat ends)."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    length = max(float(np.hypot(du, dv)), 1e-9)
    nu, nv = du / length, dv / length
    along = (grid.u - p0[0]) * nu + (grid.v - p0[1]) * nv  # (H, W)
    across = np.abs(-(grid.u - p0[0]) * nv + (grid.v - p0[1]) * nu)  # (H, W)
    sd = np.maximum(across - half_width, np.maximum(-along, along - length))  # (H, W)
    return coverage(sd, grid.px)


def pattern_field(grid: Grid, spec: PatternSpec) -> np.ndarray:
    """The share of the second dye at every pixel, in [0, 1] (0 everywhere for ``plain``).

    Stripes are a clipped sine (a square wave with soft one-pixel edges), checks the XOR of two
    orthogonal stripe sets, dots a lattice of discs of radius 0.28 period. Coordinates are body
    space, so the pattern moves and scales with the person and is the same in both modalities.
    """
    if spec.kind == "plain" or spec.freq <= 0.0:
        return np.zeros_like(grid.u)
    c, s = np.cos(spec.angle), np.sin(spec.angle)
    a = (grid.u * c + grid.v * s) * spec.freq + spec.phase  # (H, W) in cycles
    b = (-grid.u * s + grid.v * c) * spec.freq + spec.phase  # (H, W)
    # edge sharpness: a unit change of the square wave over about one pixel
    sharp = max(1.0 / (2.0 * np.pi * spec.freq * grid.px), 1.0)
    if spec.kind == "stripes":
        return np.clip(0.5 + sharp * np.sin(2.0 * np.pi * a), 0.0, 1.0).astype(np.float32)
    if spec.kind == "checks":
        sa = np.clip(sharp * np.sin(2.0 * np.pi * a), -1.0, 1.0)  # (H, W)
        sb = np.clip(sharp * np.sin(2.0 * np.pi * b), -1.0, 1.0)  # (H, W)
        return (0.5 - 0.5 * sa * sb).astype(np.float32)
    if spec.kind == "dots":
        fa, fb = a - np.round(a), b - np.round(b)  # (H, W) offsets to the nearest lattice point
        dist = np.sqrt(fa * fa + fb * fb) / spec.freq  # (H, W) body units
        return coverage(dist - 0.28 / spec.freq, grid.px)
    raise ValueError(f"unknown pattern kind {spec.kind!r}; expected one of {PATTERN_KINDS}")
