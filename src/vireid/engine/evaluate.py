"""Evaluate a trained run under its dataset's official protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from torch import nn

from vireid.config import TrainConfig
from vireid.engine import build
from vireid.engine.checkpoint import CheckpointError, load_checkpoint, load_model_state
from vireid.engine.inference import extract_features
from vireid.engine.runtime import Runtime

logger = logging.getLogger(__name__)


def resolve_checkpoint(run_dir: str | Path, which: str) -> Path:
    """``best`` / ``last`` inside the run folder, or an explicit file path."""
    if which in ("best", "last"):
        path = Path(run_dir) / f"{which}.pt"
    else:
        path = Path(which)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_trained_model(cfg: TrainConfig, checkpoint: str | Path, runtime: Runtime) -> tuple[nn.Module, dict]:
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    model_cfg = cfg.model
    if model_cfg.params.get("pretrained") is not None:  # the checkpoint holds every weight: read no weight file
        model_cfg = model_cfg.model_copy(update={"params": {**model_cfg.params, "pretrained": None}})
    model = build.build_model_from_config(model_cfg, ckpt["num_classes"])
    load_model_state(model, ckpt["model"])
    model.to(runtime.device).eval()
    if runtime.channels_last:
        import torch

        model = model.to(memory_format=torch.channels_last)
    return model, ckpt


def evaluate_model(
    model: nn.Module,
    cfg: TrainConfig,
    runtime: Runtime,
    *,
    protocol: dict[str, Any] | None = None,
    flip: bool = False,
    distance_fn: Callable | None = None,
    rerank_settings: dict[str, Any] | None = None,
    dataset=None,
    distance: str = "euclidean",
    normalize: bool = True,
) -> dict[str, Any]:
    """Extract the test features and score them under the dataset's protocol.

    Features are the L2-normalised post-BN embeddings compared by Euclidean distance (the AGW
    test setting) unless ``distance`` (``"euclidean"`` or ``"cosine"``) / ``normalize`` say otherwise
    (``distance_fn``, e.g. MoS's Jaccard, replaces the distance and sees the features as normalised or not). Flip augmentation and re-ranking are off unless asked for, and recorded in
    the result's settings either way.
    """
    from vireid.evaluation.protocols import evaluate_plan

    dataset = dataset if dataset is not None else build.build_dataset_from_config(cfg.data)
    settings = dict(cfg.eval.protocol if protocol is None else protocol)
    plan = build.build_eval_plan(dataset, settings)
    feats = extract_features(model, dataset.test, cfg.data, runtime, batch_size=cfg.eval.batch_size, flip=flip)
    result = evaluate_plan(plan, dataset.test, feats, distance=distance, normalize=normalize,
                           distance_fn=distance_fn)
    result["settings"]["flip"] = bool(flip)
    result["settings"]["rerank"] = rerank_settings or {"method": "none"}
    return result

