"""Training batches of MCMA: P identities x K images, each image with one of its captions.

Images go through the project's training transform (resize, pad + crop, flip, normalise); a
caption is drawn per image and per epoch from ``(seed, epoch, index)``; the collate function
tokenises the batch's captions with the run's tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vireid.data.identity_sampler import IdentitySampler
from vireid.data.transforms import build_train_transform
from vireid.types import Sample

Encode = Callable[[Sequence[str], int], tuple[torch.Tensor, torch.Tensor]]


class CaptionImageDataset(Dataset):
    """``(image (3, H, W), label, caption)`` of each training sample (labels 0..C-1)."""

    def __init__(self, samples: Sequence[Sample], labels: Sequence[int], captions: dict[str, list[str]], *,
                 height: int, width: int, pad: int, flip: bool, seed: int = 0) -> None:
        self.samples, self.labels, self.captions = list(samples), list(labels), captions
        self.transform = build_train_transform(height, width, pad=pad, flip=flip, random_erasing=0.0)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        s = self.samples[index]
        with Image.open(s.path) as img:
            image = self.transform(img.convert("RGB"))
        caps = self.captions[s.relpath]
        caption = caps[random.Random(hash((self.seed, self.epoch, index))).randrange(len(caps))]
        return image, self.labels[index], caption


def build_caption_loader(dataset: CaptionImageDataset, encode: Encode, *, num_ids: int, num_instances: int,
                         caption_length: int, seed: int, batches_per_epoch: int | None = None,
                         num_workers: int = 0) -> tuple[DataLoader, IdentitySampler]:
    """P x K identity batches whose items are collated into ``(images, labels, ids, mask)``."""
    sampler = IdentitySampler(dataset.labels, num_ids, num_instances, seed=seed, batches_per_epoch=batches_per_epoch,
                              min_images=2)

    def collate(items: list[tuple[torch.Tensor, int, str]]) -> tuple[torch.Tensor, ...]:
        ids, mask = encode([it[2] for it in items], caption_length)  # (B, L), (B, L)
        return torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items]), ids, mask

    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
    return loader, sampler
