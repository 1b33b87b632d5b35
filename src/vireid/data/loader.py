"""Torch dataset over :class:`~vireid.types.Sample` lists, batch collation and the loaders.

The training loader pairs :class:`~vireid.data.sampler.CrossModalitySampler` (P ids x (K visible +
K infrared), seeds/001 §1 and §8) with per-modality transforms; the test loader keeps the order of
its samples. ``in_memory=True`` decodes every image once into one packed uint8 buffer, so small
datasets are not re-decoded every epoch.

Reproducibility: the sampler's plan is a pure function of ``(seed, epoch)``; augmentations draw
from torch's global RNG, which ``DataLoader`` seeds in every worker as ``base_seed + worker_id``
with ``base_seed`` drawn from the loader's ``generator`` (seeded from ``(seed, rank)``);
:func:`seed_worker` derives Python's and NumPy's seeds from it. A run is thus reproducible for a
given seed and ``num_workers``. With ``num_workers=0`` the transforms draw from the main process's
global RNG, which the caller seeds.
"""

from __future__ import annotations

import logging
import os
import random
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vireid.data.sampler import CrossModalitySampler
from vireid.data.augment import ImageAugment
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_test_transform, build_train_transforms
from vireid.types import Batch, Modality, Sample
from vireid.errors import DatasetError

logger = logging.getLogger(__name__)

__all__ = ["ImageDataset", "collate_batch", "relabel", "decode_image", "seed_worker",
           "build_train_loader", "build_test_loader"]

Item = tuple[torch.Tensor, int, int, int, int]


def relabel(samples: Sequence[Sample]) -> dict[int, int]:
    """Map raw identity -> training label: the sorted distinct raw ids become 0..N-1."""
    return {pid: label for label, pid in enumerate(sorted({int(s.pid) for s in samples}))}


def decode_image(path: str) -> Image.Image:
    """Open and fully decode one image; mode "L" (single channel) or "RGB".

    Single-channel images of more than 8 bits (16-bit PNG/TIFF as infrared cameras write them,
    modes ``I;16*``, ``I``, ``F``) are stretched linearly from their own minimum..maximum to
    0..255 ("L"), so 12- or 14-bit data in a 16-bit container keep their contrast (a plain
    ``convert("RGB")`` clips them to white). Images larger than PIL's ``Image.MAX_IMAGE_PIXELS``
    are refused (decompression-bomb guard), as are paths that are not regular files (a FIFO
    would block the loader forever).

    Raises:
        DatasetError: the file is missing, not a regular file, unreadable, truncated, too large
            or not an image; names the file.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DatasetError(f"image file not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f"image {path} is not a regular file (a folder, FIFO, socket or device); "
                           "expected an image file")
    limit = Image.MAX_IMAGE_PIXELS
    too_large = f"image {path} is too large to decode safely (decompression-bomb guard); expected at most " \
                f"{limit or 0:,} pixels"
    try:
        with Image.open(path) as img:  # reads the header only; PIL itself refuses twice the limit
            width, height = img.size
            if limit and width * height > limit:
                raise DatasetError(f"{too_large}, the header says {width} x {height}")
            img.load()
            img = _to_l_or_rgb(img)
    except DatasetError:
        raise
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"{too_large} ({exc})") from None
    except FileNotFoundError:
        raise DatasetError(f"image file not found: {path}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise DatasetError(f"cannot decode image {path}: {exc}") from None
    return img


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """A decoded image as "L" or "RGB" (a new image, independent of the open file)."""
    if img.mode in ("L", "RGB"):
        return img.copy()
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit integer or float, one channel
        arr = np.asarray(img, dtype=np.float64)  # (H, W)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = np.zeros_like(arr) if hi <= lo else (np.nan_to_num(arr, nan=lo) - lo) * (255.0 / (hi - lo))
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


class _PackedImages:
    """Decoded images in one flat uint8 buffer: ``(H, W)`` for "L", ``(H, W, 3)`` for "RGB"."""

    def __init__(self, paths: Sequence[str], num_threads: int) -> None:
        arrays: list[np.ndarray | None] = [None] * len(paths)
        errors: list[str] = []

        def work(i: int) -> None:
            try:
                arrays[i] = np.asarray(decode_image(paths[i]), dtype=np.uint8)
            except DatasetError as exc:
                errors.append(str(exc))

        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            list(pool.map(work, range(len(paths))))
        if errors:
            errors.sort()
            raise DatasetError(f"{len(errors)} of {len(paths)} images could not be read; first: "
                               + "; ".join(errors[:5]))
        self.shapes = np.zeros((len(paths), 3), dtype=np.int64)  # (N, 3): h, w, channels
        self.offsets = np.zeros(len(paths) + 1, dtype=np.int64)  # (N + 1,)
        for i, arr in enumerate(arrays):
            assert arr is not None
            self.shapes[i] = (arr.shape[0], arr.shape[1], 1 if arr.ndim == 2 else arr.shape[2])
            self.offsets[i + 1] = self.offsets[i] + arr.size
        self.buffer = np.empty(int(self.offsets[-1]), dtype=np.uint8)  # pages committed as filled
        for i in range(len(arrays)):
            self.buffer[self.offsets[i]:self.offsets[i + 1]] = arrays[i].reshape(-1)
            arrays[i] = None  # free as we go: peak memory stays about one copy

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def image(self, index: int) -> Image.Image:
        h, w, c = (int(v) for v in self.shapes[index])
        flat = self.buffer[self.offsets[index]:self.offsets[index + 1]]
        arr = flat.reshape(h, w) if c == 1 else flat.reshape(h, w, c)  # (H, W) or (H, W, 3)
        return Image.fromarray(arr)  # 2-D -> "L", (H, W, 3) -> "RGB"


class ImageDataset(Dataset):
    """Images of a list of :class:`Sample`; item ``(image (3, H, W), pid_label, camid, modality, index)``.

    Args:
        samples: the images, in item order.
        transform: PIL image -> tensor (3, H, W); used for every modality not in
            ``transform_by_modality``.
        pid_map: raw pid -> label (e.g. :func:`relabel` for training); ``None`` keeps raw pids.
        in_memory: decode every image once at construction (threads), into one packed uint8
            buffer; items are then built from memory, bit-identical to reading the files.
        transform_by_modality: per-modality transforms (e.g. CAJ's channel exchange for visible
            images only).
        num_threads: decoding threads for ``in_memory`` (default: CPU count, at most 8).

    Raises:
        DatasetError: a sample's pid is missing from ``pid_map``; with ``in_memory``, an image
            is missing or corrupt (the first offenders are named). Without ``in_memory`` the same
            error is raised when the item is read.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[Image.Image], torch.Tensor],
        *,
        pid_map: Mapping[int, int] | None = None,
        in_memory: bool = False,
        transform_by_modality: Mapping[Modality | int, Callable[[Image.Image], torch.Tensor]] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.samples: list[Sample] = list(samples)
        self.transform = transform
        self.transform_by_modality = {Modality.parse(k): v for k, v in (transform_by_modality or {}).items()}
        self.pid_map = None if pid_map is None else {int(k): int(v) for k, v in pid_map.items()}
        if self.pid_map is not None:
            missing = [s for s in self.samples if int(s.pid) not in self.pid_map]
            if missing:
                raise DatasetError(f"{len(missing)} samples have a pid missing from pid_map; first: "
                                   + ", ".join(f"{s.path} (pid {s.pid})" for s in missing[:5]))
        self._labels = [int(s.pid) if self.pid_map is None else self.pid_map[int(s.pid)] for s in self.samples]
        self._cache: _PackedImages | None = None
        if in_memory:
            threads = num_threads or min(8, os.cpu_count() or 1)
            start = time.perf_counter()
            self._cache = _PackedImages([s.path for s in self.samples], threads)
            logger.info("decoded %d images into memory in %.1f s (%.1f MiB)", len(self.samples),
                        time.perf_counter() - start, self._cache.nbytes / 2**20)

    @property
    def in_memory(self) -> bool:
        return self._cache is not None

    @property
    def pids(self) -> list[int]:
        """Raw identity of every item (what the sampler groups by)."""
        return [int(s.pid) for s in self.samples]

    @property
    def modalities(self) -> list[int]:
        """Modality label of every item (0 visible, 1 infrared)."""
        return [int(s.modality) for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, index: int) -> Image.Image:
        """The decoded image of item ``index`` (mode "L" or "RGB"), from memory or from disk."""
        if self._cache is not None:
            return self._cache.image(index)
        return decode_image(self.samples[index].path)

    def __getitem__(self, index: int) -> Item:
        index = int(index)
        sample = self.samples[index]
        transform = self.transform_by_modality.get(Modality(int(sample.modality)), self.transform)
        image = transform(self.load_image(index))  # (3, H, W)
        return image, self._labels[index], int(sample.camid), int(sample.modality), index


def collate_batch(items: Sequence[Item]) -> Batch:
    """Stack dataset items into a :class:`Batch` (images (B, 3, H, W), labels (B,) int64)."""
    if not items:
        raise ValueError("collate_batch: empty batch")
    images = torch.stack([it[0] for it in items])  # (B, 3, H, W)
    pids, camids, modality, index = (torch.tensor([it[k] for it in items], dtype=torch.int64)  # (B,)
                                     for k in range(1, 5))
    return Batch(images=images, pids=pids, camids=camids, modality=modality, index=index)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed Python's and NumPy's RNGs from the torch seed DataLoader gave this worker."""
    seed = torch.initial_seed() % 2**32  # base_seed (from the loader's generator) + worker_id
    random.seed(seed)
    np.random.seed(seed)


def _loader_generator(seed: int, rank: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(rank), 0x5EED]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def build_train_loader(
    samples: Sequence[Sample],
    *,
    height: int,
    width: int,
    num_ids: int,
    num_instances: int,
    seed: int,
    num_workers: int = 0,
    in_memory: bool = False,
    num_replicas: int = 1,
    rank: int = 0,
    batches_per_epoch: int | None = None,
    drop_last: bool = True,
    pad: int = 10,
    flip: bool = True,
    random_erasing: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augments: Sequence[ImageAugment] = (),
) -> DataLoader:
    """Training loader: batches of P ids x (K visible + K infrared) as :class:`Batch`.

    Labels are :func:`relabel` of ``samples`` (``loader.dataset.pid_map``, one class per raw id,
    including ids the sampler skips for lacking a modality). Transforms: :func:`build_train_transforms`
    with the ``augments`` of each modality. Call ``loader.batch_sampler.set_epoch(e)``
    before each epoch. ``len(loader)`` is the number of batches of this rank.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    transforms = build_train_transforms(height, width, augments=augments, pad=pad, flip=flip,
                                        random_erasing=random_erasing, mean=mean, std=std)
    dataset = ImageDataset(samples, transforms[Modality.VISIBLE], pid_map=relabel(samples), in_memory=in_memory,
                           transform_by_modality=transforms)
    sampler = CrossModalitySampler(dataset.pids, dataset.modalities, num_ids, num_instances, seed=seed,
                                   num_replicas=num_replicas, rank=rank, drop_last=drop_last,
                                   batches_per_epoch=batches_per_epoch)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_batch,
                      worker_init_fn=seed_worker, generator=_loader_generator(seed, rank),
                      persistent_workers=num_workers > 0)


def build_test_loader(
    samples: Sequence[Sample],
    *,
    height: int,
    width: int,
    batch_size: int,
    num_workers: int = 0,
    in_memory: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> DataLoader:
    """Inference loader: ``samples`` in order, raw pids, :func:`build_test_transform`, last batch kept."""
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    dataset = ImageDataset(samples, build_test_transform(height, width, mean=mean, std=std), in_memory=in_memory)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False, num_workers=num_workers,
                      collate_fn=collate_batch, worker_init_fn=seed_worker, persistent_workers=num_workers > 0)
