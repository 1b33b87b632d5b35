"""ONNX export of a trained model's retrieval embedding, with its preprocessing in the metadata.

The exported graph takes ``images`` (N, 3, H, W) float32, already preprocessed by
:func:`vireid.retrieval.preprocess.preprocess_images`, and ``modality`` (N,) int64 (0 visible,
1 infrared), both with a dynamic batch axis, and returns ``embedding`` (N, D) float32: the
post-BNNeck feature L2-normalised (the AGW test embedding, seeds/001 §1), and ``features`` (N, D),
the same before normalisation (flip averaging adds the two views' raw features, then normalises).

A model whose forward has no data-dependent branch says so with ``traceable_forward = True`` (the
ViT models: the modality embedding is a gather) and is exported as it is. The two-stream backbone routes each image through its modality's stem by splitting the batch,
a data-dependent branch that a traced graph would freeze. :class:`ExportableEmbedding` computes
the modality-specific stages for both streams on the whole batch and picks each row's stream with
``where``: the same numbers in eval mode (BatchNorm uses running statistics, rows are
independent), at the cost of running the specific stages twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vireid.errors import VireidError
from vireid.retrieval.preprocess import Preprocessing
from vireid.utils.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["ExportError", "ExportableEmbedding", "export_onnx", "model_fingerprint", "why_not_exportable",
           "METADATA_KEYS"]

OPSET = 17
METADATA_KEYS = ("vireid.preprocessing", "vireid.fingerprint", "vireid.model", "vireid.embedding")


class ExportError(VireidError, ValueError):
    """A model cannot be exported, or an exported file is not a vireid model."""


def model_fingerprint(model: nn.Module, spec: Preprocessing, model_name: str = "") -> str:
    """Short SHA-256 of the weights that shape the embedding, the model name and the preprocessing.

    The classifier is left out (it does not change the embedding), so a model and its ONNX
    export share one fingerprint; an index records it and refuses queries from any other model.
    """
    h = hashlib.sha256()
    h.update(model_name.encode())
    h.update(spec.to_json().encode())
    for key, value in sorted(model.state_dict().items()):
        if ".classifier." in f".{key}" or not isinstance(value, torch.Tensor):
            continue
        h.update(key.encode())
        h.update(np.ascontiguousarray(value.detach().cpu().float().numpy()).tobytes())
    return h.hexdigest()[:16]


def why_not_exportable(model: nn.Module) -> str | None:
    """None when :class:`ExportableEmbedding` can wrap ``model``, else the reason."""
    from vireid.models.backbones import TwoStreamResNet

    backbone = getattr(model, "backbone", None)
    if getattr(model, "traceable_forward", False):  # no data-dependent branch (a ViT): exported as it is
        return None
    if not isinstance(backbone, TwoStreamResNet):
        return f"{type(model).__name__} has no TwoStreamResNet backbone; its forward cannot be split per modality"
    if not isinstance(getattr(model, "head", None), nn.Module):
        return f"{type(model).__name__} has no re-ID head module"
    return None


class ExportableEmbedding(nn.Module):
    """``(images (N,3,H,W), modality (N,)) -> (L2-normalised embedding, raw post-BN features)``, each
    (N, D), without data-dependent branches (see the module docstring). Eval-mode only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        reason = why_not_exportable(model)
        if reason is not None:
            raise ExportError(f"cannot export: {reason}")
        self.model = model
        self.eval()  # the wrapper too: the exporter restores the wrapper's mode (recursively) when done

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        from vireid.models.backbones import MODALITY_KEYS

        if getattr(self.model, "traceable_forward", False):
            features = self.model(images, modality).bn_features.float()  # (N, D)
            # a model that ignores modality (no modality embedding) would lose the input from the graph,
            # and every exported file takes (images, modality): keep it with an exact zero term
            features = features + 0.0 * modality.to(features.dtype).unsqueeze(1)
            return nn.functional.normalize(features, dim=1), features
        backbone = self.model.backbone
        x = images
        if backbone.num_specific_stages > 0:
            streams = []
            for key in MODALITY_KEYS:  # visible, infrared
                s = images
                for stage in backbone.specific[key]:
                    s = stage(s)  # (N, C_s, h_s, w_s)
                streams.append(s)
            pick = (modality == 1).reshape(-1, 1, 1, 1)  # (N, 1, 1, 1)
            x = torch.where(pick, streams[1], streams[0])
        for stage in backbone.shared:
            x = stage(x)  # (N, C_i, h_i, w_i)
        features = self.model.head(x).bn_features.float()  # (N, D)
        return nn.functional.normalize(features, dim=1), features


def export_onnx(model: nn.Module, spec: Preprocessing, out: str | Path, *, model_name: str,
                fingerprint: str | None = None) -> dict[str, str]:
    """Write ``model``'s embedding graph to ``out`` (atomically) with the metadata of :data:`METADATA_KEYS`.

    Returns the metadata written. Raises :class:`ExportError` for a model that cannot be exported.
    """
    was_training = model.training
    try:
        return _export(model, spec, out, model_name, fingerprint)
    finally:
        model.train(was_training)  # the caller's model comes back in the mode it was given


def _export(model: nn.Module, spec: Preprocessing, out: str | Path, model_name: str,
            fingerprint: str | None) -> dict[str, str]:
    import onnx

    wrapper = ExportableEmbedding(model).cpu().float()
    fingerprint = fingerprint or model_fingerprint(model, spec, model_name)
    images = torch.zeros(2, 3, spec.height, spec.width)
    modality = torch.tensor([0, 1], dtype=torch.int64)
    metadata = {
        "vireid.preprocessing": spec.to_json(),
        "vireid.fingerprint": fingerprint,
        "vireid.model": model_name,
        "vireid.embedding": json.dumps({"dim": int(wrapper(images, modality)[0].shape[1]),
                                        "outputs": {"embedding": "post-BNNeck, L2-normalised",
                                                    "features": "post-BNNeck, raw (flip: average, then normalise)"}}),
    }
    with atomic_path(out) as tmp:
        with torch.no_grad():
            try:
                torch.onnx.export(
                    wrapper, (images, modality), str(tmp), input_names=["images", "modality"],
                    output_names=["embedding", "features"], opset_version=OPSET, dynamo=False,
                    dynamic_axes={"images": {0: "batch"}, "modality": {0: "batch"}, "embedding": {0: "batch"},
                                  "features": {0: "batch"}},
                )
            except torch.onnx.errors.OnnxExporterError as exc:  # e.g. an operator ONNX cannot express
                reason = str(exc).split(" [Caused by")[0].splitlines()[0]
                raise ExportError(f"cannot export {model_name} at {spec.height}x{spec.width}: {reason}") from None
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    logger.info("exported %s (%s) to %s", model_name, fingerprint, out)
    return metadata
