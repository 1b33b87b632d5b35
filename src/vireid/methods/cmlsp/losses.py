"""CM-LSP + BN-GE's multi-granularity losses (seeds/001 §6 "3.4 多种损失函数"; METHODS.md §9 "Losses").

* ``cmlsp_id``: ``L_id^g + L_id^eg + L_id^lv + L_id^lt``. The global and enhanced terms are the
  cross-entropy of their classifiers over every image; ``L_id^lv = sum_{j} CE_j`` over the visible
  images' stripes j = local_start..h (each stripe's classifier, mean over the visible rows), ``L_id^lt``
  the same over the thermal images.
* ``cmlsp_centre_triplet``: the global cross-modal centre triplet ``L_Tri^g`` on f^g plus ``L_Tri^eg``
  on f^eg. With the visible and thermal centres ``fc_v^i``, ``fc_t^i`` (mean of identity i's K features
  of each modality)::

      sum_i [m_g + ||fc_v^i - fc_t^i|| - min_{k in {v,t}, j != i} ||fc_v^i - fc_k^j||]_+
    + sum_i [m_g + ||fc_t^i - fc_v^i|| - min_{k in {v,t}, j != i} ||fc_t^i - fc_k^j||]_+

  (METHODS.md's reading: the seed omits ``j != i`` and the hinge).
* ``cmlsp_local``: the local counterpart ``L_PA^vt``, in two readings (METHODS.md "Ambiguities"):
  ``mode="shortest_path"`` (recommended, default): the AlignedReID-style batch-hard cross-modal
  triplet with the pair distance ``S_hh / h`` of :mod:`~vireid.methods.cmlsp.local` (each visible
  anchor against the thermal images, each thermal anchor against the visible ones); ``mode="stripewise"``:
  the seed's literal form, for each anchor a (both modalities) and stripe j, ``[m_l + max_p ||f^a_j -
  f^p_j|| - min_n ||f^a_j - f^n_j||]_+`` with positives and negatives from both modalities, which
  never uses S_hh.

Sums vs means: the seed writes sums over identities, anchors and stripes; ``reduction="mean"`` (default,
so that the weights of 1 in the total ``L = L_id^g + L_id^eg + L_Tri^g + L_Tri^eg + L_id^lv + L_id^lt +
L_PA^vt`` do not depend on the batch size) averages over the hinge terms, ``"sum"`` is the literal sum.
``local_start`` (1-based, default 1) is the first stripe the local sums use; the seed's sums start at
j = 2 (``local_start=2`` drops stripe 1).
"""

from __future__ import annotations

import torch
from torch import nn

from vireid.losses.distance import pairwise_euclidean
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.methods.cmlsp.local import local_path_distances
from vireid.types import Batch, Modality, ModelOutput

__all__ = ["CMLSPCentreTriplet", "CMLSPIdentity", "CMLSPLocal", "LOCAL_MODES", "cross_modal_centre_triplet",
           "local_shortest_path_triplet", "local_stripewise_triplet"]

LOCAL_MODES: tuple[str, ...] = ("shortest_path", "stripewise")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")


def _reduce(terms: torch.Tensor, reduction: str) -> torch.Tensor:
    return terms.sum() if reduction == "sum" else terms.mean()


def _extra(output: ModelOutput, key: str, owner: str) -> torch.Tensor:
    if key not in output.extras:
        raise ValueError(f"{owner}: the model output has no extras[{key!r}]; use the 'cmlsp' model "
                         f"(got extras {sorted(output.extras)})")
    return output.extras[key]


def _check(reduction: str, margin: float, local_start: int, owner: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if margin < 0:
        raise ValueError(f"{owner}: margin must be >= 0, got {margin}")
    if local_start < 1:
        raise ValueError(f"{owner}: local_start is 1-based and must be >= 1, got {local_start}")


def cross_modal_centre_triplet(features: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor,
                               margin: float = 0.3, reduction: str = "mean") -> torch.Tensor:
    """``L_Tri^g`` (seeds/001 §6) over the identities with images of both modalities: (B, D) -> scalar.

    Needs at least two such identities (otherwise there is no negative centre).
    """
    vis, ir = modality == Modality.VISIBLE, modality == Modality.INFRARED
    ids = sorted(set(pids[vis].tolist()) & set(pids[ir].tolist()))
    if len(ids) < 2:
        raise ValueError(f"cross_modal_centre_triplet: needs >= 2 identities with both modalities in the batch, "
                         f"got {len(ids)} (use the cross-modality sampler, num_ids >= 2)")
    f = features.float()
    cv = torch.stack([f[vis & (pids == p)].mean(0) for p in ids])  # (P, D)
    ct = torch.stack([f[ir & (pids == p)].mean(0) for p in ids])  # (P, D)
    centres = torch.cat([cv, ct])  # (2P, D): rows 0..P-1 visible, P..2P-1 thermal
    dist = pairwise_euclidean(centres)  # (2P, 2P)
    p = len(ids)
    idx = torch.arange(p, device=f.device)
    pos = dist[idx, idx + p]  # (P,) ||fc_v^i - fc_t^i||
    same = torch.cat([idx, idx])  # (2P,) identity of each centre
    other = same.unsqueeze(0) != same.unsqueeze(1)  # (2P, 2P) j != i
    neg = dist.masked_fill(~other, float("inf")).amin(1)  # (2P,) min over both modalities, j != i
    terms = torch.relu(margin + torch.cat([pos, pos]) - neg)  # (2P,) visible anchors, then thermal
    return _reduce(terms, reduction)


def _batch_hard(dist: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge terms ``[m + max_pos d - min_neg d]_+`` of the rows having both a positive and a negative."""
    ok = pos.any(1) & neg.any(1)  # (n,)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(1)  # (n,)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(1)  # (n,)
    return torch.relu(margin + hardest_pos[ok] - hardest_neg[ok])


def local_shortest_path_triplet(local: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor,
                                margin: float = 0.3, local_start: int = 1, reduction: str = "mean",
                                eps: float = 1e-6) -> torch.Tensor:
    """``L_PA^vt``, shortest-path reading: batch-hard cross-modal triplet on ``S_hh / h``. local (B, h, d)."""
    x = local[:, local_start - 1:]  # (B, h', d)
    vis, ir = modality == Modality.VISIBLE, modality == Modality.INFRARED
    if not bool(vis.any()) or not bool(ir.any()):
        return local.float().sum() * 0.0
    dist = local_path_distances(x[vis], x[ir], eps)  # (n_v, n_t)
    same = pids[vis].unsqueeze(1) == pids[ir].unsqueeze(0)  # (n_v, n_t)
    terms = torch.cat([_batch_hard(dist, same, ~same, margin), _batch_hard(dist.t(), same.t(), ~same.t(), margin)])
    if terms.numel() == 0:
        return local.float().sum() * 0.0
    return _reduce(terms, reduction)


def local_stripewise_triplet(local: torch.Tensor, pids: torch.Tensor, margin: float = 0.3, local_start: int = 1,
                             reduction: str = "mean") -> torch.Tensor:
    """``L_PA^vt``, the seed's literal stripe-wise form: batch-hard per stripe over the mixed batch."""
    b = local.shape[0]
    same = pids.unsqueeze(1) == pids.unsqueeze(0)  # (B, B)
    eye = torch.eye(b, dtype=torch.bool, device=local.device)
    terms = [_batch_hard(pairwise_euclidean(local[:, j]), same & ~eye, ~same, margin)
             for j in range(local_start - 1, local.shape[1])]  # each (n_ok,)
    flat = torch.cat(terms) if terms else local.new_zeros(0)
    if flat.numel() == 0:
        return local.float().sum() * 0.0
    return _reduce(flat, reduction)


class CMLSPIdentity(nn.Module):
    """``cmlsp_id``: ``L_id^g + L_id^eg + L_id^lv + L_id^lt`` (seeds/001 §6).

    Args:
        epsilon: label smoothing (0 = the seed's cross-entropy). local_start: first stripe (1-based).
        enhanced, local: include ``L_id^eg`` / the stripe terms (ablations).
    """

    def __init__(self, epsilon: float = 0.0, local_start: int = 1, enhanced: bool = True, local: bool = True) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"cmlsp_id: epsilon must be in [0, 1), got {epsilon}")
        _check("mean", 0.0, local_start, "cmlsp_id")
        self.epsilon, self.local_start, self.enhanced, self.local = float(epsilon), int(local_start), enhanced, local

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("cmlsp_id: the model output has no logits (built with num_classes=0?)")
        loss = cross_entropy_label_smooth(output.logits, batch.pids, self.epsilon)
        if self.enhanced:
            loss = loss + cross_entropy_label_smooth(_extra(output, "enhanced_logits", "cmlsp_id"), batch.pids,
                                                     self.epsilon)
        if self.local:
            local_logits = _extra(output, "local_logits", "cmlsp_id")  # (B, h, N)
            if self.local_start > local_logits.shape[1]:
                raise ValueError(f"cmlsp_id: local_start {self.local_start} > the model's {local_logits.shape[1]} stripes")
            for mod in (Modality.VISIBLE, Modality.INFRARED):
                rows = batch.modality == mod
                if bool(rows.any()):
                    for j in range(self.local_start - 1, local_logits.shape[1]):
                        loss = loss + cross_entropy_label_smooth(local_logits[rows, j], batch.pids[rows], self.epsilon)
        return loss

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, local_start={self.local_start}, enhanced={self.enhanced}, local={self.local}"


class CMLSPCentreTriplet(nn.Module):
    """``cmlsp_centre_triplet``: ``L_Tri^g`` on f^g (``features``) + ``L_Tri^eg`` on f^eg (seeds/001 §6).

    Args:
        margin: m_g (0.3 [UNSPEC]). enhanced: include ``L_Tri^eg``. reduction: ``"mean"`` or ``"sum"``.
    """

    def __init__(self, margin: float = 0.3, enhanced: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        _check(reduction, margin, 1, "cmlsp_centre_triplet")
        self.margin, self.enhanced, self.reduction = float(margin), enhanced, reduction

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        loss = cross_modal_centre_triplet(output.features, batch.pids, batch.modality, self.margin, self.reduction)
        if self.enhanced:
            loss = loss + cross_modal_centre_triplet(_extra(output, "enhanced", "cmlsp_centre_triplet"), batch.pids,
                                                     batch.modality, self.margin, self.reduction)
        return loss

    def extra_repr(self) -> str:
        return f"margin={self.margin}, enhanced={self.enhanced}, reduction={self.reduction!r}"


class CMLSPLocal(nn.Module):
    """``cmlsp_local``: the local triplet ``L_PA^vt`` on ``extras["local"]`` (seeds/001 §6; see the module docs).

    Args:
        margin: m_l (0.3 [UNSPEC]). mode: ``"shortest_path"`` (S_hh / h, cross-modal batch-hard;
            default) or ``"stripewise"`` (the seed's literal form). local_start: first stripe (1-based).
        reduction: ``"mean"`` or ``"sum"``. eps: added to each stripe's range in the stripe distance.
    """

    def __init__(self, margin: float = 0.3, mode: str = "shortest_path", local_start: int = 1,
                 reduction: str = "mean", eps: float = 1e-6) -> None:
        super().__init__()
        if mode not in LOCAL_MODES:
            raise ValueError(f"cmlsp_local: mode must be one of {LOCAL_MODES}, got {mode!r}")
        _check(reduction, margin, local_start, "cmlsp_local")
        self.margin, self.mode, self.local_start, self.reduction, self.eps = (
            float(margin), mode, int(local_start), reduction, float(eps))

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        local = _extra(output, "local", "cmlsp_local")  # (B, h, d)
        if self.local_start > local.shape[1]:
            raise ValueError(f"cmlsp_local: local_start {self.local_start} > the model's {local.shape[1]} stripes")
        if self.mode == "shortest_path":
            return local_shortest_path_triplet(local, batch.pids, batch.modality, self.margin, self.local_start,
                                               self.reduction, self.eps)
        return local_stripewise_triplet(local, batch.pids, self.margin, self.local_start, self.reduction)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, mode={self.mode!r}, local_start={self.local_start}, "
                f"reduction={self.reduction!r}")
