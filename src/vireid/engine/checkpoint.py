"""One checkpoint format, versioned, written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (nothing that needs
unpickling of arbitrary classes), so ``torch.load(..., weights_only=True)`` reads it safely.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid.errors import VireidError
from vireid.utils.io import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "vireid-checkpoint"
VERSION = 1


class CheckpointError(VireidError, ValueError):
    """A checkpoint file is missing, unreadable, or of another format/version."""


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "python_version": py_state[0],
        "python": list(py_state[1]),
        "python_gauss": py_state[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"]), state["python_gauss"]))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, **payload: Any) -> None:
    """Write ``payload`` (model/optimizer state dicts, epoch, config...) atomically to ``path``."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


# what utils.io.atomic_path leaves behind when its process is killed mid-write (kill -9, power loss):
# ".{target name}.{8 random characters of mkstemp}.tmp{target suffix}"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^./]+)?$")


def remove_stale_temp_files(folder: str | Path) -> list[str]:
    """Delete the temporary files of interrupted atomic writes in ``folder``; returns their names.

    Only safe for the folder's one writer (the trainer calls it holding the run lock): a temporary
    file of a live writer looks the same.
    """
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed.append(entry.name)
    if removed:
        logger.warning("removed %d temporary file(s) of interrupted writes in %s: %s", len(removed), folder,
                       ", ".join(sorted(removed)[:5]))
    return sorted(removed)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, foreign pickle...
        raise CheckpointError(f"checkpoint {path} could not be read safely: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} file")
    if data.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {data.get('version')}, this vireid reads {VERSION}")
    return data


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Load weights, reporting missing and unexpected keys (an error when ``strict``)."""
    result = unwrap(model).load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        message = f"missing keys: {missing[:8]}{'...' if len(missing) > 8 else ''}; " \
                  f"unexpected keys: {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        if strict:
            raise CheckpointError(f"checkpoint does not match the model ({message})")
        logger.warning("loaded with %s", message)
