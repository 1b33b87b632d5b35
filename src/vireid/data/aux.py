"""Auxiliary inputs that travel with the batch: keypoints, parsing maps, masks, caption tokens.

Sidecars (bring your own, in the formats real tools write):

- :class:`KeypointSidecar`: a COCO keypoints JSON (``images`` + ``annotations``, 17 joints ``[x, y, v]``)
  from any pose estimator, keyed by the image's dataset-relative path (``file_name``). SPOT
  (seeds/001 §4) reads body keypoints.
- :class:`ParsingSidecar`: a folder of single-channel label PNGs at ``FOLDER/<relpath with .png>``
  from any human parser (ATR or LIP label ids). SAP's parsing teacher (seeds/002 §4).
- :class:`CaptionSidecar`: a CUHK-PEDES-form captions JSON (``file_path`` + ``captions``); MCMA
  (seeds/002 §6) reads caption token ids.

A missing entry is a :class:`DatasetError` naming the sidecar file and the image, unless the
sidecar was built with ``missing="empty"`` (an all-invisible skeleton / all-background map), which
is counted and logged (the explicit fallback of methods that define one).

:class:`AuxSample` transforms keep every map consistent with its image: :func:`hflip` mirrors the
image and maps and swaps left/right (keypoint order by ``COCO_FLIP``, parsing ids by a label LUT),
:func:`crop` and :func:`pad` move coordinates (joints that leave the image become ``v = 0``), and
:func:`resize` resamples the image bilinearly and every label map nearest-neighbour.
Coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vireid.data.synthetic.truth import ATR_FLIP, COCO_FLIP, COCO_KEYPOINTS
from vireid.errors import DatasetError

logger = logging.getLogger(__name__)

MISSING_MODES = ("error", "empty")
# LIP (Gong et al., CVPR'17) ids: 14/15 arms, 16/17 legs, 18/19 shoes swap under a flip
LIP_FLIP = np.arange(20, dtype=np.uint8)
for _a, _b in ((14, 15), (16, 17), (18, 19)):
    LIP_FLIP[_a], LIP_FLIP[_b] = _b, _a
LABEL_FLIPS = {"atr": ATR_FLIP, "lip": LIP_FLIP}


def _check_missing(missing: str) -> str:
    if missing not in MISSING_MODES:
        raise DatasetError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    return missing


class KeypointSidecar:
    """COCO keypoints of each image, by dataset-relative path. One person per re-ID crop: the
    annotation with the most labelled joints is used when an image has several."""

    def __init__(self, path: str | os.PathLike[str], missing: str = "error") -> None:
        self.path, self.missing, self.num_missing = Path(path), _check_missing(missing), 0
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            names = {img["id"]: str(img["file_name"]).replace("\\", "/") for img in data["images"]}
            anns = data["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"keypoints sidecar {self.path}: not a COCO keypoints JSON with 'images' and "
                               f"'annotations' ({exc})") from exc
        self.keypoints: dict[str, np.ndarray] = {}
        for ann in anns:
            kp = np.asarray(ann.get("keypoints", []), dtype=np.float32)
            if kp.size != 3 * len(COCO_KEYPOINTS):
                raise DatasetError(f"keypoints sidecar {self.path}: annotation {ann.get('id')} has {kp.size} values, "
                                   f"expected {3 * len(COCO_KEYPOINTS)} (17 COCO joints x [x, y, v])")
            name = names.get(ann.get("image_id"))
            if name is None:
                raise DatasetError(f"keypoints sidecar {self.path}: annotation {ann.get('id')} names unknown "
                                   f"image_id {ann.get('image_id')}")
            kp = kp.reshape(-1, 3)
            old = self.keypoints.get(name)
            if old is None or (kp[:, 2] > 0).sum() > (old[:, 2] > 0).sum():
                self.keypoints[name] = kp

    def get(self, relpath: str) -> np.ndarray:
        """(17, 3) float32 ``[x, y, v]`` of ``relpath``."""
        kp = self.keypoints.get(relpath)
        if kp is not None:
            return kp.copy()
        if self.missing == "error":
            raise DatasetError(f"keypoints sidecar {self.path} has no annotation for image {relpath!r}")
        self.num_missing += 1
        if self.num_missing == 1:
            logger.warning("keypoints sidecar %s: no annotation for %s; using an all-invisible skeleton "
                           "(missing='empty'; counted in num_missing)", self.path, relpath)
        return np.zeros((len(COCO_KEYPOINTS), 3), dtype=np.float32)


class ParsingSidecar:
    """Label PNGs at ``folder/<relpath with .png>``; ``labels`` names the id convention (atr or lip)."""

    def __init__(self, folder: str | os.PathLike[str], labels: str = "atr", missing: str = "error") -> None:
        if labels not in LABEL_FLIPS:
            raise DatasetError(f"parsing sidecar: labels must be one of {sorted(LABEL_FLIPS)}, got {labels!r}")
        self.folder, self.labels, self.missing, self.num_missing = Path(folder), labels, _check_missing(missing), 0
        if not self.folder.is_dir():
            raise DatasetError(f"parsing sidecar folder {self.folder} does not exist")

    def file_for(self, relpath: str) -> Path:
        return self.folder / (os.path.splitext(relpath)[0] + ".png")

    def get(self, relpath: str, size: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 label map of ``relpath`` (``size`` = (H, W) of its image)."""
        path = self.file_for(relpath)
        if not path.is_file():
            if self.missing == "error":
                raise DatasetError(f"parsing sidecar: missing label map {path} for image {relpath!r}")
            self.num_missing += 1
            if self.num_missing == 1:
                logger.warning("parsing sidecar: missing %s; using an all-background map (missing='empty')", path)
            return np.zeros(size, dtype=np.uint8)
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise DatasetError(f"parsing sidecar: {path} is mode {img.mode}, expected a single-channel label PNG")
            labels = np.asarray(img, dtype=np.uint8)
        if labels.shape != tuple(size):
            raise DatasetError(f"parsing sidecar: {path} is {labels.shape[1]}x{labels.shape[0]}, its image is "
                               f"{size[1]}x{size[0]}")
        return labels


class CaptionSidecar:
    """Captions by image path from a CUHK-PEDES-form JSON (``file_path`` or ``img_path``, ``captions``)."""

    def __init__(self, path: str | os.PathLike[str], prefix: str = "") -> None:
        self.path = Path(path)
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            self.captions = {prefix + str(e.get("file_path", e.get("img_path"))).replace("\\", "/"): list(e["captions"])
                             for e in entries}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(f"captions sidecar {self.path}: not a list of {{file_path, captions}} entries "
                               f"({exc})") from exc

    def get(self, relpath: str) -> list[str]:
        caps = self.captions.get(relpath)
        if not caps:
            raise DatasetError(f"captions sidecar {self.path} has no captions for image {relpath!r}")
        return caps


@dataclass
class AuxSample:
    """An image with its auxiliary data, transformed together.

    ``image`` uint8 (H, W, 3); ``keypoints`` (K, 3) ``[x, y, v]`` or ``None``; ``maps`` label maps
    (H, W) uint8 by name (``parsing``, ``mask``...), resampled nearest-neighbour; ``flip_luts`` the
    label LUT each map's ids go through under a horizontal flip (absent: ids unchanged).
    """

    image: np.ndarray
    keypoints: np.ndarray | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    flip_luts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def _drop_outside(kp: np.ndarray, height: int, width: int) -> np.ndarray:
    outside = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] >= width) | (kp[:, 1] >= height) | (kp[:, 2] <= 0)
    kp = kp.copy()
    kp[outside] = 0.0
    return kp


def hflip(s: AuxSample) -> AuxSample:
    """Mirror left-right: ``x -> W - x``, joints swapped by ``COCO_FLIP``, map ids through their LUTs."""
    h, w = s.size
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints[list(COCO_FLIP)].copy()
        on = kp[:, 2] > 0
        kp[on, 0] = w - kp[on, 0]
    maps = {k: (s.flip_luts[k][m[:, ::-1]] if k in s.flip_luts else m[:, ::-1]).copy() for k, m in s.maps.items()}
    return replace(s, image=s.image[:, ::-1].copy(), keypoints=kp, maps=maps)


def crop(s: AuxSample, top: int, left: int, height: int, width: int) -> AuxSample:
    """The window ``[top, top + height) x [left, left + width)`` (inside the image)."""
    h, w = s.size
    if not (0 <= top and 0 <= left and top + height <= h and left + width <= w and height > 0 and width > 0):
        raise ValueError(f"crop window {(top, left, height, width)} is not inside the {h}x{w} image")
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints.copy()
        kp[:, 0] -= left
        kp[:, 1] -= top
        kp = _drop_outside(kp, height, width)
    maps = {k: m[top:top + height, left:left + width].copy() for k, m in s.maps.items()}
    return replace(s, image=s.image[top:top + height, left:left + width].copy(), keypoints=kp, maps=maps)


def pad(s: AuxSample, amount: int) -> AuxSample:
    """``amount`` zero pixels on every side (label maps padded with 0, background)."""
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints.copy()
        on = kp[:, 2] > 0
        kp[on, :2] += amount
    widths = ((amount, amount), (amount, amount)) + ((0, 0),) * (s.image.ndim - 2)
    maps = {k: np.pad(m, ((amount, amount), (amount, amount))) for k, m in s.maps.items()}
    return replace(s, image=np.pad(s.image, widths), keypoints=kp, maps=maps)


def resize(s: AuxSample, height: int, width: int) -> AuxSample:
    """Image bilinear, label maps nearest-neighbour, coordinates scaled."""
    h, w = s.size
    image = np.asarray(Image.fromarray(s.image).resize((width, height), Image.Resampling.BILINEAR))
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints.copy()
        on = kp[:, 2] > 0
        kp[on, 0] *= width / w
        kp[on, 1] *= height / h
    maps = {k: np.asarray(Image.fromarray(m).resize((width, height), Image.Resampling.NEAREST)) for k, m in s.maps.items()}
    return replace(s, image=image, keypoints=kp, maps=maps)


def random_train_view(s: AuxSample, height: int, width: int, generator: torch.Generator, padding: int = 10,
                      flip_p: float = 0.5) -> AuxSample:
    """The AGW training geometry (resize, pad, random crop, random flip; seeds/001 §1) applied to
    the image and its auxiliary data together, drawing from ``generator``."""
    s = pad(resize(s, height, width), padding)
    top = int(torch.randint(0, 2 * padding + 1, (), generator=generator))
    left = int(torch.randint(0, 2 * padding + 1, (), generator=generator))
    s = crop(s, top, left, height, width)
    if float(torch.rand((), generator=generator)) < flip_p:
        s = hflip(s)
    return s


def keypoint_heatmaps(keypoints: np.ndarray, height: int, width: int, stride: int = 4,
                      sigma: float = 1.0) -> torch.Tensor:
    """(K, H / stride, W / stride) Gaussian heatmaps (peak 1) of the labelled joints; zeros for ``v = 0``."""
    hh, ww = height // stride, width // stride
    ys = (torch.arange(hh, dtype=torch.float32) + 0.5)[:, None]  # (h, 1) cell centres, heatmap pixels
    xs = (torch.arange(ww, dtype=torch.float32) + 0.5)[None, :]  # (1, w)
    out = torch.zeros(len(keypoints), hh, ww)
    for k, (x, y, v) in enumerate(keypoints):
        if v > 0:
            out[k] = torch.exp(-((xs - x / stride) ** 2 + (ys - y / stride) ** 2) / (2 * sigma**2))  # (h, w)
    return out
