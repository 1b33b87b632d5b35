"""DAN's target-domain losses: domain adversarial alignment, soft-label loss, cross-modal alignment.

Dual Alignment Network, Fu et al., TCSVT 2022 (seeds/000; METHODS.md §2):

- DAA, Eq. 3-4: per-modality discriminator loss behind a gradient reversal layer
  (:func:`domain_adversarial_loss`), and the proxy A-distance of Eq. 1 as a diagnostic
  (:func:`proxy_a_distance`).
- Soft labels, Eq. 8-9: ``lambda`` on the image's own index, ``(1 - lambda) / m`` on each of its
  ``m`` reliable neighbours, against an exemplar memory ``softmax(x Mem^T / tau)`` that stands in
  for the N^t-way classifier W (METHODS.md [UNSPEC->default]); :func:`soft_label_loss`.
- CMA, Eq. 12-14: class-wise first and second moments of target visible vs infrared features,
  classes being the hard pseudo labels; :func:`cross_modal_alignment`.

The pseudo labels and the memory themselves live in :mod:`vireid.methods.dan.pseudo_labels`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Batch, Modality
from vireid.losses.selection import check_feature_name, select_feature
from vireid.types import ModelOutput

Reduction = Literal["sum", "mean"]

# --------------------------------------------------------------------------- DAA (Eq. 1-4)


def domain_adversarial_loss(logits: torch.Tensor, is_source: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """``sum_p L_Dp``, seeds/000 Eq. 3: ``-mean_{s,p} log D_p(x^s) - mean_{t,p} log(1 - D_p(x^t))``.

    ``logits`` are the discriminators' source logits (``D = sigmoid(logits)``); each modality's
    source and target terms are means over that modality's rows. A side with no rows in the batch
    contributes nothing. Placed behind a gradient reversal layer this is Eq. 4's min-max.

    Args:
        logits: (B,) source logits; is_source: (B,) bool; modality: (B,) 0 visible / 1 infrared.
    """
    if logits.dim() != 1 or is_source.shape != logits.shape or modality.shape != logits.shape:
        raise ValueError(f"domain_adversarial_loss: expected (B,) logits, is_source and modality, got "
                         f"{tuple(logits.shape)}, {tuple(is_source.shape)}, {tuple(modality.shape)}")
    logits = logits.float()
    is_source = is_source.bool()
    total = logits.sum() * 0.0
    for m in Modality:
        in_mod = modality == int(m)
        for side, target in ((is_source & in_mod, 1.0), (~is_source & in_mod, 0.0)):
            if bool(side.any()):
                rows = logits[side]  # (N_side,)
                total = total + F.binary_cross_entropy_with_logits(rows, torch.full_like(rows, target))
    return total


def discriminator_accuracy(logits: torch.Tensor, is_source: torch.Tensor) -> float:
    """Share of rows the discriminators place on the right side (0.5 = domains indistinguishable)."""
    return float(((logits.detach() > 0) == is_source.bool()).float().mean())


def proxy_a_distance(source: np.ndarray, target: np.ndarray, *, seed: int = 0, C: float = 1.0,
                     source_keys: Sequence[str] | None = None, target_keys: Sequence[str] | None = None) -> float:
    """Proxy A-distance ``d_A = 2 (1 - 2 err)``, seeds/000 Eq. 1 (Ben-David et al., NeurIPS 2006).

    ``err`` is the held-out error of a linear SVM (standardised features) trained to tell source
    (label 0) from target (label 1) rows; each half (train, test) holds as many source as target
    rows. 0 means indistinguishable, 2 perfectly separable (slightly negative values are chance
    fluctuations).

    The split is a seeded, stratified half/half split of the rows, or, with ``source_keys`` and
    ``target_keys`` (e.g. image paths relative to the dataset root), a seeded split *of the keys*:
    rows with the same key fall on the same side. Give keys when the target is derived from the
    source (``vireid domains``): otherwise an image's copy in the other domain can sit on the other
    side of the split, the SVM's memory of the one mislabels the other, and the value drops
    towards -2 (identical sets measured -0.95 with a row split, ~0 with a key split).

    Args:
        source: (Ns, D) features; target: (Nt, D) features; Ns, Nt >= 2.
        source_keys, target_keys: one key per row of ``source`` / ``target``, or both ``None``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"proxy_a_distance: expected (Ns, D) and (Nt, D) features, got {source.shape} "
                         f"and {target.shape}")
    if min(len(source), len(target)) < 2:
        raise ValueError(f"proxy_a_distance: need at least 2 rows per domain, got {len(source)} and {len(target)}")
    if (source_keys is None) != (target_keys is None):
        raise ValueError("proxy_a_distance: give both source_keys and target_keys, or neither")
    rng = np.random.default_rng(seed)
    if source_keys is None:
        n = min(len(source), len(target))
        s = source[rng.choice(len(source), n, replace=False)]
        t = target[rng.choice(len(target), n, replace=False)]
        x = np.concatenate([s, t])  # (2n, D)
        y = np.concatenate([np.zeros(n), np.ones(n)])  # (2n,)
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    else:
        assert target_keys is not None
        if len(source_keys) != len(source) or len(target_keys) != len(target):
            raise ValueError(f"proxy_a_distance: {len(source_keys)} source keys for {len(source)} rows, "
                             f"{len(target_keys)} target keys for {len(target)} rows")
        keys = sorted(set(source_keys) | set(target_keys))
        in_train = dict(zip(keys, rng.permutation(len(keys)) < (len(keys) + 1) // 2))
        halves = []
        for side in (True, False):
            s = source[[in_train[k] == side for k in source_keys]]
            t = target[[in_train[k] == side for k in target_keys]]
            n = min(len(s), len(t))
            if n < 1:
                raise ValueError("proxy_a_distance: the key split left one domain without rows on one side "
                                 f"(source {len(s)}, target {len(t)})")
            s, t = s[rng.choice(len(s), n, replace=False)], t[rng.choice(len(t), n, replace=False)]
            halves.append((np.concatenate([s, t]), np.concatenate([np.zeros(n), np.ones(n)])))
        (x_tr, y_tr), (x_te, y_te) = halves
    clf = make_pipeline(StandardScaler(), LinearSVC(C=C, dual="auto", max_iter=5000, random_state=seed))
    with warnings.catch_warnings():  # a diagnostic: an unconverged SVM still bounds the error
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_tr, y_tr)
    err = float(np.mean(clf.predict(x_te) != y_te))
    return 2.0 * (1.0 - 2.0 * err)


# --------------------------------------------------------------------------- soft labels (Eq. 8-9)


def exemplar_logits(features: torch.Tensor, memory: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """``normalize(x) @ Mem^T / tau``: the exemplar-memory classifier over the N^t target images (B, N)."""
    if temperature <= 0:
        raise ValueError(f"exemplar_logits: temperature must be positive, got {temperature}")
    x = F.normalize(features.float(), dim=1)  # (B, D)
    return x @ memory.float().t() / temperature  # (B, N)


def soft_label_targets(self_index: torch.Tensor, neighbours: torch.Tensor, num_classes: int,
                       lam: float = 0.5) -> torch.Tensor:
    """Dense soft labels of seeds/000 Eq. 8: ``lambda`` at ``y_i = i``, ``(1 - lambda) / m`` per reliable neighbour.

    Args:
        self_index: (B,) the images' own indices (their initial pseudo labels).
        neighbours: (B, m) indices of the reliable sets (distinct, excluding the image itself).
        num_classes: N^t, the number of target images.

    Returns:
        (B, N^t) rows summing to one.
    """
    _check_soft(self_index, neighbours, lam)
    b, m = neighbours.shape
    q = torch.zeros(b, num_classes, device=neighbours.device)  # (B, N)
    q.scatter_(1, neighbours.long(), (1.0 - lam) / m)
    q.scatter_(1, self_index.long().unsqueeze(1), lam)
    return q


def soft_label_loss(logits: torch.Tensor, self_index: torch.Tensor, neighbours: torch.Tensor,
                    lam: float = 0.5) -> torch.Tensor:
    """seeds/000 Eq. 9, averaged over the batch:
    ``mean_i [-lambda log p_i(i) - (1 - lambda)/m sum_n log p_i(i_n)]`` with ``p_i = softmax(logits_i)``.

    The summary slide's ``w_i`` in the denominator is read as the sum over all ``j`` (METHODS.md
    §2 Ambiguities). Equal to the cross-entropy against :func:`soft_label_targets`.

    Args:
        logits: (B, N^t) scores over the target images (e.g. :func:`exemplar_logits`).
        self_index: (B,) own indices; neighbours: (B, m) reliable-set indices.
    """
    _check_soft(self_index, neighbours, lam)
    if logits.dim() != 2 or logits.shape[0] != neighbours.shape[0]:
        raise ValueError(f"soft_label_loss: expected logits (B, N) with B={neighbours.shape[0]}, "
                         f"got {tuple(logits.shape)}")
    log_p = F.log_softmax(logits.float(), dim=1)  # (B, N)
    own = log_p.gather(1, self_index.long().unsqueeze(1)).squeeze(1)  # (B,)
    near = log_p.gather(1, neighbours.long()).mean(dim=1)  # (B,)
    return -(lam * own + (1.0 - lam) * near).mean()


def _check_soft(self_index: torch.Tensor, neighbours: torch.Tensor, lam: float) -> None:
    if neighbours.dim() != 2 or neighbours.shape[1] < 1 or self_index.shape != neighbours.shape[:1]:
        raise ValueError(f"soft labels: expected self_index (B,) and neighbours (B, m >= 1), got "
                         f"{tuple(self_index.shape)} and {tuple(neighbours.shape)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"soft labels: lambda must be in [0, 1], got {lam}")
    if bool((neighbours == self_index.unsqueeze(1)).any()):
        raise ValueError("soft labels: a reliable set contains the image itself")


# --------------------------------------------------------------------------- CMA (Eq. 12-14)


def cross_modal_alignment(
    features: torch.Tensor,
    labels: torch.Tensor,
    modality: torch.Tensor,
    *,
    eta: float = 1.0,
    normalize: bool = True,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """``sum_k d(mu_rk, mu_irk) + eta d(sigma_rk, sigma_irk)``, seeds/000 Eq. 12-14, ``d`` = squared L2.

    For every class ``k`` with images of both modalities in the batch, ``mu`` is the mean and
    ``sigma`` the element-wise (population, 1/N) variance of its visible resp. infrared features
    (Eq. 12-13). The seed's sum index ``r`` is read as ``k`` (METHODS.md §2 Ambiguities).
    Classes present in one modality only are skipped; with none left the loss is 0 (attached).

    Args:
        features: (B, D); labels: (B,) class of each row (DAN: hard pseudo labels); modality: (B,).
        eta: weight of the second moment. normalize: L2-normalise the features first (keeps the
            moments on the unit sphere, so shrinking the features cannot zero the loss).
        reduction: ``"sum"`` over classes (Eq. 14) or ``"mean"``.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1] or modality.shape != features.shape[:1]:
        raise ValueError(f"cross_modal_alignment: expected features (B, D), labels (B,), modality (B,), got "
                         f"{tuple(features.shape)}, {tuple(labels.shape)}, {tuple(modality.shape)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"cross_modal_alignment: reduction must be 'sum' or 'mean', got {reduction!r}")
    x = features.float()
    if normalize:
        x = F.normalize(x, dim=1)  # (B, D)
    vis, ir = modality == int(Modality.VISIBLE), modality == int(Modality.INFRARED)
    both = sorted(set(labels[vis].tolist()) & set(labels[ir].tolist()))
    if not both:
        return x.sum() * 0.0
    classes = torch.tensor(both, device=labels.device)  # (C,)
    onehot = (labels.unsqueeze(0) == classes.unsqueeze(1)).float()  # (C, B)
    moments = []
    for mask in (vis, ir):
        w = onehot * mask.float().unsqueeze(0)  # (C, B)
        w = w / w.sum(dim=1, keepdim=True)  # (C, B) rows: 1/N_k on the class's rows
        mu = w @ x  # (C, D)  class means
        var = (w.unsqueeze(2) * (x.unsqueeze(0) - mu.unsqueeze(1)).pow(2)).sum(dim=1)  # (C, D)  Eq. 12-13
        moments.append((mu, var))
    (mu_r, var_r), (mu_ir, var_ir) = moments
    terms = (mu_r - mu_ir).pow(2).sum(dim=1) + eta * (var_r - var_ir).pow(2).sum(dim=1)  # (C,)
    return terms.sum() if reduction == "sum" else terms.mean()


class CrossModalAlignment(nn.Module):
    """Cross-modal moment alignment (DAN CMA, seeds/000 Eq. 12-14) on ``output.<feature>`` against ``batch.pids``.

    In DAN's adaptation trainer ``batch.pids`` are the target's hard pseudo labels; in supervised
    training they are the identities.

    Args:
        eta: second-moment weight (METHODS.md default 1). normalize: L2-normalise first.
        reduction: ``"sum"`` over classes (Eq. 14) or ``"mean"``.
        feature: ``"features"``, ``"bn_features"`` (default, the retrieval embedding) or ``"extras:<key>"``.
    """

    def __init__(self, eta: float = 1.0, normalize: bool = True, reduction: Reduction = "sum",
                 feature: str = "bn_features") -> None:
        super().__init__()
        if eta < 0:
            raise ValueError(f"cma: eta must be >= 0, got {eta}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"cma: reduction must be 'sum' or 'mean', got {reduction!r}")
        self.eta, self.normalize, self.reduction = float(eta), bool(normalize), reduction
        self.feature = check_feature_name(feature, "cma")

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return cross_modal_alignment(select_feature(output, self.feature), batch.pids, batch.modality,
                                     eta=self.eta, normalize=self.normalize, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"eta={self.eta}, normalize={self.normalize}, reduction={self.reduction!r}, feature={self.feature!r}"
