"""Embedders: images + modality -> L2-normalised float32 features, from a trained run (PyTorch) or
an exported ONNX file (ONNX Runtime), with one interface and one preprocessing.

Both apply :func:`vireid.retrieval.preprocess.preprocess_images` with the model's
:class:`~vireid.retrieval.preprocess.Preprocessing` and batch internally. With ``flip`` the raw
post-BN features of the image and its mirror are averaged, then normalised (as ``vireid test --flip``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vireid.retrieval.export import ExportError
from vireid.retrieval.preprocess import ImageInput, ImageInputError, Preprocessing, preprocess_images
from vireid.types import Modality

if TYPE_CHECKING:
    from vireid.retrieval.index import GalleryIndex, SearchHit

logger = logging.getLogger(__name__)

__all__ = ["Embedder", "OnnxEmbedder", "TorchEmbedder", "parse_modalities"]


def parse_modalities(modality: "str | int | Modality | Sequence[str | int | Modality]", n: int) -> np.ndarray:
    """One modality for all ``n`` images, or one per image -> (n,) int64 labels."""
    try:
        if isinstance(modality, (str, int, Modality)):
            return np.full((n,), int(Modality.parse(modality)), dtype=np.int64)
        labels = np.array([int(Modality.parse(m)) for m in modality], dtype=np.int64)
    except ValueError as exc:
        raise ImageInputError(str(exc)) from None
    if labels.shape != (n,):
        raise ImageInputError(f"got {labels.shape[0]} modalities for {n} images")
    return labels


class Embedder:
    """Common interface. Subclasses set ``spec``, ``fingerprint``, ``model_name`` and ``_raw_features``."""

    spec: Preprocessing
    fingerprint: str
    model_name: str
    batch_size: int = 64

    def _raw_features(self, images: torch.Tensor, modality: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) preprocessed images, (B,) labels -> (B, D) raw post-BN features."""
        raise NotImplementedError

    def embed(self, images: ImageInput | Sequence[ImageInput], modality: "str | int | Modality | Sequence[Any]",
              *, flip: bool = False) -> np.ndarray:
        """Images (paths, bytes, PIL images, NumPy arrays, tensors) -> (N, D) L2-normalised float32.

        ``modality``: ``"visible"``/``"infrared"`` (or an alias, or 0/1) for all images, or one per image.
        """
        if isinstance(images, (str, Path, bytes, np.ndarray, torch.Tensor)) or hasattr(images, "mode"):
            if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
                images = list(images)  # (N, ...) batch
            else:
                images = [images]
        images = list(images)
        labels = parse_modalities(modality, len(images))
        out = []
        for start in range(0, len(images), self.batch_size):
            x = preprocess_images(images[start:start + self.batch_size], self.spec)  # (B, 3, H, W)
            mods = labels[start:start + self.batch_size]
            feats = self._raw_features(x, mods)  # (B, D)
            if flip:
                feats = (feats + self._raw_features(torch.flip(x, dims=[3]), mods)) / 2
            out.append(feats)
        if not out:
            return np.zeros((0, 0), np.float32)
        feats = np.concatenate(out).astype(np.float32)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)

    def search(self, index: "GalleryIndex | str | Path", image: ImageInput, modality: "str | int | Modality",
               *, k: int = 10, flip: bool = False, **filters: Any) -> "list[SearchHit]":
        """Top-``k`` gallery entries of ``index`` for one query image (filters: camera, since, until)."""
        from vireid.retrieval.index import GalleryIndex

        gallery = index if isinstance(index, GalleryIndex) else GalleryIndex.open(index)
        query = self.embed([image], modality, flip=flip)
        return gallery.search(query, model_fingerprint=self.fingerprint, k=k, **filters)[0]


class TorchEmbedder(Embedder):
    """A trained model in eval mode, float32 (no autocast): the reference the ONNX export matches."""

    def __init__(self, model: torch.nn.Module, spec: Preprocessing, *, model_name: str,
                 device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        from vireid.engine.runtime import Runtime, resolve_device
        from vireid.retrieval.export import model_fingerprint

        self.runtime = Runtime(resolve_device(str(device)))
        self.model = model.to(self.runtime.device).eval()
        self.spec, self.model_name, self.batch_size = spec, model_name, int(batch_size)
        self.fingerprint = model_fingerprint(self.model, spec, model_name)

    def _raw_features(self, images: torch.Tensor, modality: np.ndarray) -> np.ndarray:
        from vireid.engine.inference import embed_batch

        emb = embed_batch(self.model, images, torch.from_numpy(modality), self.runtime)  # (B, D)
        return emb.cpu().numpy()


class OnnxEmbedder(Embedder):
    """An exported model (``vireid export``) run by ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, *, batch_size: int = 64, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ExportError(f"{path} is not a loadable ONNX model: {exc}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("vireid.preprocessing", "vireid.fingerprint") if k not in meta]
        if missing:
            raise ExportError(f"{path} has no {', '.join(missing)} metadata: not exported by vireid export")
        self.spec = Preprocessing.from_json(meta["vireid.preprocessing"])
        self.fingerprint = meta["vireid.fingerprint"]
        self.model_name = meta.get("vireid.model", "")
        self.embedding_info = json.loads(meta.get("vireid.embedding", "{}"))
        self.batch_size = int(batch_size)

    def _raw_features(self, images: torch.Tensor, modality: np.ndarray) -> np.ndarray:
        (feats,) = self.session.run(["features"], {"images": images.numpy(), "modality": modality})
        return feats  # (B, D)
