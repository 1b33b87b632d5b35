"""MAUM's losses (seeds/001 §5; METHODS.md §7 "Losses" and "Settings").

* ``maum_id``: ``L_common + L_RGB + L_IR``. ``L_RGB = -(1/N^R) sum_i log softmax(W^R x_i^R)_{y_i}``
  over the RGB rows with the RGB-only classifier (the seed's first equation), ``L_IR`` the same on the
  IR rows with the IR-only classifier, ``L_common`` the cross-entropy of the common classifier on
  every row.
* ``maum_metric``: the unidirectional metrics ``L_R->I + L_I->R``. For an RGB feature ``x^R`` with
  identity y, the positives ``u^I_1..N`` are the IR-memory proxies of y (one per snapshot) and the
  negatives ``v^I_1..M`` every IR-memory proxy of another identity:

      L_R->I(x^R) = log[1 + sum_{j<=M} sum_{i<=N} exp(alpha (v_j . x^R - u_i . x^R + delta))]

  with ``x``, ``u``, ``v`` L2-normalised, averaged over the batch's RGB features; ``L_I->R`` is the
  same for IR features against the RGB memory. Only ``x`` gets gradients (the memories hold detached
  snapshots). The double sum factorises, ``sum_j sum_i exp(a(v_j - u_i + d)) =
  exp(a d) (sum_j exp(a v_j)) (sum_i exp(-a u_i))``, so the loss is computed as
  ``softplus(a d + logsumexp_j(a v_j) + logsumexp_i(-a u_i))`` (stable for alpha = 16).

Reading of the seed's open points (METHODS.md §7 "Ambiguities"): the proxies are pushed *every
iteration* once the warm-up is over ("after each iteration"), and the push happens in the loss's
forward *before* the loss is computed, so the current (detached) proxies are always among the
references; ``alpha = 16``, ``delta = 0.1``, ``S_RGB = S_IR = 10`` snapshots [UNSPEC]. During the
warm-up (CE only: the first ``warmup_epochs`` epochs, told by the ``maum`` trainer, and the first
``warmup_steps`` calls) nothing is pushed and the metric is 0; after it the memories fill one
snapshot per step and the metric uses the snapshots held so far.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.errors import ConfigError
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.methods.maum.memory import ProxyQueue
from vireid.types import Batch, Modality, ModelOutput

__all__ = ["MAUMIdentity", "MAUMUnidirectional", "maum_identity", "unidirectional_metric"]


def _extra(output: ModelOutput, key: str, owner: str) -> torch.Tensor:
    if key not in output.extras:
        raise ValueError(f"{owner}: the model output has no extras[{key!r}]; use the 'maum' model with "
                         f"num_classes > 0 (got extras {sorted(output.extras)})")
    return output.extras[key]


def maum_identity(
    logits: torch.Tensor, logits_rgb: torch.Tensor, logits_ir: torch.Tensor, pids: torch.Tensor,
    modality: torch.Tensor, epsilon: float = 0.0, specific_weight: float = 1.0,
) -> torch.Tensor:
    """``L_common + specific_weight * (L_RGB + L_IR)`` (seeds/001 §5), each term a mean over its rows.

    Shapes: ``logits``, ``logits_rgb``, ``logits_ir`` (B, N); ``pids``, ``modality`` (B,). A modality
    absent from the batch contributes 0.
    """
    loss = cross_entropy_label_smooth(logits, pids, epsilon)
    for mod, lg in ((Modality.VISIBLE, logits_rgb), (Modality.INFRARED, logits_ir)):
        rows = modality == mod  # (B,)
        if bool(rows.any()):
            loss = loss + specific_weight * cross_entropy_label_smooth(lg[rows], pids[rows], epsilon)
    return loss


def unidirectional_metric(
    x: torch.Tensor, labels: torch.Tensor, memory: torch.Tensor, alpha: float = 16.0, delta: float = 0.1
) -> torch.Tensor:
    """Per-feature ``L_R->I`` (seeds/001 §5) of features ``x`` (n, D) with ``labels`` (n,) against the
    other modality's memory (S, C, D) -> (n,) float32. ``x`` and the proxies are L2-normalised here.

    Positives: the S proxies of the feature's identity; negatives: the S * (C - 1) proxies of the others.
    """
    if memory.dim() != 3 or memory.shape[0] == 0:
        raise ValueError(f"unidirectional_metric: expected a non-empty memory (S, C, D), got {tuple(memory.shape)}")
    s, c, d = memory.shape
    if c < 2:
        raise ValueError(f"unidirectional_metric: needs at least 2 identities in the memory, got {c}")
    if x.dim() != 2 or x.shape[1] != d or labels.shape != x.shape[:1]:
        raise ValueError(f"unidirectional_metric: expected x (n, {d}) and labels (n,), got {tuple(x.shape)} "
                         f"and {tuple(labels.shape)}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        xn = F.normalize(x.float(), dim=1)  # (n, D)
        mem = F.normalize(memory.float(), dim=2)  # (S, C, D)
        sims = torch.einsum("nd,scd->nsc", xn, mem)  # (n, S, C)
        is_pos = F.one_hot(labels.long(), c).bool().unsqueeze(1).expand(-1, s, -1)  # (n, S, C)
        neg_inf = torch.finfo(sims.dtype).min
        lse_neg = (alpha * sims).masked_fill(is_pos, neg_inf).flatten(1).logsumexp(1)  # (n,)
        lse_pos = (-alpha * sims).masked_fill(~is_pos, neg_inf).flatten(1).logsumexp(1)  # (n,)
        return F.softplus(alpha * delta + lse_neg + lse_pos)  # (n,)


class MAUMIdentity(nn.Module):
    """``maum_id``: common + RGB-only + IR-only identity losses (seeds/001 §5, first equation).

    Args:
        epsilon: label smoothing (0 = the seed's plain cross-entropy).
        specific_weight: weight of ``L_RGB + L_IR`` beside ``L_common`` (1: METHODS.md's total).
    """

    def __init__(self, epsilon: float = 0.0, specific_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"maum_id: epsilon must be in [0, 1), got {epsilon}")
        if specific_weight < 0:
            raise ValueError(f"maum_id: specific_weight must be >= 0, got {specific_weight}")
        self.epsilon, self.specific_weight = float(epsilon), float(specific_weight)

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("maum_id: the model output has no logits (built with num_classes=0?)")
        return maum_identity(output.logits, _extra(output, "logits_rgb", "maum_id"),
                             _extra(output, "logits_ir", "maum_id"), batch.pids, batch.modality,
                             self.epsilon, self.specific_weight)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, specific_weight={self.specific_weight}"


class MAUMUnidirectional(nn.Module):
    """``maum_metric``: ``L_R->I + L_I->R`` against FIFO memories of MS-Proxies (seeds/001 §5).

    Each call after the warm-up pushes the model's current RGB-only and IR-only classifier weights
    (``extras["proxies_rgb"|"proxies_ir"]``, detached) into ``memory_rgb`` / ``memory_ir``, then
    compares the batch's RGB features with ``memory_ir`` and its IR features with ``memory_rgb``.
    The memories and the call counter are persistent buffers, so a checkpoint of this module's
    ``state_dict`` restores them exactly.

    Args:
        alpha: scale factor (16 [UNSPEC]). delta: margin (0.1 [UNSPEC]).
        memory_rgb, memory_ir: ``S_RGB``, ``S_IR`` snapshots kept (10 [UNSPEC]); set them apart to
            rebalance the modalities (the paper's modality-imbalance setting).
        warmup_epochs: epochs with the metric off and nothing pushed (the CE-only warm-up; METHODS.md:
            10). Needs ``trainer: maum`` (:class:`~vireid.methods.maum.trainer.MAUMTrainer`), which
            tells the loss the epoch at the start of every epoch, a resumed one included.
        warmup_steps: calls (optimiser steps) with the metric off, counted by the loss itself (any
            trainer); both warm-ups apply when both are set.
        feature: the feature compared with the proxies: ``"bn_features"`` (the classifiers' input,
            default) or ``"features"`` (the pooled feature before the BNNeck).
    """

    num_calls: torch.Tensor

    def __init__(self, alpha: float = 16.0, delta: float = 0.1, memory_rgb: int = 10, memory_ir: int = 10,
                 warmup_epochs: int = 0, warmup_steps: int = 0, feature: str = "bn_features") -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"maum_metric: alpha must be > 0, got {alpha}")
        if warmup_steps < 0 or warmup_epochs < 0:
            raise ValueError(f"maum_metric: warmup_epochs and warmup_steps must be >= 0, got {warmup_epochs} "
                             f"and {warmup_steps}")
        if feature not in ("bn_features", "features"):
            raise ValueError(f"maum_metric: feature must be 'bn_features' or 'features', got {feature!r}")
        self.alpha, self.delta = float(alpha), float(delta)
        self.warmup_epochs, self.warmup_steps, self.feature = int(warmup_epochs), int(warmup_steps), feature
        self.epoch: int | None = None  # 0-based, set by MAUMTrainer.on_epoch_start
        self.memory_rgb = ProxyQueue(memory_rgb)
        self.memory_ir = ProxyQueue(memory_ir)
        self.register_buffer("num_calls", torch.zeros((), dtype=torch.long))

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss the (0-based) epoch about to run (called by the ``maum`` trainer)."""
        self.epoch = int(epoch)

    @property
    def warming_up(self) -> bool:
        """True within the warm-up: an epoch before ``warmup_epochs`` or a call up to ``warmup_steps``."""
        if self.warmup_epochs:
            if self.epoch is None:
                raise ConfigError("losses: maum_metric's warmup_epochs needs the epoch; set the recipe's "
                                  "`trainer: maum` (or use warmup_steps)")
            if self.epoch < self.warmup_epochs:
                return True
        return int(self.num_calls) <= self.warmup_steps

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        x = output.bn_features if self.feature == "bn_features" else output.features  # (B, D)
        self.num_calls += 1
        if self.warming_up:
            return x.float().sum() * 0.0  # CE-only warm-up: a zero that keeps the graph
        self.memory_rgb.push(_extra(output, "proxies_rgb", "maum_metric"))
        self.memory_ir.push(_extra(output, "proxies_ir", "maum_metric"))
        total = x.float().sum() * 0.0
        for mod, memory in ((Modality.VISIBLE, self.memory_ir), (Modality.INFRARED, self.memory_rgb)):
            rows = batch.modality == mod  # (B,)
            if bool(rows.any()):
                per = unidirectional_metric(x[rows], batch.pids[rows], memory.snapshots(), self.alpha, self.delta)
                total = total + per.mean()
        return total

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, delta={self.delta}, warmup_epochs={self.warmup_epochs}, "
                f"warmup_steps={self.warmup_steps}, "
                f"feature={self.feature!r}")
