"""Precomputed auxiliary arrays at ``<root>/aux/<key>/<relpath>.npz`` and the per-method policy for a
missing one (METHODS.md §0 "External inputs").

Keys: ``pose_heatmap`` (SPOT, seeds/001 §4), ``parsing`` (SAP, seeds/002 §4), ``caption`` (MCMA,
seeds/002 §6), ``generated`` (Hi-CMD, seeds/001 §9). A method declares the keys it requires and its
``aux_policy``: ``error`` (a missing file is a :class:`DatasetError` naming it), ``fallback`` (the
method's defined substitute, counted and logged: uniform heatmaps for SPOT, fixed horizontal bands
for SAP's teacher) or ``skip`` (the sample is left out; :meth:`AuxStore.get` returns ``None``).
The sidecars of :mod:`vireid.data.aux` read the formats other tools write (COCO JSON, label PNGs,
CUHK-PEDES captions); this store reads arrays a provider cached offline.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vireid.errors import DatasetError

logger = logging.getLogger(__name__)

AUX_KEYS = ("pose_heatmap", "parsing", "caption", "generated")
POLICIES = ("error", "fallback", "skip")
Fallback = Callable[[str], np.ndarray]


def uniform_heatmaps(num_joints: int, height: int, width: int) -> Fallback:
    """SPOT's fallback: every joint's heatmap uniform (its structure attention reduces to appearance)."""
    return lambda relpath: np.full((num_joints, height, width), 1.0 / (height * width), dtype=np.float32)


def band_parsing(height: int, width: int, bands: int = 4) -> Fallback:
    """SAP's rule-based teacher: ``bands`` fixed horizontal bands (labels 1..bands), every pixel foreground."""
    rows = np.minimum(np.arange(height) * bands // height, bands - 1) + 1  # (H,)
    return lambda relpath: np.repeat(rows[:, None], width, axis=1).astype(np.uint8)


class AuxStore:
    """The ``<root>/aux/<key>/<relpath>.npz`` files of one dataset root (array ``key``, else the first)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.fallbacks: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def path(self, key: str, relpath: str) -> Path:
        if key not in AUX_KEYS:
            raise DatasetError(f"unknown aux key {key!r}; valid: {list(AUX_KEYS)}")
        return self.root / "aux" / key / (relpath + ".npz")

    def get(self, key: str, relpath: str, policy: str = "error", fallback: Fallback | None = None) -> np.ndarray | None:
        """The array of ``key`` for image ``relpath`` under ``policy`` (see the module doc)."""
        if policy not in POLICIES:
            raise DatasetError(f"aux_policy must be one of {POLICIES}, got {policy!r}")
        path = self.path(key, relpath)
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    names = list(data.keys())
                    return np.asarray(data[key if key in names else names[0]])
            except (OSError, ValueError, IndexError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"aux file {path}: not a readable .npz with an array ({exc})") from exc
        if policy == "error":
            raise DatasetError(f"missing aux file {path} ({key} of image {relpath!r}); aux_policy is 'error'")
        if policy == "skip":
            self.skipped[key] += 1
            if self.skipped[key] == 1:
                logger.warning("aux %s: missing %s; samples without it are skipped (aux_policy 'skip')", key, path)
            return None
        if fallback is None:
            raise DatasetError(f"aux {key}: aux_policy 'fallback' but the method defines no fallback")
        self.fallbacks[key] += 1
        if self.fallbacks[key] == 1:
            logger.warning("aux %s: missing %s; using the method's fallback (aux_policy 'fallback'; expect lower "
                           "accuracy)", key, path)
        return fallback(relpath)
