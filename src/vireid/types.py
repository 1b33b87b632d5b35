"""The records every layer shares: ``Modality``, ``Sample``, ``Batch`` and the model output contract
``ModelOutput``. Nothing here imports another vireid module, so every package can depend on it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Modality(enum.IntEnum):
    """Modality of a sample. Stored as an integer label that travels with every batch.

    ``TEXT`` (captions of text-to-image datasets: CUHK-PEDES, ICFG-PEDES, RSTPReid) is a member
    (``Modality(2)``, ``Modality.parse("text")``, pickling work) but iterating ``Modality`` and
    ``len(Modality)`` give the two image modalities only, the ones that per-modality code (two-stream
    backbones, per-modality discriminators, samplers) loops over; :meth:`all` lists all three.
    """

    VISIBLE = 0
    INFRARED = 1
    TEXT = 2

    @classmethod
    def all(cls) -> "tuple[Modality, ...]":
        """Every modality, text included."""
        return (cls.VISIBLE, cls.INFRARED, cls.TEXT)

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
            "text": cls.TEXT, "caption": cls.TEXT, "2": cls.TEXT,
        }
        if key not in aliases:
            raise ValueError(f"unknown modality {value!r}; expected one of {sorted(aliases)}")
        return aliases[key]


# Iteration and len() cover the image modalities only (see the class docstring); value lookup,
# name lookup and pickling still find TEXT.
Modality._member_names_.remove("TEXT")


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
    ``aux`` holds optional per-image auxiliary tensors with a leading batch dimension (keypoint
    heatmaps, parsing maps, caption token ids, masks), named by the dataset that loads them.
    """

    images: "torch.Tensor"
    pids: "torch.Tensor"
    camids: "torch.Tensor"
    modality: "torch.Tensor"
    index: "torch.Tensor"
    aux: "dict[str, torch.Tensor]" = field(default_factory=dict)

    def _map(self, fn) -> "Batch":
        return Batch(fn(self.images), fn(self.pids), fn(self.camids), fn(self.modality), fn(self.index),
                     {k: fn(v) for k, v in self.aux.items()})

    def to(self, device: "torch.device | str", non_blocking: bool = False) -> "Batch":
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "Batch":
        """Called by ``DataLoader(pin_memory=True)`` for custom batch types."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return int(self.pids.shape[0])


@dataclass
class ModelOutput:
    """What ``model(images, modality)`` returns.

    Attributes:
        features: (B, D) pooled embedding before the BNNeck (metric losses use it).
        bn_features: (B, D) embedding after the BNNeck (retrieval uses it, L2-normalised).
        logits: (B, num_classes) identity logits, or ``None`` for a model without a classifier.
        extras: named auxiliary tensors a method's losses need (e.g. stage maps, masked-copy
            features, domain logits). Keys are documented by the model that sets them.
    """

    features: "torch.Tensor"
    bn_features: "torch.Tensor"
    logits: "torch.Tensor | None" = None
    extras: "dict[str, torch.Tensor]" = field(default_factory=dict)

    @property
    def embedding(self) -> "torch.Tensor":
        """The retrieval embedding: the post-BN feature (AGW tests on it, L2-normalised later)."""
        return self.bn_features
