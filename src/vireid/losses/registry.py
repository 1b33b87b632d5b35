"""Loss registry: ``build_loss(name, **kwargs)`` over registered loss classes.

Every registered loss is an ``nn.Module`` called as ``loss_fn(output: ModelOutput, batch: Batch)``
and returning a scalar, so the trainer can sum named, weighted losses from the config. The shared
losses register when :mod:`vireid.losses` is imported; method packages register their own.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vireid.registry import Registry

LOSSES: Registry[type[nn.Module]] = Registry("loss")
register_loss = LOSSES.register


def list_losses() -> list[str]:
    """Names of the registered losses, sorted."""
    return LOSSES.names()


def get_loss_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; ConfigError listing the valid names if unknown."""
    return LOSSES.get(name)


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the loss registered as ``name``; a keyword it does not take is a ConfigError."""
    return LOSSES.build(name, **kwargs)
