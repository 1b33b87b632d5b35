"""MSCLNet network: two-stream CNN, per-sample instance normalisation, the Mogrifier-LSTM synergy
module and the part features of modality complement.

Zhang et al., "Modality Synergy Complement Learning with Cascaded Aggregation for Visible-Infrared
Person Re-Identification", ECCV 2022 (seeds/001 §7.2-7.3; METHODS.md §10).

* Per-sample instance normalisation (§3.2): ``f^ = (f - E[f]) / sqrt(Var[f] + eps) * gamma + beta``
  with the statistics of each image and channel over H x W, one (gamma, beta) per modality.
* Synergy (§3.2, METHODS.md "Mogrifier feeding"): the normalised maps are cut into n = 6 horizontal
  stripes (stripe means, (C,) each); for a pair (visible i, infrared i) of the same identity, per
  stripe x = the visible vector, h_0 = the infrared vector, c_0 = 0, five Mogrifier rounds
  ``x <- 2 sigma(Q h) * x`` / ``h <- 2 sigma(R x) * h`` (Melis et al., ICLR 2020: Q^1, R^2, Q^3, R^4,
  Q^5), then one LSTM step: its hidden state is the synergy stripe ``b^s_j``; ``f^s`` is the mean
  over the stripes. The label enters as the pairing: the cross-modal sampler puts the same identity
  at position i of the visible and the infrared half (:mod:`vireid.data.sampler`); the losses check it.
* Modality complement (§3.3): the visible stripes ``b^v_j`` and synergy stripes ``b^s_j`` (n = 6, as
  MPANet).

A reading forced by the equations (recorded here and in the README): the global average of an
instance-normalised map is beta for every image (the per-channel mean over H x W is removed), so
no global vector is read from ``f^``: ``f^`` feeds the synergy module through its stripes, and the
global per-image feature (modality classifiers of L_t, L_div, L_global's infrared centres, the
cascaded aggregation and retrieval) is the GeM-pooled backbone map with a BNNeck, as AGW's.
The synergy feature exists only for pairs, so the test embedding is the per-image feature
(the paper does not say which feature is tested [UNSPEC]).
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.layers import BNNeck, GeM, weights_init_classifier
from vireid.types import Modality, ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["MSCLNet", "MogrifierLSTMCell", "modality_pairs", "stripe_features"]


class MogrifierLSTMCell(nn.Module):
    """Mogrifier LSTM cell (Melis et al., ICLR 2020): ``rounds`` alternating gates, then an LSTM step.

    Round i (1-based) odd: ``x <- 2 sigma(Q^i h) * x``; even: ``h <- 2 sigma(R^i x) * h``.
    ``forward(x (S, D), h (S, D), c (S, D) or None) -> (h', c')``.
    """

    def __init__(self, dim: int, rounds: int = 5) -> None:
        super().__init__()
        if rounds < 0:
            raise ValueError(f"MogrifierLSTMCell: rounds must be >= 0, got {rounds}")
        self.rounds = rounds
        self.q = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range((rounds + 1) // 2))
        self.r = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(rounds // 2))
        self.cell = nn.LSTMCell(dim, dim)

    def mogrify(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gated ``(x, h)`` after the rounds, each (S, D)."""
        for i in range(1, self.rounds + 1):
            if i % 2:
                x = 2.0 * torch.sigmoid(self.q[i // 2](h)) * x
            else:
                h = 2.0 * torch.sigmoid(self.r[i // 2 - 1](x)) * h
        return x, h

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x, h = self.mogrify(x, h)
        c = torch.zeros_like(h) if c is None else c
        return self.cell(x, (h, c))


def modality_pairs(modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(visible, infrared)`` pairing the i-th visible row with the i-th infrared row
    (batch order), ``min(#visible, #infrared)`` pairs: the cross-modal sampler's layout."""
    vis = torch.nonzero(modality == int(Modality.VISIBLE)).flatten()  # (Bv,)
    ir = torch.nonzero(modality == int(Modality.INFRARED)).flatten()  # (Br,)
    s = min(vis.numel(), ir.numel())
    return vis[:s], ir[:s]


def stripe_features(fmap: torch.Tensor, parts: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, parts, C): the mean of each of ``parts`` horizontal stripes."""
    return F.adaptive_avg_pool2d(fmap, (parts, 1)).flatten(2).transpose(1, 2)  # (B, n, C)


class MSCLNet(nn.Module):
    """Two-stream ResNet -> {GeM -> BNNeck -> modality classifiers; IN -> stripes -> synergy}.

    ``forward(images (B, 3, H, W), modality (B,))`` returns a :class:`ModelOutput` in train and eval
    mode alike: ``features`` (B, C) GeM feature, ``bn_features`` (B, C) after the BNNeck [retrieval],
    ``logits`` (B, N): row i from the classifier of image i's modality (``p^v``, ``p^r`` of L_t).
    In training mode ``extras`` also holds, for the S = min(#visible, #infrared) pairs:

    * ``"pair_visible"``, ``"pair_infrared"``: (S,) batch rows of each pair;
    * ``"synergy"`` (S, C) ``f^s``, ``"synergy_bn"`` (S, C) after its BNNeck, ``"synergy_logits"``
      (S, N) of the shared identity classifier [L_id(f^s)];
    * ``"synergy_parts"`` (S, n, C) ``b^s_j`` and ``"visible_parts"`` (S, n, C) ``b^v_j`` [L_local].

    Args:
        num_classes: training identities (0 = no classifiers).
        arch, num_specific_stages, last_stride, pretrained, gem_p: the CNN (as AGW's).
        parts: n stripes (6). mogrifier_rounds: 5. in_eps: the instance-norm epsilon.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        gem_p: float = 3.0,
        parts: int = 6,
        mogrifier_rounds: int = 5,
        in_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"MSCLNet: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if parts < 1:
            raise ValueError(f"MSCLNet: parts must be >= 1, got {parts}")
        self.parts = parts
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained)
        c = self.backbone.out_channels
        self.pool = GeM(gem_p)
        self.bnneck = BNNeck(c)
        self.inorm = nn.ModuleList(nn.InstanceNorm2d(c, eps=in_eps, affine=True) for _ in Modality)
        self.synergy = MogrifierLSTMCell(c, mogrifier_rounds)
        self.synergy_bnneck = BNNeck(c)
        self.num_classes = num_classes
        self.classifiers = nn.ModuleList()  # [p^v, p^r, the synergy feature's identity classifier]
        if num_classes > 0:
            for _ in range(3):
                lin = nn.Linear(c, num_classes, bias=False)
                lin.apply(weights_init_classifier)
                self.classifiers.append(lin)
        self.out_dim = c

    def instance_norm(self, fmap: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Per-sample instance normalisation with the (gamma, beta) of each row's modality."""
        out = torch.empty_like(fmap)  # (B, C, H, W)
        for m in Modality:
            rows = modality == int(m)
            if bool(rows.any()):
                out[rows] = self.inorm[int(m)](fmap[rows]).to(out.dtype)
        return out

    def _logits(self, bn: torch.Tensor, modality: torch.Tensor) -> torch.Tensor | None:
        if not self.classifiers:
            return None
        vis = self.classifiers[0](bn)  # (B, N)
        ir = self.classifiers[1](bn)  # (B, N)
        return torch.where((modality == int(Modality.VISIBLE))[:, None], vis, ir)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality labels -> ModelOutput (see the class docs)."""
        fmap = self.backbone(images, modality)  # (B, C, h, w)
        features = self.pool(fmap)  # (B, C)
        bn = self.bnneck(features)  # (B, C)
        out = ModelOutput(features=features, bn_features=bn, logits=self._logits(bn, modality))
        if not self.training:
            return out
        vis, ir = modality_pairs(modality)  # (S,) each
        stripes = stripe_features(self.instance_norm(fmap, modality), self.parts).float()  # (B, n, C)
        bv, br = stripes[vis], stripes[ir]  # (S, n, C) each
        s, n, c = bv.shape
        hs, _ = self.synergy(bv.reshape(s * n, c), br.reshape(s * n, c))  # (S*n, C): one step per stripe
        parts = hs.reshape(s, n, c)  # (S, n, C) b^s_j
        synergy = parts.mean(dim=1)  # (S, C) f^s
        synergy_bn = self.synergy_bnneck(synergy) if s > 1 else synergy  # (S, C); BatchNorm needs 2 rows
        out.extras.update(pair_visible=vis, pair_infrared=ir, synergy=synergy, synergy_bn=synergy_bn,
                          synergy_parts=parts, visible_parts=bv)
        if self.classifiers:
            out.extras["synergy_logits"] = self.classifiers[2](synergy_bn)  # (S, N)
        return out
