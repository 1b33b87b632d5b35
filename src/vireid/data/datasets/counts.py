"""The counts check of the single-modality, occluded, partial and text readers (PROTOCOLS.md
"Single-modality, occluded, partial and text-based re-ID").

Each reader knows the official image and identity counts of its splits. ``counts="warn"``
(default) logs every difference, so a subset or a repackaged copy still loads; ``"strict"``
raises :class:`DatasetError` naming the split, what was found and what the dataset should have;
``"off"`` checks nothing. The result ("official" or the differences) is recorded in the plan's
settings, so a number computed on a partial copy says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from vireid.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

COUNT_MODES = ("warn", "strict", "off")
# split -> {"images": n, "ids": n, "captions": n}; a missing key is not checked
Counts = Mapping[str, Mapping[str, int]]


def check_count_mode(dataset: str, mode: str) -> str:
    """``mode`` if it is one of :data:`COUNT_MODES`, else :class:`ConfigError` (checked before reading)."""
    if mode not in COUNT_MODES:
        raise ConfigError(f"{dataset}: counts must be one of {COUNT_MODES}, got {mode!r}")
    return mode


def check_counts(dataset: str, found: Counts, official: Counts, mode: str, where: str) -> str:
    """Compare ``found`` with ``official``; return "official", "not checked" or the differences.

    Raises :class:`DatasetError` in ``strict`` mode when a count differs, :class:`ConfigError`
    for an unknown mode.
    """
    check_count_mode(dataset, mode)
    if mode == "off":
        return "not checked"
    diffs = []
    for split, want in official.items():
        have = found.get(split, {})
        for key, n in want.items():
            got = int(have.get(key, 0))
            if got != int(n):
                diffs.append(f"{split} {key} {got} (official {n})")
    if not diffs:
        return "official"
    text = "; ".join(diffs)
    if mode == "strict":
        raise DatasetError(f"{dataset}: counts under {where} differ from the official ones: {text}")
    logger.warning("%s: counts under %s differ from the official ones: %s", dataset, where, text)
    return f"differs from official: {text}"


def split_counts(pids: list[int]) -> dict[str, int]:
    """``{"images": len(pids), "ids": distinct pids}``."""
    return {"images": len(pids), "ids": len(set(pids))}
