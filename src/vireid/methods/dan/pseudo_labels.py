"""Target pseudo labels: DAN's pseudo-label generation (PLG) and the DBSCAN baseline's clusters.

Dual Alignment Network, Fu et al., TCSVT 2022 (seeds/000 slide "Pseudo Label Generation",
Eq. 5-9; METHODS.md §2):

- hard labels, Eq. 5-7: per-modality source class prototypes ``mu^s_{p,k}`` (mean feature of class
  ``k`` in modality ``p``) in a look-up table; a target image of modality ``p`` takes the class of
  its most cosine-similar prototype of the same modality (:func:`class_prototypes`,
  :func:`assign_hard_labels`);
- soft labels, Eq. 8-9: every target image is its own class; its reliable set is its ``m`` most
  cosine-similar target images *of the same modality* in an exemplar memory that replaces the
  N^t-way classifier (METHODS.md [UNSPEC->default], the exemplar-memory reading of ECN, Zhong et
  al., CVPR 2019): :class:`ExemplarMemory`. The loss is :func:`vireid.methods.dan.losses.soft_label_loss`.

The DBSCAN baseline (Ester et al., KDD 1996; the UDA re-ID recipe of Song et al., PR 2020, DAN's
"DBSCAN" row) clusters the target features of both modalities together (:func:`dbscan_labels`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Modality

logger = logging.getLogger(__name__)

NUM_MODALITIES = len(Modality)

# --------------------------------------------------------------------------- hard labels (Eq. 5-7)


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor,
                     num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-modality class means, seeds/000 Eq. 5: ``mu_{p,k} = mean_{i: y_i = k, m_i = p} x_i``.

    Args:
        features: (N, D) source features; labels: (N,) classes in ``[0, num_classes)``;
            modality: (N,) 0 visible / 1 infrared.

    Returns:
        ``(prototypes (2, C, D), valid (2, C) bool)``; a class without images of a modality has
        a zero prototype there and ``valid`` False.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1] or modality.shape != features.shape[:1]:
        raise ValueError(f"class_prototypes: expected features (N, D), labels (N,), modality (N,), got "
                         f"{tuple(features.shape)}, {tuple(labels.shape)}, {tuple(modality.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"class_prototypes: labels must be in [0, {num_classes}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    x = features.float()
    d = x.shape[1]
    sums = torch.zeros(NUM_MODALITIES, num_classes, d, device=x.device)  # (2, C, D)
    counts = torch.zeros(NUM_MODALITIES, num_classes, device=x.device)  # (2, C)
    flat = modality.long() * num_classes + labels.long()  # (N,) row of (modality, class)
    sums.view(-1, d).index_add_(0, flat, x)
    counts.view(-1).index_add_(0, flat, torch.ones_like(flat, dtype=x.dtype))
    valid = counts > 0  # (2, C)
    return sums / counts.clamp(min=1).unsqueeze(2), valid


def assign_hard_labels(features: torch.Tensor, modality: torch.Tensor, prototypes: torch.Tensor,
                       valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """seeds/000 Eq. 6-7: ``y_i = argmax_k cos(x_i, mu_{m_i, k})`` over the valid prototypes of the image's modality.

    Args:
        features: (M, D) target features; modality: (M,); prototypes: (2, C, D); valid: (2, C).

    Returns:
        ``(labels (M,) int64, similarity (M,) float)``: the class and its cosine similarity.
    """
    if prototypes.dim() != 3 or prototypes.shape[0] != NUM_MODALITIES or valid.shape != prototypes.shape[:2]:
        raise ValueError(f"assign_hard_labels: expected prototypes (2, C, D) and valid (2, C), got "
                         f"{tuple(prototypes.shape)} and {tuple(valid.shape)}")
    x = F.normalize(features.float(), dim=1)  # (M, D)
    labels = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)  # (M,)
    best = torch.zeros(x.shape[0], device=x.device)  # (M,)
    for m in Modality:
        rows = torch.nonzero(modality == int(m), as_tuple=True)[0]  # (M_m,)
        if rows.numel() == 0:
            continue
        if not bool(valid[int(m)].any()):
            raise ValueError(f"assign_hard_labels: no source prototype of modality {m.name.lower()}")
        protos = F.normalize(prototypes[int(m)].float(), dim=1)  # (C, D)
        sim = x[rows] @ protos.t()  # (M_m, C)
        sim = sim.masked_fill(~valid[int(m)].unsqueeze(0), float("-inf"))
        value, index = sim.max(dim=1)  # (M_m,)
        labels[rows], best[rows] = index, value
    return labels, best


# --------------------------------------------------------------------------- soft labels (Eq. 8-9)


def reliable_neighbours(query: torch.Tensor, query_index: torch.Tensor, query_modality: torch.Tensor,
                        bank: torch.Tensor, bank_modality: torch.Tensor, m: int) -> torch.Tensor:
    """The reliable sets of seeds/000 Eq. 8: the ``m`` most cosine-similar bank rows of the same modality,
    the image itself excluded.

    Args:
        query: (B, D) features; query_index: (B,) their own rows in the bank; query_modality: (B,).
        bank: (N, D) features of all target images (e.g. the exemplar memory); bank_modality: (N,).
        m: reliable-set size.

    Returns:
        (B, m) int64 bank indices, most similar first.
    """
    if m < 1:
        raise ValueError(f"reliable_neighbours: m must be >= 1, got {m}")
    counts = torch.bincount(bank_modality.long(), minlength=NUM_MODALITIES)
    for mod in torch.unique(query_modality).tolist():
        if int(counts[int(mod)]) < m + 1:
            raise ValueError(f"reliable_neighbours: m={m} but the bank holds only {int(counts[int(mod)])} images "
                             f"of modality {Modality(int(mod)).name.lower()}")
    sim = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).t()  # (B, N)
    other = bank_modality.unsqueeze(0) != query_modality.unsqueeze(1)  # (B, N)
    sim = sim.masked_fill(other, float("-inf"))
    sim = sim.scatter(1, query_index.long().unsqueeze(1), float("-inf"))  # exclude self
    return sim.topk(m, dim=1).indices  # (B, m)


class ExemplarMemory(nn.Module):
    """Unit-norm features of every target image: the N^t-way classifier of Eq. 9 (METHODS.md §2 default).

    ``reset(features)`` fills it (e.g. after each pseudo-label refresh); ``update(index, x)``
    moves the rows of a batch: ``Mem[i] <- normalize(momentum * Mem[i] + (1 - momentum) * x_i)``
    (ECN's update; ``momentum = 1`` freezes the memory between refreshes).
    """

    def __init__(self, modality: torch.Tensor, dim: int, momentum: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"ExemplarMemory: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("features", torch.zeros(len(modality), dim))  # (N, D)
        self.register_buffer("modality", modality.long().clone())  # (N,)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def reset(self, features: torch.Tensor) -> None:
        if features.shape != self.features.shape:
            raise ValueError(f"ExemplarMemory.reset: expected {tuple(self.features.shape)}, "
                             f"got {tuple(features.shape)}")
        self.features.copy_(F.normalize(features.float(), dim=1))

    @torch.no_grad()
    def update(self, index: torch.Tensor, features: torch.Tensor) -> None:
        """Momentum update of rows ``index`` (B,) with ``features`` (B, D)."""
        x = F.normalize(features.detach().float(), dim=1)  # (B, D)
        mixed = self.momentum * self.features[index] + (1.0 - self.momentum) * x  # (B, D)
        self.features[index] = F.normalize(mixed, dim=1)

    def neighbours(self, features: torch.Tensor, index: torch.Tensor, m: int) -> torch.Tensor:
        """:func:`reliable_neighbours` of a batch against the memory (same modality, self excluded) (B, m)."""
        return reliable_neighbours(features.detach(), index, self.modality[index], self.features, self.modality, m)


# --------------------------------------------------------------------------- DBSCAN baseline


def auto_eps(features: np.ndarray, rho: float = 1.6e-3, max_rows: int = 2000, seed: int = 0) -> float:
    """DBSCAN radius of Song et al. (PR 2020, "Unsupervised domain adaptive re-identification: theory and
    practice"): the mean of the smallest ``rho`` share of the pairwise cosine distances.

    Estimated on at most ``max_rows`` seeded rows (the pairs among them), so memory stays bounded.
    """
    x = np.asarray(features, dtype=np.float64)
    if len(x) > max_rows:
        x = x[np.random.default_rng(seed).choice(len(x), max_rows, replace=False)]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (n, D)
    dist = 1.0 - x @ x.T  # (n, n)
    pairs = dist[np.triu_indices(len(x), k=1)]  # (n (n - 1) / 2,)
    if pairs.size == 0:
        raise ValueError("auto_eps: need at least 2 features")
    k = max(1, int(round(rho * pairs.size)))
    return float(np.clip(np.partition(pairs, k - 1)[:k].mean(), 1e-6, 2.0))


def dbscan_labels(features: np.ndarray, eps: float | None = None, min_samples: int = 4, *,
                  rho: float = 1.6e-3, seed: int = 0) -> tuple[np.ndarray, float]:
    """DBSCAN on cosine distance ``1 - cos`` of the L2-normalised features; returns ``(labels, eps)``, -1 = outlier.

    ``eps=None`` picks the radius with :func:`auto_eps` (share ``rho``). Runs on the normalised
    features with the Euclidean metric and radius ``sqrt(2 eps)`` (``|a - b|^2 = 2 (1 - cos)`` on
    the unit sphere), so no N x N matrix is held in memory.
    """
    from sklearn.cluster import DBSCAN

    if eps is None:
        eps = auto_eps(features, rho, seed=seed)
    if not 0.0 < eps <= 2.0:
        raise ValueError(f"dbscan_labels: eps is a cosine distance in (0, 2], got {eps}")
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D)
    labels = DBSCAN(eps=math.sqrt(2.0 * eps), min_samples=min_samples, metric="euclidean").fit_predict(x)
    return labels, float(eps)


def cluster_centroids(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unit-norm mean feature of each cluster ``0..K-1`` (rows labelled -1 are ignored) (K, D)."""
    keep = labels >= 0
    k = int(labels[keep].max()) + 1 if bool(keep.any()) else 0
    x = F.normalize(features.float(), dim=1)[keep]  # (N_kept, D)
    sums = torch.zeros(k, x.shape[1], device=x.device).index_add_(0, labels[keep].long(), x)  # (K, D)
    return F.normalize(sums, dim=1)


def label_agreement(true_ids: np.ndarray, pseudo: np.ndarray) -> dict[str, float]:
    """Diagnostics only (never used for training): NMI of pseudo labels vs true identities, and the
    share of images not marked as outliers (-1)."""
    from sklearn.metrics import normalized_mutual_info_score

    true_ids, pseudo = np.asarray(true_ids), np.asarray(pseudo)
    kept = pseudo >= 0
    nmi = float(normalized_mutual_info_score(true_ids[kept], pseudo[kept])) if kept.any() else 0.0
    return {"nmi": nmi, "kept": float(kept.mean()) if len(kept) else 0.0}
