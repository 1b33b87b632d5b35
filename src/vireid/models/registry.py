"""Model registry: ``create_model(name, **kwargs)`` over small registered constructors (timm-style).

Core models register when :mod:`vireid.models` is imported; each method package under
:mod:`vireid.methods` registers its own::

    @register_model("agw")
    class AGW(nn.Module): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from vireid.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
register_model = MODELS.register


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return MODELS.names()


def get_model_constructor(name: str) -> Callable[..., nn.Module]:
    """The registered constructor of ``name``; ConfigError listing the valid names if unknown."""
    return MODELS.get(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``; a keyword it does not take is a ConfigError."""
    return MODELS.build(name, **kwargs)
