"""Per-image augmentations that plug into the training pipeline, chosen by ``data.augment``.

A registered factory returns an :class:`ImageAugment`: the operation on a float ``(3, H, W)``
tensor, the stage it runs at (``"image"``: on [0, 1] pixels before normalisation; ``"normalized"``:
after normalisation and the standard random erasing), the modalities it applies to, and whether it
replaces the standard random erasing. :func:`vireid.data.transforms.build_train_transforms` places
them; the trainer never branches on a method. Method packages register theirs (CAJ's channel
exchange, channel random erasing and infrared adaptive gray)::

    data:
      augment:
        - {name: channel_exchange, params: {p: 0.5}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from vireid.registry import Registry
from vireid.types import Modality


@dataclass(frozen=True)
class ImageAugment:
    """One per-image augmentation and where it goes in the pipeline."""

    op: Callable[[torch.Tensor], torch.Tensor]
    stage: Literal["image", "normalized"]
    modalities: frozenset[Modality]
    replaces_random_erasing: bool = False


AUGMENTATIONS: Registry[Callable[..., ImageAugment]] = Registry("image augmentation")
register_augmentation = AUGMENTATIONS.register
