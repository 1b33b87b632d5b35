"""CAJ's channel-augmented joint learning as a batch augmentation (Ye et al., ICCV 2021, "Channel
Augmented Joint Learning for Visible-Infrared Recognition", seeds/001 §8 §3.3; METHODS.md §4).

The channel-augmented copies of the visible images are added as a third view with the same labels,
so a batch of the cross-modality sampler ``[x^v, x^r]`` becomes

    rows 0 .. n-1     x^v    the visible images, unchanged          modality VISIBLE
    rows n .. 2n-1    x~^v   CA + CRE of row i - n (same pid, camid, index)  modality VISIBLE
    rows 2n .. 3n-1   x^r    the infrared images, unchanged         modality INFRARED

(in general: the visible rows in batch order, their copies in the same order, then the infrared
rows in batch order). ``index`` pairs a copy with its source: ``index[n + i] == index[i]``. The
copies keep ``modality = VISIBLE``, so they run through the visible stream, as in the public code
(``net(cat(x^v, x~^v), x^r)``), and one shared classifier sees all three views. The losses then run
on the whole, mixed-modality batch: identity loss and :mod:`vireid.methods.caj.losses`'s squared-difference
WRT (``L = L_id + L_sq``).

The copy is made on the already normalised batch: CRE (erasing to the channel mean, which commutes
with normalisation; one draw independent of any erasing the loader already applied) then CA (channel
exchange in pixel space, undoing and redoing the ``mean``/``std`` normalisation) — the order of the
public code. Draws come from torch's global RNG (seeded per epoch by the trainer) or, with ``seed``,
from a private generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vireid.data.batch_augment import BatchAugment
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.methods.caj.augment import ChannelExchange, ChannelRandomErasing
from vireid.types import Batch, Modality

__all__ = ["CAJJointAugment", "caj_joint"]


class CAJJointAugment:
    """``Batch -> Batch`` adding CA + CRE copies of the visible rows as a third view (layout in the module docs).

    Args:
        exchange: the channel exchange (CA), taking normalised (N, 3, H, W) images.
        erasing: the channel random erasing (CRE), or ``None`` for CA alone.
    """

    def __init__(self, exchange: ChannelExchange, erasing: ChannelRandomErasing | None) -> None:
        self.exchange, self.erasing = exchange, erasing

    def augment_images(self, images: torch.Tensor) -> torch.Tensor:
        """CRE then CA on normalised (N, 3, H, W) images -> (N, 3, H, W) new tensor."""
        out = self.erasing(images) if self.erasing is not None else images  # (N, 3, H, W)
        return self.exchange(out)  # (N, 3, H, W)

    def __call__(self, batch: Batch) -> Batch:
        vis = (batch.modality == Modality.VISIBLE).nonzero().squeeze(1)  # (n_v,)
        ir = (batch.modality != Modality.VISIBLE).nonzero().squeeze(1)  # (n_r,)
        order = torch.cat([vis, vis, ir])  # (n_v + n_v + n_r,) source row of every output row
        copies = self.augment_images(batch.images[vis])  # (n_v, 3, H, W)
        images = torch.cat([batch.images[vis], copies, batch.images[ir]])  # (2 n_v + n_r, 3, H, W)
        return Batch(images=images, pids=batch.pids[order], camids=batch.camids[order],
                     modality=batch.modality[order], index=batch.index[order],
                     aux={k: v[order] for k, v in batch.aux.items()})

    def __repr__(self) -> str:
        return f"CAJJointAugment({self.exchange!r}, {self.erasing!r})"


def caj_joint(
    exchange_p: float = 1.0,
    include_gray: bool = False,
    erase_p: float = 0.5,
    erase_area: Sequence[float] = (0.02, 0.4),
    erase_aspect: Sequence[float] = (0.3, 3.33),
    per_channel: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    seed: int | None = None,
) -> BatchAugment:
    """CAJ joint learning (seeds/001 §8): ``[x^v, x^r] -> [x^v, x~^v, x^r]`` with ``x~^v = CA(CRE(x^v))``.

    Args:
        exchange_p: probability that a copy is channel-exchanged (1: always, as CAJ's augmented view).
        include_gray: add the grayscale outcome to R/G/B (the code's 4th outcome; CAJ's visible
            copy uses R/G/B only, so off by default).
        erase_p: CRE probability per copy (the code's 0.5; 0 = no erasing).
        erase_area, erase_aspect: CRE rectangle area fraction and aspect ranges (the code's).
        per_channel: one CRE rectangle per channel (the seed's wording) or one for all channels.
        mean, std: the normalisation of the batch images.
        seed: seed of a private generator; ``None`` draws from torch's global RNG.
    """
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    exchange = ChannelExchange(exchange_p, include_gray, mean=mean, std=std, generator=generator)
    erasing = None
    if erase_p > 0:
        erasing = ChannelRandomErasing(erase_p, tuple(erase_area), tuple(erase_aspect), per_channel,
                                       generator=generator)
    return CAJJointAugment(exchange, erasing)
