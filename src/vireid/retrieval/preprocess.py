"""The one preprocessing of a query or gallery image, shared by every consumer.

The PyTorch API (:mod:`vireid.api`), the ONNX Runtime embedder, ``vireid index`` and the search
service all turn an image into the model's input with :func:`preprocess_images` and a
:class:`Preprocessing` record. An exported ONNX model carries that record in its metadata
(``vireid.preprocessing``), so a consumer never has to guess the size, the normalisation, the
pixel range or the channel order (the usual cause of ONNX outputs that differ from PyTorch:
normalising twice, or not at all).

The pipeline is the run's own test transform (:func:`vireid.data.transforms.build_test_transform`):
to RGB (a single-channel infrared image is replicated), resize to ``(height, width)`` with
antialiased bilinear interpolation, scale the 0-255 pixels to [0, 1], normalise with ``mean``/``std``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_test_transform
from vireid.errors import VireidError

__all__ = ["ImageInput", "ImageInputError", "Preprocessing", "load_image", "preprocess_images"]

ImageInput = Union[str, "os.PathLike[str]", Image.Image, np.ndarray, torch.Tensor, bytes]


class ImageInputError(VireidError, ValueError):
    """An image given to the API/index/service is missing, undecodable or of an unsupported shape."""


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects of its input image; stored in ONNX metadata and in every index.

    Attributes:
        height, width: the model's input size (the image is resized to it, aspect not kept).
        mean, std: per-channel normalisation applied to pixels scaled to [0, 1].
        pixel_range: the range of the decoded pixels before scaling (always ``"0-255"``: 8-bit images).
        channel_order: ``"RGB"`` (infrared images are replicated to 3 equal channels).
        resize: the interpolation (``"bilinear-antialias"``, torchvision's on PIL images).
        layout: the tensor layout fed to the model (``"NCHW"`` float32).
    """

    height: int
    width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pixel_range: str = "0-255"
    channel_order: str = "RGB"
    resize: str = "bilinear-antialias"
    layout: str = "NCHW"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessing":
        try:
            data = json.loads(text)
            spec = cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})
        except (ValueError, TypeError, KeyError) as exc:
            raise ImageInputError(f"preprocessing record {text[:200]!r} is malformed: {exc}") from None
        if spec.pixel_range != "0-255" or spec.channel_order != "RGB" or spec.layout != "NCHW":
            raise ImageInputError(f"preprocessing {spec} is not one this vireid applies "
                                  "(expected pixel_range 0-255, channel_order RGB, layout NCHW)")
        return spec


def _from_array(array: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1|3|4) uint8 or float in [0, 1], or (1|3, H, W) -> PIL ("L" or "RGB")."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise ImageInputError(f"image array must be (H, W), (H, W, 3|4) or (3, H, W), got shape {array.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ImageInputError(f"image array must be uint8 (0-255) or float (0-1), got {a.dtype}")
        if a.size and (np.nanmin(a) < 0.0 or np.nanmax(a) > 1.0 or not np.isfinite(a).all()):
            raise ImageInputError("float image arrays must hold finite values in [0, 1] (8-bit pixels / 255)")
        a = np.rint(a * 255.0).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    return Image.fromarray(np.ascontiguousarray(a), mode="L" if a.ndim == 2 else "RGB")


def load_image(image: ImageInput) -> Image.Image:
    """Any supported input -> a decoded PIL image in mode "L" or "RGB".

    Accepts a file path, encoded bytes, a PIL image, a NumPy array or a tensor (uint8 0-255, or
    float 0-1 rounded to 8 bits, so every input form of the same picture gives the same pixels).
    """
    if isinstance(image, Image.Image):
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    if isinstance(image, torch.Tensor):
        return _from_array(image.detach().cpu().numpy())
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, (bytes, bytearray)):
        source: Any = io.BytesIO(image)
        name = "<bytes>"
    elif isinstance(image, (str, os.PathLike)):
        source = name = os.fspath(image)
    else:
        raise ImageInputError(f"unsupported image input {type(image).__name__}: "
                              "expected a path, bytes, PIL image, NumPy array or tensor")
    try:
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB") if img.mode not in ("L", "RGB") else img.copy()
    except FileNotFoundError:
        raise ImageInputError(f"image file not found: {name}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"cannot decode image {name}: {exc}") from None


def preprocess_images(images: Sequence[ImageInput], spec: Preprocessing) -> torch.Tensor:
    """Images -> the model input (N, 3, height, width) float32, exactly the run's test transform."""
    transform = build_test_transform(spec.height, spec.width, mean=spec.mean, std=spec.std)
    if len(images) == 0:
        return torch.zeros((0, 3, spec.height, spec.width), dtype=torch.float32)
    return torch.stack([transform(load_image(im)) for im in images]).float()  # (N, 3, H, W)
