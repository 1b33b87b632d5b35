"""Image transforms for training and testing.

Pipelines are torchvision-v2 on PIL input and return a float ``(3, H, W)`` tensor normalised
with ``mean``/``std``. Training follows the AGW settings of the public cross-modal code
(seeds/001 §1, METHODS.md §3: resize, pad 10, random crop, horizontal flip); methods add
per-image augmentations through :mod:`vireid.data.augment` (e.g. CAJ's channel exchange).

Randomness: every built pipeline draws from **torch's global RNG** (torchvision's transforms
offer nothing else). ``DataLoader`` seeds that RNG in each worker from its ``generator``
(see :func:`vireid.data.loader.build_train_loader`), which makes a run reproducible for a given
seed and ``num_workers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2

from vireid.types import Modality
from vireid.data.augment import ImageAugment
from vireid.errors import ConfigError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ToRGB", "build_train_transform", "build_test_transform",
           "build_train_transforms"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ToRGB:
    """Replicate single-channel (infrared) images to 3 channels; drop alpha.

    PIL images of any mode are converted with ``Image.convert("RGB")`` ("L" -> R=G=B);
    tensors ``(1, H, W)`` are repeated to ``(3, H, W)``, ``(3, H, W)`` pass through.
    """

    def __call__(self, img: Any) -> Any:
        if isinstance(img, Image.Image):
            return img if img.mode == "RGB" else img.convert("RGB")
        if isinstance(img, torch.Tensor):
            if img.ndim < 3 or img.shape[-3] not in (1, 3, 4):
                raise ValueError(f"ToRGB expects (..., C, H, W) with C in 1/3/4, got {tuple(img.shape)}")
            if img.shape[-3] == 1:
                return img.expand(*img.shape[:-3], 3, *img.shape[-2:]).clone()  # (..., 3, H, W)
            return img[..., :3, :, :]
        raise TypeError(f"ToRGB expects a PIL image or a tensor, got {type(img).__name__}")

    def __repr__(self) -> str:
        return "ToRGB()"


def _to_float_tensor() -> list[Callable[[Any], Any]]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()]


def build_train_transform(
    height: int,
    width: int,
    *,
    pad: int = 10,
    flip: bool = True,
    random_erasing: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augments: Sequence[ImageAugment] = (),
) -> v2.Compose:
    """Training pipeline, PIL image -> float (3, height, width), AGW settings (seeds/001 §1).

    Steps: to RGB (infrared replicated) -> resize to (height, width) -> pad ``pad`` (zeros) and
    random crop back -> horizontal flip -> float [0, 1] -> the ``"image"``-stage ``augments`` ->
    normalise -> random erasing (Zhong et al., probability ``random_erasing``, area 0.02-0.4,
    aspect 0.3-3.33, filled with 0 after normalisation = the ``mean`` colour; skipped when an
    augment replaces it or ``random_erasing=0``) -> the ``"normalized"``-stage ``augments``.
    ``augments`` run in the given order within their stage (see :mod:`vireid.data.augment`).
    Uses torch's global RNG.
    """
    if height < 1 or width < 1 or pad < 0:
        raise ConfigError(f"transform sizes must be positive: height={height}, width={width}, pad={pad}")
    if not 0.0 <= random_erasing <= 1.0:
        raise ConfigError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
    steps: list[Callable[[Any], Any]] = [ToRGB(), v2.Resize((height, width), antialias=True)]
    if pad > 0:
        steps += [v2.Pad(pad, fill=0), v2.RandomCrop((height, width))]
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps += _to_float_tensor()
    steps += [a.op for a in augments if a.stage == "image"]
    steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    if random_erasing > 0 and not any(a.replaces_random_erasing for a in augments):
        steps.append(v2.RandomErasing(p=random_erasing, scale=(0.02, 0.4), ratio=(0.3, 3.33), value=0.0))
    steps += [a.op for a in augments if a.stage == "normalized"]
    return v2.Compose(steps)


def build_test_transform(
    height: int,
    width: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Test pipeline, PIL image -> float (3, height, width): to RGB, resize, normalise. Deterministic."""
    if height < 1 or width < 1:
        raise ConfigError(f"transform sizes must be positive: height={height}, width={width}")
    return v2.Compose([ToRGB(), v2.Resize((height, width), antialias=True), *_to_float_tensor(),
                       v2.Normalize(mean=list(mean), std=list(std))])


def build_train_transforms(height: int, width: int, *, augments: Sequence[ImageAugment] = (),
                           **options: Any) -> dict[Modality, Callable[[Image.Image], torch.Tensor]]:
    """The train transform of each modality: :func:`build_train_transform` with the ``augments``
    that apply to that modality (e.g. CAJ's channel exchange is visible-only, seeds/001 §8).
    ``options`` are :func:`build_train_transform`'s other keyword arguments."""
    return {m: build_train_transform(height, width, augments=[a for a in augments if m in a.modalities], **options)
            for m in (Modality.VISIBLE, Modality.INFRARED)}
