"""Loss registry: ``build_loss(name, **kwargs)`` over loss classes registered with a one-line decorator.

Every registered loss is an ``nn.Module`` called as ``loss_fn(output: ModelOutput, batch: Batch)``
and returning a scalar, so the trainer can sum named, weighted losses from the config. The
explicit imports in ``vireid/losses/__init__.py`` fill the registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from vireid.errors import ConfigError

_LOSSES: dict[str, type[nn.Module]] = {}

T = TypeVar("T", bound=type[nn.Module])


def register_loss(name: str) -> Callable[[T], T]:
    """Class decorator registering a loss under ``name``."""

    def decorator(cls: T) -> T:
        if name in _LOSSES and _LOSSES[name] is not cls:
            raise ValueError(f"loss {name!r} is already registered (by {_LOSSES[name].__qualname__})")
        _LOSSES[name] = cls
        return cls

    return decorator


def list_losses() -> list[str]:
    """Names of the registered losses, sorted."""
    return sorted(_LOSSES)


def get_loss_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; ValueError listing the valid names if unknown."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(list_losses())}")
    return _LOSSES[name]


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the loss registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid names).
        ConfigError: a keyword the loss does not take (the message lists the valid ones).
    """
    cls = get_loss_class(name)
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        params = list(inspect.signature(cls).parameters)
        raise ConfigError(f"loss {name!r}: {exc}; valid arguments: {', '.join(params) or '(none)'}") from None
    return cls(**kwargs)
