"""Model registry: ``create_model(name, **kwargs)`` over small registered constructors.

Constructors register themselves with a one-line decorator and are imported explicitly by
``vireid/models/__init__.py``, so a registered model is never silently missing::

    @register_model("agw")
    class AGW(nn.Module): ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from vireid.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(name: str) -> Callable[[F], F]:
    """Decorator registering a model class or constructor function under ``name``."""

    def decorator(fn: F) -> F:
        if name in _MODELS and _MODELS[name] is not fn:
            raise ValueError(f"model {name!r} is already registered (by {_MODELS[name].__qualname__})")
        _MODELS[name] = fn
        return fn

    return decorator


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def get_model_constructor(name: str) -> Callable[..., nn.Module]:
    """The registered constructor of ``name``; ValueError listing the valid names if unknown."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``.

    Raises:
        ValueError: unknown model name (the message lists the valid names).
        ConfigError: a keyword the constructor does not take (the message lists the valid ones).
    """
    fn = get_model_constructor(name)
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as exc:
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        raise ConfigError(f"model {name!r}: {exc}; valid arguments: {', '.join(params)}") from None
    return fn(**kwargs)
