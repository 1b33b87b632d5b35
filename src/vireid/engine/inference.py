"""Feature extraction: the retrieval embedding of every sample, in order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vireid.config import DataConfig
from vireid.types import Sample
from vireid.engine.runtime import Runtime


@torch.no_grad()
def embed_batch(model: nn.Module, images: torch.Tensor, modality: torch.Tensor, runtime: Runtime,
                flip: bool = False) -> torch.Tensor:
    """Embedding of one batch in float32; with ``flip`` the mean of the image's and its mirror's embedding."""
    images = runtime.prepare_images(images)
    modality = modality.to(runtime.device)
    with runtime.autocast():
        emb = model(images, modality).embedding.float()  # (B, D)
        if flip:
            emb = (emb + model(torch.flip(images, dims=[3]), modality).embedding.float()) / 2
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

    loader = build_test_loader(list(samples), height=data_cfg.height, width=data_cfg.width, batch_size=batch_size,
                               num_workers=data_cfg.num_workers)
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in loader:
            out.append(embed_batch(model, batch.images, batch.modality, runtime, flip=flip).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
