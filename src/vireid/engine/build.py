"""Adapters from the configuration to plain keyword arguments: the one place config meets code.

Modules never see a config object; these functions read the config and call the typed
constructors of models, losses, optimisers, datasets and loaders.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from vireid.config import DataConfig, LossConfig, ModelConfig, OptimConfig
from vireid.types import Modality, Sample
from vireid.errors import ConfigError

logger = logging.getLogger(__name__)


def check_components(cfg) -> None:
    """Every registry name and parameter table of a config (the checks :func:`vireid.config.load_config`
    runs at load), for configs built in code."""
    errors = cfg.component_errors()
    if errors:
        raise ConfigError("\n".join(errors))


# ----------------------------------------------------------------------------- data


def build_dataset_from_config(cfg: DataConfig):
    from vireid.data.datasets import build_dataset

    return build_dataset(cfg.dataset, cfg.root, **cfg.options)


def build_eval_plan(dataset, settings: dict[str, Any], where: str = "eval.protocol"):
    """``dataset.eval_plan(**settings)``, with a ConfigError naming a key the dataset's protocol does not take.

    (A SYSU-MM01 recipe's ``{mode, shots, sampling}`` on RegDB, whose protocol takes
    ``{direction, trials}``, used to end in a raw TypeError at test time.)
    """
    check_eval_protocol(dataset, settings, where)
    return dataset.eval_plan(**settings)


def check_eval_protocol(dataset, settings: dict[str, Any], where: str = "eval.protocol") -> None:
    """ConfigError when ``settings`` do not fit ``dataset``'s protocol (names and types; the check the
    config runs at load, repeated for settings that come from elsewhere, e.g. ``--protocol``)."""
    from vireid.config import protocol_errors

    errors = protocol_errors(dataset.eval_plan, settings, where, f"{dataset.name} protocol")
    if errors:
        raise ConfigError("\n".join(errors))


def _cross_modal(samples: list[Sample]) -> bool:
    mods = {int(s.modality) for s in samples}
    return {int(Modality.VISIBLE), int(Modality.INFRARED)} <= mods


def split_train_val(samples: list[Sample], val_fraction: float, seed: int,
                    by: str = "identities") -> tuple[list[Sample], list[Sample]]:
    """Hold out a seeded fraction of the training data for model selection (``data.val_split``).

    ``by="identities"``: a fraction of the identities. Only identities the validation protocol can
    match are eligible: with visible and infrared images (infrared queries vs visible gallery), or,
    for a single-modality dataset, with images from 2 or more cameras (every image against the
    others, same identity and camera removed). ``by="images"``: every identity stays in training;
    of each identity with 2 or more images in each of 2 groups (its two modalities; for a
    single-modality dataset, its cameras), ``val_fraction`` of each group's images (at least one,
    never all) are held out. The test set is never touched.
    """
    if val_fraction <= 0:
        return list(samples), []
    cross = _cross_modal(samples)
    if by == "images":
        return _split_by_images(samples, val_fraction, seed, cross)
    if by != "identities":
        raise ConfigError(f"data.val_split must be 'identities' or 'images', got {by!r}")
    groups: dict[int, set[int]] = {}
    for s in samples:
        groups.setdefault(s.pid, set()).add(int(s.modality) if cross else int(s.camid))
    eligible = sorted(pid for pid, g in groups.items() if len(g) >= 2)
    n_val = max(2, int(round(val_fraction * len(groups))))
    if len(eligible) - n_val < 2:
        what = "have both modalities" if cross else "have images from 2 or more cameras"
        raise ConfigError(
            f"data.val_fraction={val_fraction} leaves fewer than 2 training identities "
            f"({len(eligible)} identities {what})"
        )
    rng = random.Random(seed)
    val_ids = set(rng.sample(eligible, n_val))
    train = [s for s in samples if s.pid not in val_ids]
    val = [s for s in samples if s.pid in val_ids]
    return train, val


def build_augments(cfg: DataConfig) -> list:
    """The registered per-image augmentations ``data.augment`` names, in order."""
    from vireid.data.augment import AUGMENTATIONS

    return [AUGMENTATIONS.build(a.name, **a.params) for a in cfg.augment]


def _split_by_images(samples: list[Sample], val_fraction: float, seed: int,
                     cross: bool = True) -> tuple[list[Sample], list[Sample]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault((s.pid, int(s.modality) if cross else int(s.camid)), []).append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for pid in sorted({p for p, _ in groups}):
        if cross:
            parts = [groups.get((pid, m), []) for m in (int(Modality.VISIBLE), int(Modality.INFRARED))]
        else:
            parts = [groups[k] for k in sorted(groups) if k[0] == pid and len(groups[k]) >= 2]
        if len(parts) < 2 or any(len(p) < 2 for p in parts):
            continue  # too few images to spare one per group: the identity trains on all of them
        for p in parts:
            n = min(len(p) - 1, max(1, int(round(val_fraction * len(p)))))
            held.update(rng.sample(p, n))
    if not held:
        what = "both modalities" if cross else "2 or more cameras"
        raise ConfigError(f"data.val_split=images: no identity has 2 or more images in {what} to hold out "
                          f"from; use data.val_split=identities or data.val_fraction=0 (keep the last epoch)")
    return [s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held]


def label_best(best: dict[str, Any], val_samples: list[Sample], cfg: DataConfig) -> dict[str, Any]:
    """``summary.json``'s ``best`` block, saying what its numbers measure: validation, not the test set."""
    out = dict(best)
    if not val_samples:
        out["selected_by"] = "no validation split (data.val_fraction 0): the last epoch is the model"
        return out
    ids = len({s.pid for s in val_samples})
    what = (f"{ids} training identities held out" if cfg.val_split == "identities"
            else f"{len(val_samples)} held-out images of {ids} training identities (identities also trained on)")
    how = ("infrared queries vs visible gallery" if _cross_modal(val_samples)
           else "every image vs the others, same identity and camera removed")
    out["selected_by"] = (f"validation: {what}; {how}, image-level CMC; "
                          f"chance rank-1 about {100.0 / max(ids, 1):.1f}%. Not test-set numbers: see vireid test")
    out["split"] = "validation"
    return out


def build_train_transforms(cfg: DataConfig) -> dict[Modality, Callable]:
    from vireid.data.transforms import build_train_transforms as build

    return build(cfg.height, cfg.width, augments=build_augments(cfg), pad=cfg.pad, flip=cfg.flip,
                 random_erasing=cfg.random_erasing)


def build_batch_augment_from_config(cfg: DataConfig) -> Callable:
    from vireid.data.batch_augment import build_batch_augment

    return build_batch_augment(cfg.batch_augment, **cfg.batch_augment_params)


# ----------------------------------------------------------------------------- model and losses


def build_model_from_config(cfg: ModelConfig, num_classes: int) -> nn.Module:
    from vireid.models import create_model

    return create_model(cfg.name, num_classes=num_classes, **cfg.params)


@dataclass
class NamedLoss:
    name: str
    weight: float
    fn: nn.Module


def build_losses(cfgs: list[LossConfig]) -> list[NamedLoss]:
    from vireid.losses import build_loss

    out = [NamedLoss(c.name, c.weight, build_loss(c.name, **c.params)) for c in cfgs]
    names = [n.name for n in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"losses: each loss may appear once, got {names}")
    return out


# ----------------------------------------------------------------------------- optimisation


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Two parameter groups: the pretrained backbone at ``lr * backbone_lr_mult``, new layers at ``lr``."""
    backbone, head = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (backbone if name.startswith("backbone.") else head).append(p)
    groups = [
        {"params": backbone, "lr": cfg.lr * cfg.backbone_lr_mult, "name": "backbone"},
        {"params": head, "lr": cfg.lr, "name": "head"},
    ]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["initial_lr"] = g["lr"]
    kernel = {"auto": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True},
              "fused": {"fused": True}}[cfg.implementation]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay, **kernel)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, **kernel)


def scaled_schedule(cfg: OptimConfig) -> tuple[int, list[int]]:
    """``(warmup_epochs, milestones)`` for ``cfg.epochs``: as written, or scaled from ``schedule_for_epochs``.

    E.g. the demo's warm-up 2 and milestones [11, 14] written for 16 epochs become 1 and [6, 7] for 8
    (``round_half_up(x * 8 / 16)``), so a recipe's schedule transfers to another epoch count.
    """
    ref = cfg.schedule_for_epochs
    if ref is None or ref == cfg.epochs:
        return cfg.warmup_epochs, list(cfg.milestones)
    ratio = cfg.epochs / ref

    def scale(x: int) -> int:
        return int(math.floor(x * ratio + 0.5))

    return scale(cfg.warmup_epochs), [scale(m) for m in cfg.milestones]


def lr_factor(epoch: int, cfg: OptimConfig) -> float:
    """AGW schedule: linear warm-up ``(e + 1) / W`` for ``e < W``, then ``gamma`` at each milestone
    (warm-up and milestones from :func:`scaled_schedule`)."""
    warmup, milestones = scaled_schedule(cfg)
    if epoch < warmup:
        return (epoch + 1) / warmup
    return cfg.gamma ** sum(1 for m in milestones if epoch >= m)


def set_epoch_lr(optimizer: torch.optim.Optimizer, epoch: int, cfg: OptimConfig) -> float:
    factor = lr_factor(epoch, cfg)
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
    return factor


def finite_or_raise(value: torch.Tensor | float, what: str) -> None:
    if not math.isfinite(float(value)):
        raise FloatingPointError(f"{what} is {float(value)}; lower optim.lr, set optim.clip_grad_norm, or use fp32")
