"""A torch dataset whose batches carry auxiliary tensors in :attr:`Batch.aux`.

``AuxImageDataset(samples, keypoints=..., parsing=..., captions=..., vocab=...)`` loads each
image with its sidecars (:mod:`vireid.data.aux`), applies the AGW geometry to all of them together
(training) or only the resize (testing), and returns ``aux`` tensors:

- ``keypoints`` (17, 3) float ``[x, y, v]`` in the output image's pixels, ``heatmaps`` (17, H/s, W/s);
- ``parsing`` (H, W) int64 label ids (left/right swapped with the flip);
- ``tokens`` (L,) int64 word ids of one caption (0 padding, 1 unknown), ``caption_index`` ().

:func:`collate_aux` stacks items into a :class:`~vireid.types.Batch`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vireid.data.aux import (LABEL_FLIPS, AuxSample, CaptionSidecar, KeypointSidecar, ParsingSidecar,
                             keypoint_heatmaps, random_train_view, resize)
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.types import Batch, Sample

PAD, UNK = 0, 1


class Vocabulary:
    """Word-level vocabulary of lower-case tokens (0 = padding, 1 = unknown)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = ["<pad>", "<unk>"] + list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        counts = Counter(t for c in captions for t in re.findall(r"[a-z]+", c.lower()))
        return cls(sorted(w for w, n in counts.items() if n >= min_count))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str, length: int) -> torch.Tensor:
        """(length,) int64 ids, truncated or zero-padded."""
        ids = [self.index.get(t, UNK) for t in re.findall(r"[a-z]+", caption.lower())][:length]
        return torch.tensor(ids + [PAD] * (length - len(ids)), dtype=torch.int64)


class AuxImageDataset(Dataset):
    """Images of ``samples`` with the auxiliary tensors of the given sidecars (see the module doc)."""

    def __init__(self, samples: Sequence[Sample], height: int, width: int, *, train: bool = False,
                 keypoints: KeypointSidecar | None = None, parsing: ParsingSidecar | None = None,
                 captions: CaptionSidecar | None = None, vocab: Vocabulary | None = None, caption_length: int = 64,
                 heatmap_stride: int = 4, seed: int = 0, pid_map: Mapping[int, int] | None = None,
                 padding: int = 10, flip: bool = True) -> None:
        if captions is not None and vocab is None:
            raise ValueError("captions need a vocab (Vocabulary.build over the training captions)")
        self.samples, self.height, self.width, self.train = list(samples), height, width, train
        self.keypoints, self.parsing, self.captions, self.vocab = keypoints, parsing, captions, vocab
        self.caption_length, self.heatmap_stride, self.seed, self.epoch = caption_length, heatmap_stride, seed, 0
        self.pid_map = None if pid_map is None else {int(k): int(v) for k, v in pid_map.items()}
        self.padding, self.flip_p = int(padding), 0.5 if flip else 0.0
        self.collate = collate_aux
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        """Training views and caption picks depend on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> AuxSample:
        """The sample's image and sidecar data before any transform."""
        s = self.samples[index]
        with Image.open(s.path) as img:
            image = np.asarray(img.convert("RGB"))
        out = AuxSample(image)
        if self.keypoints is not None:
            out.keypoints = self.keypoints.get(s.relpath)
        if self.parsing is not None:
            out.maps["parsing"] = self.parsing.get(s.relpath, image.shape[:2])
            out.flip_luts["parsing"] = LABEL_FLIPS[self.parsing.labels]
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int, int, dict[str, torch.Tensor]]:
        s = self.samples[index]
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, index)) & 0x7FFFFFFF)
        view = self.load(index)
        view = (random_train_view(view, self.height, self.width, g, padding=self.padding, flip_p=self.flip_p)
                if self.train else resize(view, self.height, self.width))
        image = torch.from_numpy(view.image.copy()).permute(2, 0, 1).float().div(255.0)  # (3, H, W)
        aux: dict[str, torch.Tensor] = {}
        if view.keypoints is not None:
            aux["keypoints"] = torch.from_numpy(view.keypoints.astype(np.float32))  # (17, 3)
            aux["heatmaps"] = keypoint_heatmaps(view.keypoints, self.height, self.width, self.heatmap_stride)
        if "parsing" in view.maps:
            aux["parsing"] = torch.from_numpy(view.maps["parsing"].astype(np.int64))  # (H, W)
        if self.captions is not None and self.vocab is not None:
            caps = self.captions.get(s.relpath)
            k = int(torch.randint(len(caps), (), generator=g)) if self.train else 0
            aux["tokens"] = self.vocab.encode(caps[k], self.caption_length)  # (L,)
            aux["caption_index"] = torch.tensor(k)
        pid = s.pid if self.pid_map is None else self.pid_map[int(s.pid)]
        return (image - self.mean) / self.std, pid, s.camid, int(s.modality), index, aux


def collate_aux(items: Sequence[tuple[torch.Tensor, int, int, int, int, dict[str, torch.Tensor]]]) -> Batch:
    """Stack items into a :class:`Batch` with ``aux`` (every item must carry the same aux keys)."""
    keys = set(items[0][5])
    bad = [i for i, it in enumerate(items) if set(it[5]) != keys]
    if bad:
        raise ValueError(f"items {bad[:5]} carry aux keys {sorted(items[bad[0]][5])}, item 0 {sorted(keys)}")
    aux: dict[str, Any] = {k: torch.stack([it[5][k] for it in items]) for k in sorted(keys)}
    return Batch(torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items]),
                 torch.tensor([it[2] for it in items]), torch.tensor([it[3] for it in items]),
                 torch.tensor([it[4] for it in items]), aux)


def build_aux_dataset(samples: Sequence[Sample], data_cfg: Any, *, train: bool,
                      pid_map: Mapping[int, int] | None = None, seed: int = 0) -> AuxImageDataset:
    """The :class:`AuxImageDataset` of ``samples`` with the sidecars of ``data_cfg.aux``
    (:class:`vireid.config.AuxConfig`): the training view (pad ``data.pad``, crop, flip when ``data.flip``)
    moves the image and its maps together; testing only resizes. Captions are read for training only
    (the vocabulary is built over the captions of ``samples``); image embeddings at test time need none."""
    aux = data_cfg.aux
    keypoints = KeypointSidecar(aux.keypoints, missing=aux.missing) if aux.keypoints else None
    parsing = ParsingSidecar(aux.parsing, labels=aux.parsing_labels, missing=aux.missing) if aux.parsing else None
    captions = vocab = None
    if aux.captions and train:
        captions = CaptionSidecar(aux.captions)
        vocab = Vocabulary.build(c for s in samples for c in captions.get(s.relpath))
    return AuxImageDataset(samples, data_cfg.height, data_cfg.width, train=train, keypoints=keypoints,
                           parsing=parsing, captions=captions, vocab=vocab, caption_length=aux.caption_length,
                           heatmap_stride=aux.heatmap_stride, seed=seed, pid_map=pid_map, padding=data_cfg.pad,
                           flip=data_cfg.flip)
