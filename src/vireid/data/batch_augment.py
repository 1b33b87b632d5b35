"""Batch-level augmentations applied on the device after collation, before the forward pass.

Some methods enlarge or rewrite the batch as a whole (CAJ's joint learning adds a
channel-augmented copy of every visible image as a third view). They register here and are
chosen by ``data.batch_augment`` in the config; the trainer calls ``augment(batch)`` and never
branches on the method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vireid.types import Batch
from vireid.errors import ConfigError

BatchAugment = Callable[[Batch], Batch]
_AUGMENTS: dict[str, Callable[..., BatchAugment]] = {}


def register_batch_augment(name: str) -> Callable[[Callable[..., BatchAugment]], Callable[..., BatchAugment]]:
    def decorator(factory: Callable[..., BatchAugment]) -> Callable[..., BatchAugment]:
        _AUGMENTS[name] = factory
        return factory

    return decorator


def identity(batch: Batch) -> Batch:
    return batch


@register_batch_augment("none")
def _none() -> BatchAugment:
    return identity


def list_batch_augments() -> list[str]:
    return sorted(_AUGMENTS)


def get_batch_augment_factory(name: str) -> Callable[..., BatchAugment]:
    if name not in _AUGMENTS:
        raise ConfigError(f"unknown data.batch_augment {name!r}; valid: {', '.join(list_batch_augments())}")
    return _AUGMENTS[name]


def build_batch_augment(name: str, **params: Any) -> BatchAugment:
    return get_batch_augment_factory(name)(**params)


# Registration by explicit import (after the registry above exists): one line per augmentation module.
from vireid.data import caj as _caj  # noqa: E402,F401  isort: skip  registers "caj_joint"
