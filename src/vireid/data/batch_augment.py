"""Batch-level augmentations applied on the device after collation, before the forward pass.

Some methods enlarge or rewrite the batch as a whole (CAJ's joint learning adds a
channel-augmented copy of every visible image as a third view). They register here and are
chosen by ``data.batch_augment`` in the config (method packages register theirs, e.g.
CAJ's ``caj_joint``); the trainer calls ``augment(batch)`` and never
branches on the method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vireid.types import Batch
from vireid.registry import Registry

BatchAugment = Callable[[Batch], Batch]
BATCH_AUGMENTS: Registry[Callable[..., BatchAugment]] = Registry("batch augmentation")
register_batch_augment = BATCH_AUGMENTS.register


def identity(batch: Batch) -> Batch:
    return batch


@register_batch_augment("none")
def _none() -> BatchAugment:
    return identity


def list_batch_augments() -> list[str]:
    return BATCH_AUGMENTS.names()


def get_batch_augment_factory(name: str) -> Callable[..., BatchAugment]:
    return BATCH_AUGMENTS.get(name, "data.batch_augment")


def build_batch_augment(name: str, **params: Any) -> BatchAugment:
    return BATCH_AUGMENTS.build(name, **params)
