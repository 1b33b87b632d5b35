"""Grad-CAM heatmaps and per-channel activation maps for any model with the ``model(images, modality)`` contract.

Grad-CAM (Selvaraju et al., ICCV 2017): for a scalar score ``y`` per image and the activation
``A`` (B, C, h, w) of a target layer, ``w_c = mean_hw dy/dA_c`` and ``cam = ReLU(sum_c w_c A_c)``,
upsampled to the input size and scaled to [0, 1] per image. Re-ID models have no class for a
test identity, so the score is a retrieval score: the cosine similarity of the query's embedding
to a reference embedding (e.g. the mean gallery feature of its identity, :func:`similarity_score`),
i.e. "which pixels make this query match its identity". The visual analyses of seeds/003 §3.4
and seeds/002 ("可视化分析") argue with such maps.

The ``grad-cam`` PyPI package calls ``model(input_tensor)`` with one argument and pulls in OpenCV;
vireid's models take ``(images, modality)``, so this small hook-based version is used instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import ModelOutput

ScoreFn = Callable[[ModelOutput], torch.Tensor]  # model output -> (B,) score per image


def default_target_layer(model: nn.Module) -> nn.Module:
    """The module whose output map Grad-CAM reads: the backbone's ``cam_target()`` if it names one (a ViT:
    the last block's input norm, whose patch tokens still feed [cls]), else ``model.backbone`` if the model
    has one, else its last Conv2d."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module) and callable(getattr(backbone, "cam_target", None)):
        return backbone.cam_target()
    if isinstance(backbone, nn.Module):
        return backbone
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no backbone attribute and no Conv2d: pass target_layer")
    return convs[-1]


def similarity_score(reference: torch.Tensor, use_bn: bool = True) -> ScoreFn:
    """Score = cosine similarity of each image's (BN) embedding to ``reference`` (B, D) or (D,)."""

    def score(out: ModelOutput) -> torch.Tensor:
        emb = out.bn_features if use_bn else out.features  # (B, D)
        ref = reference.to(emb.device, emb.dtype)
        return F.cosine_similarity(emb, ref.expand_as(emb), dim=1)  # (B,)

    return score


def _token_grid(model: nn.Module) -> tuple[int, int] | None:
    """The (h, w) patch grid of a token backbone (a ViT's ``grid_size``), None for CNNs."""
    grid = getattr(getattr(model, "backbone", None), "grid_size", None)
    return (int(grid[0]), int(grid[1])) if grid is not None else None


def _capture(layer: nn.Module, store: dict[str, torch.Tensor],
             grid: tuple[int, int] | None = None) -> torch.utils.hooks.RemovableHandle:
    def as_map(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 3 and grid is not None and t.shape[1] >= grid[0] * grid[1]:
            # (B, prefix + h*w, C) tokens of a ViT -> (B, C, h, w) map of its patch tokens
            return t[:, t.shape[1] - grid[0] * grid[1]:].transpose(1, 2).reshape(t.shape[0], -1, *grid)
        return t

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor) or as_map(output).dim() != 4:
            raise ValueError(f"target layer {type(_module).__name__} must output a (B, C, h, w) map")
        store["act"] = as_map(output)
        if output.requires_grad:
            output.register_hook(lambda g: store.__setitem__("grad", as_map(g)))

    return layer.register_forward_hook(hook)


def grad_cam(model: nn.Module, images: torch.Tensor, modality: torch.Tensor, score_fn: ScoreFn,
             target_layer: nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM maps (B, H, W) in [0, 1] of ``score_fn`` for (B, 3, H, W) ``images`` (model in eval mode, fp32)."""
    layer = target_layer if target_layer is not None else default_target_layer(model)
    store: dict[str, torch.Tensor] = {}
    handle = _capture(layer, store, _token_grid(model))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = images.detach().float().requires_grad_(True)  # so the map has a graph even if weights are frozen
            scores = score_fn(model(x, modality))  # (B,)
            model.zero_grad(set_to_none=True)
            scores.sum().backward()
    finally:
        handle.remove()
        model.train(was_training)
    act, grad = store["act"].detach().float(), store["grad"].float()  # (B, C, h, w) each
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (B, H, W)
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)  # (B,)
    return cam / peak.view(-1, 1, 1)


@torch.no_grad()
def channel_activations(model: nn.Module, images: torch.Tensor, modality: torch.Tensor, *, top: int = 4,
                        target_layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``top`` most active channels of the target layer per image.

    Returns:
        maps (B, top, H, W) upsampled to the input and scaled to [0, 1] per map, and the channel
        indices (B, top), ordered by mean activation, highest first.
    """
    layer = target_layer if target_layer is not None else default_target_layer(model)
    store: dict[str, torch.Tensor] = {}
    handle = _capture(layer, store, _token_grid(model))
    was_training = model.training
    model.eval()
    try:
        model(images.float(), modality)
    finally:
        handle.remove()
        model.train(was_training)
    act = store["act"].float()  # (B, C, h, w)
    top = min(top, act.shape[1])
    idx = act.mean(dim=(2, 3)).topk(top, dim=1).indices  # (B, top)
    maps = act.gather(1, idx[:, :, None, None].expand(-1, -1, *act.shape[2:]))  # (B, top, h, w)
    maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
    lo = maps.flatten(2).min(dim=2).values[..., None, None]
    hi = maps.flatten(2).max(dim=2).values[..., None, None]
    return (maps - lo) / (hi - lo).clamp_min(1e-12), idx
