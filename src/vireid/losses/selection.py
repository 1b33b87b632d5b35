"""Which tensor of a :class:`ModelOutput` a metric loss reads (its ``feature`` option)."""

from __future__ import annotations

import torch

from vireid.errors import ConfigError
from vireid.types import ModelOutput

FEATURE_NAMES = ("features", "bn_features")
EXTRAS_PREFIX = "extras:"


def check_feature_name(name: str, owner: str) -> str:
    """Validate a ``feature`` option: ``"features"`` (pre-BN), ``"bn_features"`` or ``"extras:<key>"``."""
    if name in FEATURE_NAMES or (name.startswith(EXTRAS_PREFIX) and len(name) > len(EXTRAS_PREFIX)):
        return name
    raise ConfigError(f"{owner}: feature={name!r} is not one of {FEATURE_NAMES} or '{EXTRAS_PREFIX}<key>'")


def select_feature(output: ModelOutput, name: str) -> torch.Tensor:
    """Return ``output.features``, ``output.bn_features`` or ``output.extras[key]`` for ``"extras:<key>"``."""
    if name.startswith(EXTRAS_PREFIX):
        key = name[len(EXTRAS_PREFIX):]
        if key not in output.extras:
            raise KeyError(
                f"feature {name!r}: the model output has no extras[{key!r}]; extras: {sorted(output.extras)}"
            )
        return output.extras[key]
    return getattr(output, name)
