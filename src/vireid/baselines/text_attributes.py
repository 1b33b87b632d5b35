"""Attribute words vs colour histograms: a learning-free text-to-image sanity baseline.

A caption becomes the counts of the palette's colour words it contains (``"a red shirt with
white stripes"`` -> red 1, white 1); an image becomes the share of its central (person) pixels
nearest to each palette colour. Captions rank images by the cosine of the two vectors. On the
synthetic data (:mod:`vireid.data.synthetic.captions`) this finds people by their clothes'
colours in visible images, and should stay near chance on infrared images, whose grey levels
follow the fabric, not its dye (not from a seed paper; a check that the captions carry
visible-only information, as real captions of CUHK-PEDES do).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vireid.data.synthetic.identity import PALETTE

COLOURS = tuple(PALETTE)
_RGB = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)  # (P, 3) in [0, 1]


def caption_vector(caption: str) -> np.ndarray:
    """(P,) counts of each palette colour word in ``caption``."""
    text = caption.lower()
    return np.array([len(re.findall(rf"\b{c}\b", text)) for c in COLOURS], dtype=np.float32)


def image_vector(image: np.ndarray, centre: tuple[float, float] = (0.6, 0.85)) -> np.ndarray:
    """(P,) share of the central ``centre`` = (width share, height share) pixels nearest to each palette colour.

    ``image`` uint8 (H, W, 3) or (H, W) (infrared: replicated to R = G = B).
    """
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    dw, dh = int(w * (1 - centre[0]) / 2), int(h * (1 - centre[1]) / 2)
    pixels = image[dh:h - dh, dw:w - dw].reshape(-1, 3).astype(np.float32) / 255.0  # (N, 3)
    nearest = ((pixels[:, None, :] - _RGB[None]) ** 2).sum(axis=2).argmin(axis=1)  # (N,)
    return np.bincount(nearest, minlength=len(COLOURS)).astype(np.float32) / max(1, len(nearest))


def embed(captions: Sequence[str], images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Caption (nc, P) and image (ni, P) vectors; the image side square-rooted (Hellinger-style)."""
    text = np.stack([caption_vector(c) for c in captions]) if captions else np.zeros((0, len(COLOURS)))
    imgs = np.stack([np.sqrt(image_vector(i)) for i in images]) if images else np.zeros((0, len(COLOURS)))
    return text + 1e-6, imgs + 1e-6  # no all-zero row: the protocol L2-normalises
