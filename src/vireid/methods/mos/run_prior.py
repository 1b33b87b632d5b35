"""The co-occurrence prior of a trained run (MoS, seeds/002 §3): ``M^p`` over the same-identity
pairs of its training images, embedded by the trained model (eval mode, test transform).

The seed collects ``M^p`` over the training pairs; collecting it once from the final model, rather
than as a running maximum during training, keeps early-epoch features (another embedding) out of it.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from vireid.config import TrainConfig
from vireid.engine import build
from vireid.engine.inference import extract_features
from vireid.engine.runtime import Runtime
from vireid.errors import ConfigError
from vireid.methods.mos.conflict import cooccurrence_prior

logger = logging.getLogger(__name__)


def training_prior(model: nn.Module, train_cfg: TrainConfig, runtime: Runtime, *, top_k: int = 32,
                   batch_size: int = 128, form: str = "seed") -> tuple[torch.Tensor, str]:
    """``(M^p (C, C), description)`` from the training images of ``train_cfg.data`` embedded by ``model``."""
    dataset = build.build_dataset_from_config(train_cfg.data)
    samples = list(dataset.train)
    if not samples:
        raise ConfigError(f"the run's dataset {train_cfg.data.dataset} at {train_cfg.data.root} has no training "
                          "images to collect the co-occurrence prior from; pass --jaccard-prior FILE.npz")
    feats = extract_features(model, samples, train_cfg.data, runtime, batch_size=batch_size)  # (N, C)
    prior = cooccurrence_prior(feats, torch.tensor([s.pid for s in samples]), top_k=top_k, form=form)
    source = (f"training images of {train_cfg.data.dataset} at {train_cfg.data.root} "
              f"({len(samples)} images, {len({s.pid for s in samples})} ids, top {top_k} channels, {form} form)")
    logger.info("co-occurrence prior: %s", source)
    return prior, source
