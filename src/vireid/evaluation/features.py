"""The features file: ``features`` (N, D) float and ``paths`` (N,) dataset-relative paths, as ``.npz``.

``vireid extract`` writes it with :func:`save_features`; ``vireid evaluate-features`` reads it
with :func:`load_features`, which checks everything a protocol relies on and names the first
offending entries (missing keys, shapes, NaN/inf rows, duplicate or absolute paths).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vireid.errors import FeaturesError
from vireid.utils.io import atomic_path

REQUIRED_KEYS = ("features", "paths")
_CHECK_ROWS = 4096  # rows per block of the finiteness and norm checks (no (N, D) temporary)


class FeatureSet(NamedTuple):
    """A loaded features file: ``features`` (N, D), ``paths`` (N,) and optional ``metadata``."""

    features: np.ndarray
    paths: list[str]
    metadata: dict[str, Any]


def normalize_relpath(path: str) -> str:
    """Forward slashes, no ``.`` or empty components: the form every reader keys its samples by.

    A leading ``/`` is kept, so that absolute paths can be recognised and refused.
    """
    p = str(path).replace("\\", "/")
    parts = [c for c in p.split("/") if c not in ("", ".")]
    return ("/" if p.startswith("/") else "") + "/".join(parts)


def _first(items: Sequence[Any], n: int = 5) -> str:
    return ", ".join(repr(x) for x in list(items)[:n])


def validate_paths(paths: Sequence[str], source: str) -> list[str]:
    """Normalised paths; raises :class:`FeaturesError` on empty, absolute or duplicate entries."""
    norm = [normalize_relpath(p) for p in paths]
    empty = [i for i, p in enumerate(norm) if not p]
    if empty:
        raise FeaturesError(f"{source}: {len(empty)} empty paths (first at rows {empty[:5]})")
    absolute = [p for p in norm if p.startswith("/") or (len(p) > 1 and p[1] == ":")]
    if absolute:
        raise FeaturesError(f"{source}: paths must be relative to the dataset root; "
                            f"{len(absolute)} are absolute, first: {_first(absolute)}")
    dups = [p for p, c in Counter(norm).items() if c > 1]
    if dups:
        raise FeaturesError(f"{source}: {len(dups)} duplicate paths, first: {_first(dups)}")
    return norm


def validate_features(features: np.ndarray, paths: Sequence[str], source: str) -> np.ndarray:
    """The features as a float array; raises :class:`FeaturesError` on bad shape/dtype or NaN/inf rows."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise FeaturesError(f"{source}: 'features' must be 2-D (N, D), got shape {features.shape}")
    if not np.issubdtype(features.dtype, np.floating):
        raise FeaturesError(f"{source}: 'features' must be floating point, got dtype {features.dtype}")
    if features.shape[0] != len(paths):
        raise FeaturesError(f"{source}: {features.shape[0]} feature rows but {len(paths)} paths")
    if features.shape[1] == 0:
        raise FeaturesError(f"{source}: 'features' has 0 columns (shape {features.shape}); expected (N, D) with D >= 1")
    finite = np.empty(features.shape[0], dtype=bool)  # (N,)
    squared = np.empty(features.shape[0], dtype=np.float64)  # (N,): what distances and L2 norms need
    with np.errstate(over="ignore"):
        for s in range(0, features.shape[0], _CHECK_ROWS):  # in row blocks: no (N, D) temporary
            block = features[s : s + _CHECK_ROWS]
            finite[s : s + len(block)] = np.isfinite(block).all(axis=1)
            squared[s : s + len(block)] = np.square(block, dtype=np.float64).sum(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise FeaturesError(f"{source}: {len(bad)} feature rows have NaN/inf values, "
                            f"first: {_first([paths[i] for i in bad[:5]])}")
    if not np.isfinite(squared).all():
        bad = np.flatnonzero(~np.isfinite(squared))
        raise FeaturesError(f"{source}: {len(bad)} feature rows are too large: their squared norm overflows "
                            f"float64 (largest |value| {float(np.abs(features[bad]).max()):.3g}), so distances and "
                            f"--normalize would be inf or 0; rescale the features. First: "
                            f"{_first([paths[i] for i in bad[:5]])}")
    return features


def save_features(path: str | os.PathLike[str], features: np.ndarray, paths: Sequence[str], *,
                  metadata: dict[str, Any] | None = None) -> None:
    """Write ``features`` (N, D) and ``paths`` (N,) to ``path`` (.npz), atomically.

    ``metadata`` (JSON-serialisable: model, checkpoint, test-time options...) is stored as a JSON string.
    """
    source = str(path)
    norm = validate_paths(list(paths), source)
    feats = validate_features(np.asarray(features), norm, source)
    arrays: dict[str, np.ndarray] = {"features": feats, "paths": np.asarray(norm, dtype=str)}
    if metadata is not None:
        arrays["metadata"] = np.asarray(json.dumps(metadata, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_features(path: str | os.PathLike[str]) -> FeatureSet:
    """Read and check a features file written by :func:`save_features` (or by hand with ``np.savez``).

    Raises :class:`FeaturesError` naming the file and the problem: missing file or keys, a ``.npy``
    array, bad shapes (D = 0), NaN/inf rows or rows whose squared norm overflows, empty/absolute/
    duplicate paths.
    """
    source = str(path)
    if not Path(path).is_file():
        raise FeaturesError(f"features file {source} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise FeaturesError(f"{source}: a single {np.asarray(loaded).shape} array (.npy), not a .npz archive; "
                                "expected np.savez(FILE, features=(N, D) float array, paths=(N,) relative paths)")
        with loaded as data:
            keys = list(data.keys())
            missing = [k for k in REQUIRED_KEYS if k not in keys]
            if missing:
                raise FeaturesError(f"{source}: missing key(s) {missing}; found {keys}; expected 'features' "
                                    f"(N, D) float and 'paths' (N,) dataset-relative paths")
            features = data["features"]
            raw_paths = data["paths"]
            metadata = json.loads(str(data["metadata"])) if "metadata" in keys else {}
    except FeaturesError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise FeaturesError(f"{source}: not a readable .npz features file ({exc})") from exc
    if raw_paths.ndim != 1 or raw_paths.dtype.kind not in "US":
        raise FeaturesError(f"{source}: 'paths' must be a 1-D array of strings, got dtype {raw_paths.dtype} "
                            f"shape {raw_paths.shape}")
    paths = [p.decode() if isinstance(p, bytes) else str(p) for p in raw_paths.tolist()]
    paths = validate_paths(paths, source)
    features = validate_features(features, paths, source)
    return FeatureSet(features, paths, metadata)
