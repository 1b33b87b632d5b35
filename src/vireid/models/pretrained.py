"""Offline loading of torchvision ResNet weights. vireid never downloads anything.

``pretrained`` is ``None`` (random init), ``"imagenet"`` (torchvision's ``IMAGENET1K_V1``
weights, read only from the local torch hub cache ``torch.hub.get_dir()/checkpoints/<file>``),
``"imagenet:<ENUM>"`` for another torchvision weight enum member (e.g. ``imagenet:IMAGENET1K_V2``),
or the path of a local file holding the state dict of a torchvision ResNet.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from vireid.errors import ConfigError

logger = logging.getLogger(__name__)

IMAGENET = "imagenet"


def imagenet_checkpoint_path(arch: str, enum_name: str = "IMAGENET1K_V1") -> Path:
    """Where torchvision's ``<arch>`` ImageNet weights must lie in the local torch hub cache."""
    weights_enum = torchvision.models.get_model_weights(arch)
    try:
        weights = weights_enum[enum_name]
    except KeyError:
        valid = ", ".join(f"{IMAGENET}:{w.name}" for w in weights_enum)
        raise ConfigError(f"pretrained={IMAGENET}:{enum_name}: {arch} has no such weights; valid: {valid}") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def resolve_pretrained(arch: str, pretrained: str | os.PathLike[str]) -> Path:
    """Turn a ``pretrained`` value into an existing local file, or raise ConfigError saying where to put it."""
    spec = str(pretrained)
    if spec == IMAGENET or spec.startswith(IMAGENET + ":"):
        enum_name = spec.partition(":")[2] or "IMAGENET1K_V1"
        path = imagenet_checkpoint_path(arch, enum_name)
        if not path.is_file():
            raise ConfigError(
                f"pretrained={spec!r}: ImageNet weights for {arch} not found at {path}. vireid never downloads "
                f"weights: copy the file {path.name} (torchvision {arch} {enum_name}) into {path.parent} "
                f"(the torch hub cache; set TORCH_HOME to move it), or pass pretrained=<path to a state dict file>"
            )
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained={spec!r}: no such file (expected a torchvision {arch} state dict)")
    return path


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)``; raise ConfigError if it is not one."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad config value
        raise ConfigError(f"pretrained={str(path)!r}: cannot read a state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"pretrained={str(path)!r}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return dict(obj)


def load_resnet_weights(model: nn.Module, arch: str, pretrained: str | os.PathLike[str]) -> None:
    """Load torchvision ResNet weights into ``model`` (a torchvision ResNet) from a local file.

    Missing and unexpected keys are logged as warnings; a file that matches no key, or whose
    shapes disagree with ``arch``, raises ConfigError.
    """
    path = resolve_pretrained(arch, pretrained)
    state = load_state_dict_file(path)
    own = model.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise ConfigError(
            f"pretrained={str(pretrained)!r}: none of the {len(state)} keys of {path} is a {arch} key "
            f"(first keys: {list(state)[:3]}; expected e.g. {list(own)[:3]})"
        )
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in matched if state[k].shape != own[k].shape]
    if bad:
        raise ConfigError(f"pretrained={str(pretrained)!r}: {path} does not fit {arch}; shape mismatches: {bad[:3]}")
    result = model.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors of %s weights from %s", len(matched), arch, path)
    if result.missing_keys:
        logger.warning("pretrained %s: %d missing keys (left at random init): %s",
                       path, len(result.missing_keys), result.missing_keys[:10])
    if result.unexpected_keys:
        logger.warning("pretrained %s: %d unexpected keys (ignored): %s",
                       path, len(result.unexpected_keys), result.unexpected_keys[:10])
