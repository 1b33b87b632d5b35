"""Plain records shared by the dataset readers, the protocols and the training pipeline."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Modality(enum.IntEnum):
    """Image modality. Stored as an integer label that travels with every batch."""

    VISIBLE = 0
    INFRARED = 1

    @classmethod
    def parse(cls, value: "str | int | Modality") -> "Modality":
        """Accept 0/1, 'visible'/'infrared' and the common aliases ('rgb', 'vis', 'ir', 'nir', 'thermal')."""
        if isinstance(value, (int, Modality)) and not isinstance(value, bool):
            return cls(int(value))
        key = str(value).strip().lower()
        aliases = {
            "visible": cls.VISIBLE, "vis": cls.VISIBLE, "rgb": cls.VISIBLE, "v": cls.VISIBLE, "0": cls.VISIBLE,
            "infrared": cls.INFRARED, "ir": cls.INFRARED, "nir": cls.INFRARED, "thermal": cls.INFRARED,
            "t": cls.INFRARED, "i": cls.INFRARED, "1": cls.INFRARED,
        }
        if key not in aliases:
            raise ValueError(f"unknown modality {value!r}; expected one of {sorted(aliases)}")
        return aliases[key]


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    ``relpath`` is the path relative to the dataset root, in the dataset's own layout
    (``cam3/0006/0001.jpg``); it is the key that features files use. ``root`` joined with
    ``relpath`` is the file on disk.
    """

    relpath: str
    pid: int
    camid: int
    modality: Modality
    root: str = ""

    @property
    def path(self) -> str:
        import os

        return os.path.join(self.root, self.relpath) if self.root else self.relpath


@dataclass
class Batch:
    """A training or inference batch. ``modality`` travels with the images as data.

    Shapes: ``images`` (B, 3, H, W) float; ``pids``, ``camids``, ``modality`` and ``index`` (B,) int64.
    """

    images: "torch.Tensor"
    pids: "torch.Tensor"
    camids: "torch.Tensor"
    modality: "torch.Tensor"
    index: "torch.Tensor"

    def to(self, device: "torch.device | str", non_blocking: bool = False) -> "Batch":
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in
                       (self.images, self.pids, self.camids, self.modality, self.index)))

    def pin_memory(self) -> "Batch":
        """Called by ``DataLoader(pin_memory=True)`` for custom batch types."""
        return Batch(*(t.pin_memory() for t in (self.images, self.pids, self.camids, self.modality, self.index)))

    def __len__(self) -> int:
        return int(self.pids.shape[0])
