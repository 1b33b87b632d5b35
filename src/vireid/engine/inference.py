"""Feature extraction: the retrieval embedding of every sample, in order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vireid.config import DataConfig
from vireid.types import Sample
from vireid.engine.runtime import Runtime


def takes_aux(model: nn.Module) -> bool:
    """Whether ``model`` (or the module a DDP wrapper holds) declares ``aux_inputs``: it is called
    ``model(images, modality, aux=...)``."""
    return bool(getattr(getattr(model, "module", model), "aux_inputs", ()))


def flip_aux(aux: dict[str, torch.Tensor], parsing_labels: str = "atr") -> dict[str, torch.Tensor]:
    """The auxiliary maps of horizontally mirrored images: heatmaps mirrored with left/right joints
    swapped (COCO order), parsing maps mirrored with left/right labels swapped (``parsing_labels``)."""
    from vireid.data.aux import COCO_FLIP, LABEL_FLIPS

    out = dict(aux)
    if "heatmaps" in aux:
        out["heatmaps"] = torch.flip(aux["heatmaps"], dims=[-1])[:, list(COCO_FLIP)]
    if "parsing" in aux:
        lut = torch.as_tensor(LABEL_FLIPS[parsing_labels], dtype=torch.int64, device=aux["parsing"].device)
        out["parsing"] = lut[torch.flip(aux["parsing"], dims=[-1])]
    out.pop("keypoints", None)  # coordinates need the image width; models read the heatmaps
    return out


@torch.no_grad()
def embed_batch(model: nn.Module, images: torch.Tensor, modality: torch.Tensor, runtime: Runtime,
                flip: bool = False, aux: dict[str, torch.Tensor] | None = None,
                parsing_labels: str = "atr") -> torch.Tensor:
    """Embedding of one batch in float32; with ``flip`` the mean of the image's and its mirror's embedding.
    ``aux`` (keypoint heatmaps, parsing maps) reaches a model whose class declares ``aux_inputs``."""
    images = runtime.prepare_images(images)
    modality = modality.to(runtime.device)
    wants_aux = takes_aux(model)
    kw: dict[str, object] = {}
    if wants_aux:
        kw["aux"] = {k: v.to(runtime.device) for k, v in (aux or {}).items()}
    with runtime.autocast():
        emb = model(images, modality, **kw).embedding.float()  # (B, D)
        if flip:
            if wants_aux:
                kw["aux"] = flip_aux(kw["aux"], parsing_labels)  # type: ignore[arg-type]
            emb = (emb + model(torch.flip(images, dims=[3]), modality, **kw).embedding.float()) / 2
    return emb


@torch.no_grad()
def extract_features(
    model: nn.Module,
    samples: Sequence[Sample],
    data_cfg: DataConfig,
    runtime: Runtime,
    *,
    batch_size: int = 128,
    flip: bool = False,
) -> np.ndarray:
    """(N, D) float32 embeddings of ``samples`` (test transform, eval mode), in the samples' order."""
    from vireid.data.loader import build_test_loader

    if data_cfg.aux.enabled and takes_aux(model):
        from torch.utils.data import DataLoader

        from vireid.data.aux_dataset import build_aux_dataset

        dataset = build_aux_dataset(list(samples), data_cfg, train=False)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=data_cfg.num_workers,
                            collate_fn=dataset.collate)
    else:
        loader = build_test_loader(list(samples), height=data_cfg.height, width=data_cfg.width,
                                   batch_size=batch_size, num_workers=data_cfg.num_workers)
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in loader:
            out.append(embed_batch(model, batch.images, batch.modality, runtime, flip=flip, aux=batch.aux,
                                   parsing_labels=data_cfg.aux.parsing_labels).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
