"""SAP's distillation losses (seeds/002 §4; METHODS.md §14), with the corrected sign.

* Patch-level: ``L_patch = -alpha sum softmax(A_patch) log softmax(I W_q (I W_k)^T / sqrt(D))``: the rows of
  the teacher's affinity ``A_patch`` (:func:`~vireid.methods.sap.targets.patch_affinity_target`), turned into
  distributions by a softmax, against the student's attention of the last block (head-averaged attention
  probabilities, ``extras["attention"]`` (B, 1+N, 1+N); its log is the log of the head average).
* Proxy-level: ``L_proxy = -alpha sum softmax(m^^T) log softmax(Q_proxy (I'W'_k)^T / sqrt(d))``, softmax over
  the patches: for each part proxy, the teacher's distribution over patches of that part (columns 1..G-1 of m^,
  one per proxy; background has no proxy) against the proxy's attention (``extras["proxy_attention"]``
  (B, P, N)).
* SSD (supervision signal dropout): with ``T_srd = I' I'^T``, each image drops the supervision of
  ``round(drop * N)`` patches drawn without replacement with probability ``p(i) = softmax_i(sum_j T_srd[i, j])``
  (Gumbel top-k, which is that draw); a dropped patch's row leaves L_patch and the patch leaves L_proxy's
  distributions (both renormalised over the kept patches). One draw per step serves both terms, so they live
  in one loss, :class:`SAPDistillation`, whose two weights are the alphas.

Both sums are averaged (over images and rows / proxies) rather than summed, so the weights do not depend on
the batch size or the grid.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vireid.errors import ConfigError
from vireid.methods.sap.targets import (NUM_GROUPS, band_part_map, part_map_from_parsing, patch_affinity_target,
                                        patch_part_targets)
from vireid.types import Batch, ModelOutput

__all__ = ["SAPDistillation", "SAPPartID", "patch_distillation", "proxy_distillation", "ssd_drop_mask"]

EPS = 1e-8


def ssd_drop_mask(patch_tokens: torch.Tensor, drop: float, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """SSD: (B, N) bool, True for the ``round(drop * N)`` patches per image whose supervision is dropped.

    Drawn without replacement with ``p(i) = softmax_i(sum_j (I' I'^T)[i, j])`` via Gumbel top-k:
    ``top-k of (scores + Gumbel noise)`` is exactly sequential sampling without replacement from softmax(scores).
    """
    b, n, _ = patch_tokens.shape
    k = int(round(drop * n))
    mask = torch.zeros(b, n, dtype=torch.bool, device=patch_tokens.device)
    if k <= 0:
        return mask
    with torch.no_grad():
        tokens = patch_tokens.detach().float()  # (B, N, D)
        scores = (tokens @ tokens.transpose(1, 2)).sum(dim=2)  # (B, N): row sums of T_srd
        u = torch.rand(scores.shape, generator=generator, device=scores.device).clamp(1e-12, 1 - 1e-7)
        gumbel = -torch.log(-torch.log(u))  # (B, N)
        idx = (scores + gumbel).topk(k, dim=1).indices  # (B, k)
    return mask.scatter(1, idx, True)


def patch_distillation(attention: torch.Tensor, a_patch: torch.Tensor, dropped: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """Mean over images and kept rows of ``-sum_j softmax(A_patch)_ij log attention_ij``.

    ``attention`` (B, T, T) student probabilities (rows sum to 1), ``a_patch`` (B, T, T) teacher affinities,
    ``dropped`` (B, T - 1) SSD mask of the patch rows ([cls]'s row is always kept); a dropped patch also
    leaves the kept rows' distributions (its column is removed from teacher and student, both renormalised).
    """
    b, t, _ = attention.shape
    keep = torch.ones(b, t, dtype=torch.bool, device=attention.device)
    if dropped is not None:
        keep[:, 1:] = ~dropped
    col = keep[:, None, :]  # (B, 1, T)
    logits = a_patch.float().masked_fill(~col, float("-inf"))
    target = torch.softmax(logits, dim=-1)  # (B, T, T), 0 on dropped columns
    student = attention.float() * col  # (B, T, T)
    student = student / student.sum(dim=-1, keepdim=True).clamp_min(EPS)
    ce = -(target * torch.log(student.clamp_min(EPS))).sum(dim=-1)  # (B, T)
    return (ce * keep).sum() / keep.sum()


def proxy_distillation(proxy_attention: torch.Tensor, m_hat: torch.Tensor, dropped: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """Mean over images and proxies of ``-sum_i softmax_i(m^[i, p]) log proxy_attention[p, i]``.

    ``proxy_attention`` (B, P, N) student probabilities over patches, ``m_hat`` (B, N, 1 + P) the teacher's part
    distribution (column 0 = background, no proxy), ``dropped`` (B, N) SSD mask (removed from both sides).
    """
    parts = m_hat[..., 1:].transpose(1, 2).float()  # (B, P, N)
    if parts.shape != proxy_attention.shape:
        raise ValueError(f"sap_distill: {proxy_attention.shape[1]} proxies need a teacher with "
                         f"{proxy_attention.shape[1]} parts + background, got {m_hat.shape[-1]} groups")
    keep = torch.ones_like(parts[:, :1, :], dtype=torch.bool) if dropped is None else ~dropped[:, None, :]
    target = torch.softmax(parts.masked_fill(~keep, float("-inf")), dim=-1)  # (B, P, N)
    student = proxy_attention.float() * keep
    student = student / student.sum(dim=-1, keepdim=True).clamp_min(EPS)
    return -(target * torch.log(student.clamp_min(EPS))).sum(dim=-1).mean()


class SAPDistillation(nn.Module):
    """SAP's cooperative distillation (L_patch + L_proxy) with SSD, from a parsing or a rule-based teacher.

    Reads ``batch.aux["parsing"]`` (B, H, W) ATR ids (parsing teacher) and the model's extras ``attention``,
    ``proxy_attention``, ``patch_tokens``, ``patch_geometry`` (:class:`vireid.methods.sap.model.SAP`).

    Args:
        teacher: ``"parsing"`` (the human-parsing teacher) or ``"bands"`` (fixed horizontal bands, every patch
            foreground: the fallback when no parsing is available).
        patch_weight, proxy_weight: alpha of L_patch and of L_proxy (0 switches a term off).
        lam: lambda of ``m^ = softmax(lambda * part fractions)``. gamma: the foreground threshold on ``m^[B]``.
        drop: SSD's fraction of patches whose supervision is dropped (0 = no SSD).
    """

    def __init__(self, teacher: Literal["parsing", "bands"] = "parsing", patch_weight: float = 1.0,
                 proxy_weight: float = 1.0, lam: float = 1.0, gamma: float = 0.5, drop: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"sap_distill: drop must be in [0, 1), got {drop}")
        self.teacher, self.patch_weight, self.proxy_weight = teacher, patch_weight, proxy_weight
        self.lam, self.gamma, self.drop = lam, gamma, drop

    def part_map(self, output: ModelOutput, batch: Batch, num_parts: int) -> torch.Tensor:
        """(B, H, W) coarse part ids of the batch from the chosen teacher."""
        b, _, h, w = batch.images.shape
        if self.teacher == "bands":
            return band_part_map(b, h, w, num_parts, batch.images.device)
        if "parsing" not in batch.aux:
            raise ConfigError("sap_distill: teacher 'parsing' needs batch.aux['parsing']: set data.aux.parsing to the "
                              "folder of the parsing PNGs, or use teacher: bands")
        return part_map_from_parsing(batch.aux["parsing"])

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        ex = output.extras
        missing = [k for k in ("attention", "proxy_attention", "patch_tokens", "patch_geometry") if k not in ex]
        if missing:
            raise ValueError(f"sap_distill: the model output has no extras {missing} (use model sap)")
        patch, stride = (int(v) for v in ex["patch_geometry"][:2])
        num_parts = ex["proxy_attention"].shape[1]
        groups = num_parts + 1 if self.teacher == "bands" else NUM_GROUPS
        m_hat, m_f = patch_part_targets(self.part_map(output, batch, num_parts), groups, patch, stride,
                                        self.lam, self.gamma)  # (B, N, G), (B, N)
        if m_hat.shape[1] != ex["patch_tokens"].shape[1]:
            raise ValueError(f"sap_distill: the teacher's map gives {m_hat.shape[1]} patches, the model "
                             f"{ex['patch_tokens'].shape[1]} (parsing maps at another size than the images?)")
        dropped = ssd_drop_mask(ex["patch_tokens"], self.drop) if self.training else None
        total = ex["attention"].new_zeros((), dtype=torch.float32)
        if self.patch_weight:
            total = total + self.patch_weight * patch_distillation(ex["attention"], patch_affinity_target(m_hat, m_f),
                                                                   dropped)
        if self.proxy_weight:
            total = total + self.proxy_weight * proxy_distillation(ex["proxy_attention"], m_hat, dropped)
        return total

    def extra_repr(self) -> str:
        return (f"teacher={self.teacher!r}, patch_weight={self.patch_weight}, proxy_weight={self.proxy_weight}, "
                f"lam={self.lam}, gamma={self.gamma}, drop={self.drop}")


class SAPPartID(nn.Module):
    """Identity loss of the part features: label-smoothed cross-entropy of ``extras["part_logits"]``
    (B, P, N_ids), averaged over the parts (METHODS.md §14 "CE + triplet on [cls] and the proxies").

    Args:
        epsilon: label smoothing (0.1).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        from vireid.losses.identity import cross_entropy_label_smooth

        if "part_logits" not in output.extras:
            raise ValueError("sap_part_id: the model output has no extras['part_logits'] (model sap with classes)")
        logits = output.extras["part_logits"]  # (B, P, N)
        p = logits.shape[1]
        return cross_entropy_label_smooth(logits.flatten(0, 1), batch.pids.repeat_interleave(p), self.epsilon)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
