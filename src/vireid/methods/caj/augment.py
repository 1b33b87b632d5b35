"""CAJ's channel augmentations (Ye et al., ICCV 2021, "Channel Augmented Joint Learning for
Visible-Infrared Recognition", seeds/001 §8; METHODS.md §4): channel exchange (CA), channel random
erasing (CRE) and the public code's infrared ``ChannelAdapGray``, as per-image operations and as
registered image augmentations (``data.augment`` in a recipe):

=========================  ==================  ===============  =====================================
name                       stage               modalities       notes
=========================  ==================  ===============  =====================================
``channel_exchange``       before normalising  visible          ``p``, ``include_gray`` (default on)
``channel_random_erasing`` before normalising  both             replaces the standard random erasing
``infrared_adap_gray``     after normalising   infrared         ``p`` (gray probability, 0.5)
=========================  ==================  ===============  =====================================

Listed in the order CRE, CA, as the CAJ code applies them. Randomness: torch's global RNG unless an
explicit ``torch.Generator`` is given (standalone use on a device batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from vireid.data.augment import ImageAugment
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.types import Modality

__all__ = ["GRAY_WEIGHTS", "ChannelExchange", "ChannelAdapGray", "ChannelRandomErasing",
           "channel_exchange", "channel_random_erasing", "infrared_adap_gray"]

GRAY_WEIGHTS: tuple[float, float, float] = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as the CAJ code


def _rand(generator: torch.Generator | None, *size: int) -> torch.Tensor:
    return torch.rand(size, generator=generator)  # CPU draw: same stream whatever the data's device


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(_rand(generator))


def _randint(generator: torch.Generator | None, low: int, high: int) -> int:
    """Uniform integer in [low, high)."""
    return int(torch.randint(low, high, (), generator=generator))


def _as_rgb_batch(img: Any, name: str) -> torch.Tensor:
    """``(..., 3, H, W)`` float tensor -> ``(N, 3, H, W)`` view; a clear error otherwise."""
    if not isinstance(img, torch.Tensor) or not img.is_floating_point() or img.ndim < 3 or img.shape[-3] != 3:
        raise TypeError(f"{name} expects a float tensor (..., 3, H, W), got "
                        f"{type(img).__name__} {tuple(getattr(img, 'shape', ()))} {getattr(img, 'dtype', '')}")
    return img.reshape(-1, *img.shape[-3:])


def _single_channel(x: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Row i of ``x`` (N, 3, H, W) with every channel replaced by channel ``choice[i]`` (0-2) or, for
    3, the gray mix :data:`GRAY_WEIGHTS` -> (N, 3, H, W)."""
    n = x.shape[0]
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device)  # (3,)
    gray = torch.einsum("nchw,c->nhw", x, w)  # (N, H, W)
    candidates = torch.stack([x[:, 0], x[:, 1], x[:, 2], gray], dim=1)  # (N, 4, H, W)
    pick = choice.to(x.device).view(n, 1, 1, 1).expand(n, 1, *x.shape[-2:])  # (N, 1, H, W)
    return candidates.gather(1, pick).expand(n, 3, *x.shape[-2:])  # (N, 3, H, W)


class ChannelExchange:
    """Channel exchange, CAJ seeds/001 §8 (METHODS.md §4 "CA"): ``x~ = (x^c, x^c, x^c)``.

    With probability ``p`` the image is replaced by one channel repeated 3 times, ``c`` drawn
    uniformly from R, G, B and, with ``include_gray``, a 4th outcome: the grayscale image
    ``0.2989 R + 0.5870 G + 0.1140 B`` (the public CAJ code's extra outcome). Meant for visible
    images. Input: float ``(..., 3, H, W)``; a batch gets one independent draw per image.
    ``p`` defaults to 1, as CAJ's augmented stream always exchanges.

    If ``mean``/``std`` are given the input is taken as normalised: it is mapped back to image
    space, exchanged there and normalised again (so it can run on a normalised batch).
    """

    def __init__(
        self,
        p: float = 1.0,
        include_gray: bool = True,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ChannelExchange p must be in [0, 1], got {p}")
        if (mean is None) != (std is None):
            raise ValueError("ChannelExchange: give both mean and std, or neither")
        self.p = float(p)
        self.include_gray = bool(include_gray)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.generator = generator

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = _as_rgb_batch(img, "ChannelExchange")  # (N, 3, H, W)
        lead, n = img.shape[:-3], x.shape[0]
        apply = _rand(self.generator, n) < self.p  # (N,)
        choice = torch.randint(4 if self.include_gray else 3, (n,), generator=self.generator)  # (N,)
        if not bool(apply.any()):
            return img.clone()
        if self.mean is not None:
            m = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
            s = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
            x = x * s + m  # (N, 3, H, W) image space
        out = torch.where(apply.to(x.device).view(n, 1, 1, 1), _single_channel(x, choice), x)  # (N, 3, H, W)
        if self.mean is not None:
            out = (out - m) / s  # (N, 3, H, W) normalised again
        return out.reshape(*lead, *out.shape[-3:]).contiguous()  # (..., 3, H, W)

    def __repr__(self) -> str:
        return f"ChannelExchange(p={self.p}, include_gray={self.include_gray})"


class ChannelAdapGray:
    """Infrared channel adaptation of the public CAJ code (``ChannelAdapGray``; METHODS.md §4 [ext]).

    Runs on the *normalised* tensor, as in the code: one of four outcomes with equal probability,
    three replace every channel by channel R, G or B, the fourth replaces them by the gray mix
    ``0.2989 R + 0.5870 G + 0.1140 B`` with probability ``p`` and otherwise leaves the image. On an
    infrared image (R = G = B before normalisation) this changes brightness and contrast slightly,
    because each channel was normalised with its own mean and std. Input ``(..., 3, H, W)``; a
    batch gets independent draws.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ChannelAdapGray p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = _as_rgb_batch(img, "ChannelAdapGray")  # (N, 3, H, W)
        lead, n = img.shape[:-3], x.shape[0]
        choice = torch.randint(4, (n,), generator=self.generator)  # (N,) 0-2 channel copy, 3 gray or identity
        gray_draw = _rand(self.generator, n) < self.p  # (N,)
        keep = (choice == 3) & ~gray_draw  # (N,) the fourth outcome without gray: unchanged
        out = torch.where(keep.to(x.device).view(n, 1, 1, 1), x, _single_channel(x, choice))  # (N, 3, H, W)
        return out.reshape(*lead, *out.shape[-3:]).contiguous()  # (..., 3, H, W)

    def __repr__(self) -> str:
        return f"ChannelAdapGray(p={self.p})"


class ChannelRandomErasing:
    """Channel random erasing, CAJ seeds/001 §8 (METHODS.md §4 "CRE").

    With probability ``p``, a rectangle ``S_e*`` is set to ``alpha*``, the mean of that channel
    (of this image, taken before erasing). ``per_channel=True`` (the seed's wording, the default)
    draws one rectangle per channel; ``False`` one rectangle for all channels (the public code).
    A rectangle has area ``U(area) * H * W`` and aspect ratio ``h/w ~ U(aspect)``; as in the code,
    up to ``max_attempts`` draws are made until it fits, else the channel is left as is.
    Input: float ``(..., C, H, W)``; a batch gets independent draws per image. The per-channel mean
    commutes with per-channel normalisation, so this may run before or after ``Normalize``.
    """

    def __init__(
        self,
        p: float = 0.5,
        area: tuple[float, float] = (0.02, 0.4),
        aspect: tuple[float, float] = (0.3, 3.33),
        per_channel: bool = True,
        *,
        max_attempts: int = 100,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ChannelRandomErasing p must be in [0, 1], got {p}")
        if not 0.0 < area[0] <= area[1] <= 1.0:
            raise ValueError(f"ChannelRandomErasing area must satisfy 0 < lo <= hi <= 1, got {area}")
        if not 0.0 < aspect[0] <= aspect[1]:
            raise ValueError(f"ChannelRandomErasing aspect must satisfy 0 < lo <= hi, got {aspect}")
        self.p = float(p)
        self.area = (float(area[0]), float(area[1]))
        self.aspect = (float(aspect[0]), float(aspect[1]))
        self.per_channel = bool(per_channel)
        self.max_attempts = int(max_attempts)
        self.generator = generator

    def _rectangle(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """(top, left, h, w) of a random rectangle strictly smaller than the image, or None."""
        for _ in range(self.max_attempts):
            target = _uniform(self.generator, *self.area) * height * width
            ratio = _uniform(self.generator, *self.aspect)
            h = int(round(math.sqrt(target * ratio)))
            w = int(round(math.sqrt(target / ratio)))
            if 0 < h < height and 0 < w < width:
                return _randint(self.generator, 0, height - h + 1), _randint(self.generator, 0, width - w + 1), h, w
        return None

    def _erase_one(self, x: torch.Tensor) -> None:
        """Erase in place one image ``x`` (C, H, W)."""
        if float(_rand(self.generator)) >= self.p:
            return
        channels, height, width = x.shape
        means = x.mean(dim=(1, 2))  # (C,) taken before any channel is erased
        if self.per_channel:
            for c in range(channels):
                rect = self._rectangle(height, width)
                if rect is not None:
                    top, left, h, w = rect
                    x[c, top:top + h, left:left + w] = means[c]
        else:
            rect = self._rectangle(height, width)
            if rect is not None:
                top, left, h, w = rect
                x[:, top:top + h, left:left + w] = means.view(channels, 1, 1)  # (C, h, w)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not isinstance(img, torch.Tensor) or not img.is_floating_point() or img.ndim < 3:
            raise TypeError("ChannelRandomErasing expects a float tensor (..., C, H, W), got "
                            f"{type(img).__name__} {tuple(getattr(img, 'shape', ()))} {getattr(img, 'dtype', '')}")
        out = img.clone()
        flat = out.view(-1, *out.shape[-3:])  # (N, C, H, W), shares storage with out
        for i in range(flat.shape[0]):
            self._erase_one(flat[i])
        return out

    def __repr__(self) -> str:
        return (f"ChannelRandomErasing(p={self.p}, area={self.area}, aspect={self.aspect}, "
                f"per_channel={self.per_channel})")



def channel_exchange(p: float = 1.0, include_gray: bool = True) -> ImageAugment:
    """CA on visible images before normalisation (``p``: probability an image is replaced)."""
    return ImageAugment(ChannelExchange(p=p, include_gray=include_gray), "image", frozenset({Modality.VISIBLE}))


def channel_random_erasing(p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                           aspect: tuple[float, float] = (0.3, 3.33), per_channel: bool = True) -> ImageAugment:
    """CRE on both modalities before normalisation; replaces the standard random erasing."""
    return ImageAugment(ChannelRandomErasing(p=p, area=tuple(area), aspect=tuple(aspect), per_channel=per_channel), "image",
                        frozenset({Modality.VISIBLE, Modality.INFRARED}), replaces_random_erasing=True)


def infrared_adap_gray(p: float = 0.5) -> ImageAugment:
    """The CAJ code's ``ChannelAdapGray`` on normalised infrared images."""
    return ImageAugment(ChannelAdapGray(p), "normalized", frozenset({Modality.INFRARED}))
