"""vireid: visible-infrared cross-modality person re-identification.

``vireid.load(...)`` (see :mod:`vireid.api`) is imported on first use, so ``import vireid`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from vireid.api import load

        return load
    raise AttributeError(f"module 'vireid' has no attribute {name!r}")
