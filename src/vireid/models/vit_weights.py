"""Pretrained ViT weights for :class:`vireid.models.vit.ReIDViT` from a local file; nothing is downloaded.

Accepted files (``model.params.pretrained: /path/to/file``):

* timm's ``VisionTransformer`` state dicts (``vit_base_patch16_224`` ...; ``.pth``/``.bin`` read with
  ``torch.load(weights_only=True)``, or ``.safetensors``), optionally wrapped in ``{"model": ...}`` or
  ``{"state_dict": ...}`` (DeiT, training checkpoints) and with a ``module.`` prefix (DDP);
* the original ViT release as TransReID loads it (``jx_vit_base_p16_224-80ecf9dd.pth``: the JAX
  weights converted to PyTorch, timm's names, some with the patch projection flattened to (D, C*P*P),
  which is reshaped back to (D, C, P, P)).

The classifier (``head``, ``pre_logits``) and DeiT's distillation token are dropped. The position
embeddings (1, 1 + n*n, D) of the checkpoint's square grid are resized to the re-ID grid with a
bicubic ``F.interpolate`` (``align_corners=False``, no antialiasing; [cls]'s row is kept), the
TransReID ``resize_pos_embed`` with bicubic instead of bilinear sampling (the issue asks for bicubic).
Every other tensor must have the model's shape: a mismatch (a ViT-S file in a ViT-B model) is a
ConfigError naming the keys and both shapes. Keys of the model the file lacks (the modality
embeddings, by design) are reported in the log.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vireid.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["load_vit_weights", "read_vit_checkpoint", "resize_pos_embed"]

# checkpoint keys that belong to ImageNet classification, not to the backbone
DROPPED_PREFIXES = ("head.", "head_dist.", "pre_logits.", "fc_norm.", "dist_token")
# model keys a checkpoint is not expected to hold (new in the re-ID backbone)
NEW_KEYS = ("modality_embed",)


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int], old_grid: tuple[int, int] | None = None,
                     num_prefix_tokens: int = 1) -> torch.Tensor:
    """(1, prefix + h*w, D) position embeddings resized bicubically to (1, prefix + H'*W', D).

    ``old_grid`` defaults to the square grid of the checkpoint. The prefix rows ([cls]) are kept as
    they are; the grid is resampled with ``F.interpolate(mode="bicubic", align_corners=False,
    antialias=False)`` in float32 (timm's ``resample_abs_pos_embed``).
    """
    n = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ConfigError(f"ViT weights: {n} position embeddings are not a square grid; cannot tell its shape")
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != n:
        raise ConfigError(f"ViT weights: grid {old_grid} does not hold {n} position embeddings")
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(pos_embed, new_size=list(new_grid), old_size=list(old_grid),
                                  num_prefix_tokens=num_prefix_tokens, interpolation="bicubic", antialias=False)


def read_vit_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The name -> tensor table of a local checkpoint (see the module docs); ConfigError when unreadable."""
    p = Path(path).expanduser()
    where = f"model.params.pretrained={str(path)!r}"
    if not p.is_file():
        raise ConfigError(f"{where}: no such file (expected a timm or jx_vit ViT checkpoint; vireid never downloads)")
    if p.suffix == ".npz":
        raise ConfigError(f"{where}: JAX .npz checkpoints are not read; convert it with timm "
                          f"(timm.create_model(..., pretrained_cfg_overlay=dict(file=...))) and save its state_dict")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(p), device="cpu")
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad config value
        raise ConfigError(f"{where}: cannot read a checkpoint ({type(exc).__name__}: {exc})") from None
    for wrapper in ("model", "state_dict", "model_ema"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{where}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _convert(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm / jx_vit names -> ReIDViT tensors: drop the classifier, fix the patch projection and positions."""
    prefix_tokens = 2 if "dist_token" in state else 1
    out = {k: v for k, v in state.items() if not k.startswith(DROPPED_PREFIXES)}
    proj = out.get("patch_embed.proj.weight")
    own_proj = model.patch_embed.proj.weight
    if proj is not None and proj.dim() == 2 and proj.shape[0] == own_proj.shape[0]:
        side = math.isqrt(proj.shape[1] // own_proj.shape[1])
        out["patch_embed.proj.weight"] = proj.reshape(proj.shape[0], own_proj.shape[1], side, side)
    pos = out.get("pos_embed")
    if pos is not None and pos.dim() == 3 and pos.shape[-1] == model.pos_embed.shape[-1]:
        if prefix_tokens == 2:  # DeiT-distilled: drop the distillation token's row
            pos = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        if pos.shape[1] != model.pos_embed.shape[1]:  # an equal count is taken as the same grid
            resized = resize_pos_embed(pos, model.grid_size)
            logger.info("ViT weights: position embeddings resized from %d to %s tokens (bicubic)",
                        pos.shape[1] - 1, model.grid_size)
            pos = resized
        out["pos_embed"] = pos
    return out


def load_vit_weights(model: nn.Module, pretrained: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Load a local timm / jx_vit checkpoint into a :class:`~vireid.models.vit.ReIDViT`.

    Returns ``(missing, unexpected)`` keys (both also logged: missing ones stay at their random
    initialisation). ConfigError for a missing or unreadable file, a file with none of the model's
    keys, or tensors whose shapes disagree with the model (each named with both shapes).
    """
    where = f"model.params.pretrained={str(pretrained)!r}"
    state = _convert(read_vit_checkpoint(pretrained), model)
    own = model.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise ConfigError(f"{where}: none of the {len(state)} keys is a ViT key (first keys: {list(state)[:3]}; "
                          f"expected e.g. {list(own)[:3]})")
    bad = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in matched
           if state[k].shape != own[k].shape]
    if bad:
        raise ConfigError(f"{where}: does not fit this ViT (embed_dim {model.embed_dim}, depth {len(model.blocks)}, "
                          f"patch {model.patch_embed.patch_size}); {len(bad)} shape mismatches: {'; '.join(bad[:3])}")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(NEW_KEYS)]
    new = [k for k in result.missing_keys if k.startswith(NEW_KEYS)]
    logger.info("ViT weights: loaded %d tensors from %s%s", len(matched), pretrained,
                f" (new, randomly initialised: {new})" if new else "")
    if missing:
        logger.warning("ViT weights %s: %d missing keys (left at random init): %s", pretrained, len(missing),
                       missing[:10])
    if result.unexpected_keys:
        logger.warning("ViT weights %s: %d unexpected keys (ignored): %s", pretrained,
                       len(result.unexpected_keys), result.unexpected_keys[:10])
    return list(result.missing_keys), list(result.unexpected_keys)
