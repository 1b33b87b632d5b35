"""Colour-histogram matching: the learning-free baseline that cross-modal ReID must beat.

Classic colour-histogram person matching (the descriptor family that hand-crafted ReID
features such as LOMO build on; not from a seed paper). Each image becomes the concatenation of
its per-channel histograms (HSV by default, or RGB), L1-normalised so the whole vector sums to
1. Infrared images are single-channel: they are replicated to three channels first, as
VI-ReID pipelines feed them to networks (so in HSV an infrared image has hue 0 and saturation 0
everywhere and only its value histogram carries information).

Distances between histograms ``p`` and ``q``:

* Hellinger, ``H(p, q) = ||sqrt(p) - sqrt(q)||_2 / sqrt(2)``. :func:`hellinger_embedding`
  returns ``sqrt(p)`` (unit L2 norm), so **the Euclidean distance between embeddings is
  sqrt(2) x the Hellinger distance** and ranks identically: any evaluator that ranks by
  Euclidean (or cosine: the embeddings have unit norm) distance evaluates this baseline under
  the Hellinger / Bhattacharyya ranking without knowing about histograms.
* chi-square, ``chi2(p, q) = 1/2 sum_i (p_i - q_i)^2 / (p_i + q_i)`` (0/0 := 0), and L1:
  :func:`histogram_distances` computes the query x gallery matrix directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

SPACES = ("hsv", "rgb")
METRICS = ("hellinger", "chi2", "l1")


def _to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """(..., H, W), (..., H, W, 1) or (..., H, W, 3) uint8 / float-in-[0, 1] to (..., H, W, 3) uint8."""
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"images: expected uint8 or float in [0, 1], got dtype {arr.dtype}")
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[-1] not in (1, 3):
        arr = arr[..., None]  # grayscale without a channel axis
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr


def _as_rgb_uint8(images: np.ndarray | Sequence[np.ndarray | Image.Image]) -> np.ndarray | list[np.ndarray]:
    """(N, H, W, 3) uint8 from an array of images; a list of (H, W, 3) uint8 from a list of images."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise ValueError(f"images: expected shape (N, H, W), (N, H, W, 1) or (N, H, W, 3), got {images.shape}")
        return _to_rgb_uint8(images[..., None] if images.ndim == 3 else images)  # (N, H, W, 3)
    out = []
    for i, img in enumerate(images):
        if isinstance(img, Image.Image):
            # grayscale (and 16-bit / float) modes go through "L", then replicate
            img = img.convert("L") if img.mode in ("L", "I", "F", "I;16") else img.convert("RGB")
            img = np.asarray(img)
        if img.ndim not in (2, 3):
            raise ValueError(f"images[{i}]: expected (H, W) or (H, W, C) image, got shape {img.shape}")
        out.append(_to_rgb_uint8(img))  # sizes may differ from image to image
    return out


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) to HSV float in [0, 1) x [0, 1] x [0, 1] (hue 0 for grays), vectorised."""
    x = rgb.astype(np.float32) / 255.0  # (..., 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = np.where(delta > 0, h / 6.0, 0.0) % 1.0
    s = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([h, s, mx], axis=-1).astype(np.float32)  # (..., 3)


def _histogram(img: np.ndarray, bins: int, space: str) -> np.ndarray:
    """Concatenated per-channel histograms of one (H, W, 3) uint8 image, summing to 1."""
    if space == "hsv":
        idx = np.minimum((rgb_to_hsv(img) * bins).astype(np.int64), bins - 1)  # (H, W, 3)
    else:
        idx = (img.astype(np.int64) * bins) // 256  # (H, W, 3)
    idx = idx.reshape(-1, 3) + np.arange(3, dtype=np.int64) * bins  # (H*W, 3) offsets per channel
    hist = np.bincount(idx.ravel(), minlength=3 * bins).astype(np.float64)  # (3 * bins,)
    return (hist / hist.sum()).astype(np.float32)


def color_histogram_features(images: np.ndarray | Sequence[np.ndarray | Image.Image], bins: int = 16,
                             space: str = "hsv") -> np.ndarray:
    """Per-channel colour histograms, concatenated and L1-normalised: (N, 3 * bins) float32.

    ``images``: uint8 (N, H, W, 3) RGB, (N, H, W) / (N, H, W, 1) grayscale (replicated to RGB),
    float arrays in [0, 1], or a list of such arrays or PIL images (of any sizes; grayscale modes
    are replicated). Each row
    sums to 1 (each channel's histogram carries 1/3). RGB bins split 0..255 evenly
    (``value * bins // 256``); HSV bins split [0, 1] evenly, hue 0 for grays.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    arr = _as_rgb_uint8(images)
    if len(arr) == 0:
        return np.zeros((0, 3 * bins), dtype=np.float32)
    return np.stack([_histogram(img, bins, space) for img in arr])  # (N, 3 * bins)


def hellinger_embedding(hist: np.ndarray) -> np.ndarray:
    """``sqrt(hist)``: Euclidean distance between embeddings = sqrt(2) x Hellinger distance."""
    return np.sqrt(np.clip(hist, 0.0, None)).astype(np.float32)


def histogram_distances(query: np.ndarray, gallery: np.ndarray, metric: str = "hellinger") -> np.ndarray:
    """The (Nq, Ng) distance matrix between L1-normalised histograms (see the module docstring)."""
    q, g = np.asarray(query, dtype=np.float64), np.asarray(gallery, dtype=np.float64)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery must be (N, D) with the same D, got {q.shape} and {g.shape}")
    if metric == "hellinger":
        bc = np.sqrt(np.clip(q, 0, None)) @ np.sqrt(np.clip(g, 0, None)).T  # (Nq, Ng) Bhattacharyya coefficient
        return np.sqrt(np.clip(1.0 - bc, 0.0, None))
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float64)
    step = max(1, 2**22 // max(1, g.shape[0] * g.shape[1]))  # bound the (step, Ng, D) temporary
    for i in range(0, q.shape[0], step):
        diff = q[i:i + step, None, :] - g[None, :, :]  # (s, Ng, D)
        if metric == "l1":
            out[i:i + step] = np.abs(diff).sum(-1)
        else:
            den = q[i:i + step, None, :] + g[None, :, :]  # (s, Ng, D)
            out[i:i + step] = 0.5 * np.where(den > 0, diff ** 2 / np.where(den > 0, den, 1.0), 0.0).sum(-1)
    return out
