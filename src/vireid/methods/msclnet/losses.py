"""MSCLNet's losses (seeds/001 §7.2-7.4; METHODS.md §10), each ``loss(output, batch)``.

* ``msclnet_synergy_id``: L_id(f^s), label-smoothed CE of the synergy feature's classifier.
* ``msclnet_modality_id``: L_t = CE of p^v over the visible rows + CE of p^r over the infrared rows.
* ``msclnet_diversity``: L_div = -(1/S) sum_i min(KL(p^v_i || p^r_i), clamp) over the pairs, p the
  softmax of each modality classifier (METHODS.md: the "logit distributions"; -KL is unbounded
  below, so each pair's KL is clamped at 2.0).
* ``msclnet_local``: L_local = (1/S) sum_i sum_j [(1 - cos(b^v_j, b^s_j)) + sqrt(2 - 2 cos(b^v_j, b^s_j))]
  (METHODS.md: the seed's +cos pushes the parts apart while sqrt(2 - 2cos) pulls them together;
  we use 1 - cos). L_Com optimises theta_s, so b^v is a target (detached) unless ``detach_target=False``.
* ``msclnet_global``: L_global = (1/S) sum_i ||C^s_{y_i} - C^r_{y_i}||^2, identity centres of the
  L2-normalised synergy features (after their BNNeck) and of the infrared images' L2-normalised
  embeddings (the target, detached unless ``detach_target=False``); normalised because the two
  live on different scales (an LSTM state vs a BN feature).
* Cascaded aggregation (§3.4), on L2-normalised features (``feature="embedding"``: every image's
  retrieval embedding, sub-class = (identity, camera); ``"synergy"``: the pairs' f^s, sub-class =
  (identity, the visible image's camera)):
  ``msclnet_subclass`` L_sub = (1/N) sum_i ||f_i - C_{s_i}||^2;
  ``msclnet_intra`` L_intra = (1/N) sum_i sum_{s in sub-classes of y_i} ||C_s - C_{y_i}||^2;
  ``msclnet_inter`` the bounded reading of L_inter (METHODS.md): mean over distinct identity pairs
  a < b of [margin - ||C^_a - C^_b||^2]_+ with L2-normalised centres C^ (margin 1).
  On RegDB every modality has one camera, so the (identity, camera) sub-classes are the
  (identity, modality) ones (METHODS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.losses.identity import cross_entropy_label_smooth
from vireid.types import Batch, Modality, ModelOutput

__all__ = ["CascadeInter", "CascadeIntra", "CascadeSubclass", "Diversity", "GlobalComplement", "LocalComplement",
           "ModalityIdentity", "SynergyIdentity", "group_means", "inter_class_loss", "intra_class_loss",
           "subclass_loss"]

FEATURES = ("embedding", "synergy")


def _extra(output: ModelOutput, key: str, owner: str) -> torch.Tensor:
    if key not in output.extras:
        raise ValueError(f"{owner}: the model output has no extras[{key!r}] (model msclnet in training mode sets it)")
    return output.extras[key]


def _pair_pids(output: ModelOutput, batch: Batch, owner: str) -> torch.Tensor:
    """Identity of each pair; an error when the batch is not in the cross-modal sampler's layout."""
    vis, ir = _extra(output, "pair_visible", owner), _extra(output, "pair_infrared", owner)
    pv, pr = batch.pids[vis], batch.pids[ir]
    if not torch.equal(pv, pr):
        raise ValueError(f"{owner}: the i-th visible and i-th infrared image of the batch must share an identity "
                         f"(the cross-modal sampler's P x (K + K) layout); pairs differ at {int((pv != pr).sum())} rows")
    return pv


def group_means(x: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(means (G, D), inverse (N,))``: the mean of the rows of ``x`` (N, D) sharing each distinct key."""
    uniq, inverse = torch.unique(keys, return_inverse=True)
    sums = torch.zeros(uniq.shape[0], x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, inverse, x)
    counts = torch.bincount(inverse, minlength=uniq.shape[0]).to(x.dtype)  # (G,)
    return sums / counts[:, None], inverse


def _sub_keys(pids: torch.Tensor, subs: torch.Tensor) -> torch.Tensor:
    return pids.long() * (int(subs.max()) + 1 if subs.numel() else 1) + subs.long()


def subclass_loss(f: torch.Tensor, pids: torch.Tensor, subs: torch.Tensor) -> torch.Tensor:
    """L_sub = (1/N) sum_i ||f_i - C_{s_i}||^2, C_s the mean of sub-class s = (identity, sub label)."""
    centres, inv = group_means(f, _sub_keys(pids, subs))  # (G, D), (N,)
    return ((f - centres[inv]) ** 2).sum(dim=1).mean()


def intra_class_loss(f: torch.Tensor, pids: torch.Tensor, subs: torch.Tensor) -> torch.Tensor:
    """L_intra = (1/N) sum_i sum_{s of y_i} ||C_s - C_{y_i}||^2 (C_y the mean of all of y's rows)."""
    keys = _sub_keys(pids, subs)
    sub_centres, sub_inv = group_means(f, keys)  # (G, D)
    id_centres, id_inv = group_means(f, pids)  # (P, D)
    sub_id = torch.zeros(sub_centres.shape[0], dtype=torch.long, device=f.device)
    sub_id[sub_inv] = id_inv  # identity of every sub-class
    per_sub = ((sub_centres - id_centres[sub_id]) ** 2).sum(dim=1)  # (G,)
    per_id = torch.zeros(id_centres.shape[0], dtype=f.dtype, device=f.device).index_add_(0, sub_id, per_sub)  # (P,)
    return per_id[id_inv].mean()


def inter_class_loss(f: torch.Tensor, pids: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Bounded L_inter: mean over identity pairs a < b of [margin - ||C^_a - C^_b||^2]_+ (normalised centres)."""
    centres = F.normalize(group_means(f, pids)[0], dim=1)  # (P, D)
    p = centres.shape[0]
    if p < 2:
        return f.sum() * 0.0
    d2 = torch.cdist(centres, centres).pow(2)  # (P, P)
    a, b = torch.triu_indices(p, p, offset=1, device=f.device)
    return F.relu(margin - d2[a, b]).mean()


class SynergyIdentity(nn.Module):
    """L_id(f^s): label-smoothed CE of ``extras["synergy_logits"]`` against the pairs' identities."""

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        logits = _extra(output, "synergy_logits", "msclnet_synergy_id")
        pids = _pair_pids(output, batch, "msclnet_synergy_id")
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        return cross_entropy_label_smooth(logits, pids, self.epsilon)


class ModalityIdentity(nn.Module):
    """L_t = CE(p^v) over the visible rows + CE(p^r) over the infrared rows (``output.logits``)."""

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("msclnet_modality_id: the model output has no logits (num_classes=0?)")
        total = output.logits.sum() * 0.0
        for m in Modality:
            rows = batch.modality == int(m)
            if bool(rows.any()):
                total = total + cross_entropy_label_smooth(output.logits[rows], batch.pids[rows], self.epsilon)
        return total


class Diversity(nn.Module):
    """L_div = -(1/S) sum_i min(KL(softmax(p^v_i) || softmax(p^r_i)), clamp) over the visible/infrared pairs."""

    def __init__(self, clamp: float = 2.0) -> None:
        super().__init__()
        self.clamp = clamp

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("msclnet_diversity: the model output has no logits (num_classes=0?)")
        vis, ir = _extra(output, "pair_visible", "msclnet_diversity"), _extra(output, "pair_infrared", "msclnet_diversity")
        if vis.numel() == 0:
            return output.logits.sum() * 0.0
        log_pv = F.log_softmax(output.logits[vis].float(), dim=1)  # (S, N)
        log_pr = F.log_softmax(output.logits[ir].float(), dim=1)  # (S, N)
        kl = (log_pv.exp() * (log_pv - log_pr)).sum(dim=1)  # (S,)
        return -kl.clamp(max=self.clamp).mean()


class LocalComplement(nn.Module):
    """L_local = (1/S) sum_i sum_j [(1 - cos) + sqrt(2 - 2 cos)] of (b^v_j, b^s_j) (METHODS.md reading)."""

    def __init__(self, detach_target: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        self.detach_target, self.eps = detach_target, eps

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        bs = _extra(output, "synergy_parts", "msclnet_local").float()  # (S, n, C)
        bv = _extra(output, "visible_parts", "msclnet_local").float()  # (S, n, C)
        if self.detach_target:
            bv = bv.detach()
        if bs.shape[0] == 0:
            return bs.sum() * 0.0
        cos = F.cosine_similarity(bv, bs, dim=2)  # (S, n)
        return ((1.0 - cos) + (2.0 - 2.0 * cos).clamp(min=self.eps).sqrt()).sum(dim=1).mean()


class GlobalComplement(nn.Module):
    """L_global = (1/S) sum_i ||C^s_{y_i} - C^r_{y_i}||^2 over the pairs (normalised features, see the module docs)."""

    def __init__(self, detach_target: bool = True) -> None:
        super().__init__()
        self.detach_target = detach_target

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        syn = F.normalize(_extra(output, "synergy_bn", "msclnet_global").float(), dim=1)  # (S, C)
        pids = _pair_pids(output, batch, "msclnet_global")  # (S,)
        if syn.shape[0] == 0:
            return syn.sum() * 0.0
        ir_rows = batch.modality == int(Modality.INFRARED)
        ir = F.normalize(output.bn_features[ir_rows].float(), dim=1)  # (Br, C)
        if self.detach_target:
            ir = ir.detach()
        c_s, inv = group_means(syn, pids)  # (P, C)
        uniq = torch.unique(pids)
        c_r_all, _ = group_means(ir, batch.pids[ir_rows])
        c_r = c_r_all[torch.searchsorted(torch.unique(batch.pids[ir_rows]), uniq)]  # (P, C), pair ids have IR rows
        return ((c_s - c_r) ** 2).sum(dim=1)[inv].mean()


class _Cascade(nn.Module):
    def __init__(self, feature: str = "embedding", normalize: bool = True) -> None:
        super().__init__()
        if feature not in FEATURES:
            raise ValueError(f"msclnet cascaded aggregation: feature must be one of {FEATURES}, got {feature!r}")
        self.feature, self.normalize = feature, normalize

    def select(self, output: ModelOutput, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features (N, D), identities (N,), sub-class labels (N,))."""
        if self.feature == "embedding":
            f, pids, subs = output.bn_features, batch.pids, batch.camids
        else:
            f = _extra(output, "synergy_bn", "msclnet cascaded aggregation")
            pids = _pair_pids(output, batch, "msclnet cascaded aggregation")
            subs = batch.camids[output.extras["pair_visible"]]
        f = f.float()
        return (F.normalize(f, dim=1) if self.normalize else f), pids, subs


class CascadeSubclass(_Cascade):
    """L_sub (sub-class level aggregation, §3.4 Eq. 1)."""

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        f, pids, subs = self.select(output, batch)
        return subclass_loss(f, pids, subs) if f.shape[0] else f.sum() * 0.0


class CascadeIntra(_Cascade):
    """L_intra (intra-class aggregation, §3.4 Eq. 2)."""

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        f, pids, subs = self.select(output, batch)
        return intra_class_loss(f, pids, subs) if f.shape[0] else f.sum() * 0.0


class CascadeInter(_Cascade):
    """Bounded L_inter (inter-class aggregation, §3.4 Eq. 3; METHODS.md reading, ``margin`` 1)."""

    def __init__(self, feature: str = "embedding", normalize: bool = True, margin: float = 1.0) -> None:
        super().__init__(feature, normalize)
        self.margin = margin

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        f, pids, _ = self.select(output, batch)
        return inter_class_loss(f, pids, self.margin) if f.shape[0] else f.sum() * 0.0
