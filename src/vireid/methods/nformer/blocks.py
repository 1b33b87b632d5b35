"""NFormer blocks and the encoder that refines a set of embeddings jointly (seeds/001 §3.1).

Block (the paper's Fig. "LAA + RNS, FF, residual + LayerNorm"; post-LN as the public code):
``n = LN(x + Proj(RNS(A~) V))``, ``out = LN(n + FF(n))`` with ``FF = Linear(d, 4d) -> GELU ->
Linear(4d, d)``. :class:`NFormerEncoder` = input projection -> blocks -> BNNeck; it takes any
number of rows N (a training batch, or every query and gallery feature of a test set) and the
rows' modality labels (for ``cross_modal_quota``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid.methods.nformer.attention import (default_scale, landmark_factors, neighbour_lists,
                                              reciprocal_candidates, rns_aggregate)
from vireid.models.layers import BNNeck

__all__ = ["NEIGHBOURS", "NFormerBlock", "NFormerEncoder"]

NEIGHBOURS = ("affinity", "input")


def sample_landmarks(n: int, m: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """``min(m, n)`` distinct row indices drawn uniformly (seeds/001 §3.2 "randomly sample m inputs")."""
    return torch.randperm(n, generator=generator, device="cpu")[: min(m, n)].to(device)


class NFormerBlock(nn.Module):
    """One NFormer block: LAA + RNS multi-head attention, feed-forward, residual + LayerNorm.

    Args:
        dim: embedding size d. heads: attention heads (d divisible by heads).
        landmarks: m (seed: 5; public code: 10). dropout: on the attention and FF outputs.
    """

    def __init__(self, dim: int, *, heads: int = 2, landmarks: int = 5, dropout: float = 0.1,
                 pre_norm: bool = False) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        if dim % heads:
            raise ValueError(f"NFormerBlock: dim {dim} is not divisible by heads {heads}")
        if landmarks < 1:
            raise ValueError(f"NFormerBlock: landmarks must be >= 1, got {landmarks}")
        self.heads, self.landmarks = heads, landmarks
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, d) -> per-head Q, K, V, each (h, N, d / h)."""
        n = x.shape[0]
        q, k, v = self.qkv(x).reshape(n, 3, self.heads, -1).permute(1, 2, 0, 3)  # 3 x (h, N, dh)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        *,
        topk: int,
        modality: torch.Tensor | None = None,
        quota: int = 0,
        input_lists: torch.Tensor | None = None,
        landmarks: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int = 1024,
    ) -> torch.Tensor:
        """(N, d) -> (N, d). ``input_lists`` (1, N, k): fixed neighbour lists (the code's reading),
        else each head's top-k of its own ``A~`` (the paper). ``landmarks`` (m,): else drawn."""
        n = x.shape[0]
        q, k, v = self.split(self.ln1(x) if self.pre_norm else x)  # (h, N, dh) each
        lm = landmarks if landmarks is not None else sample_landmarks(n, self.landmarks, x.device, generator)
        q_t, k_t = landmark_factors(q, k, lm)  # (h, N, m) each
        if input_lists is None:
            lists = neighbour_lists(q_t, k_t, topk, modality=modality, quota=quota, chunk_size=chunk_size)
        else:
            lists = input_lists.expand(self.heads, -1, -1)  # (h, N, k)
        cols, valid = reciprocal_candidates(lists)  # (h, N, k + 1)
        a = rns_aggregate(q_t, k_t, v, cols, valid, scale=default_scale(q.shape[-1]), chunk_size=chunk_size)
        a = self.drop(self.proj(a.permute(1, 0, 2).reshape(n, -1)))  # (N, d)
        if self.pre_norm:  # x + Attn(LN(x)), then + FF(LN(.)): the residual stream keeps the input
            h = x + a
            return h + self.drop(self.ff(self.ln2(h)))  # (N, d)
        h = self.ln1(x + a)  # (N, d)
        return self.ln2(h + self.drop(self.ff(h)))  # (N, d)


class NFormerEncoder(nn.Module):
    """Input projection -> ``blocks`` NFormer blocks -> BNNeck (the refiner, trained and tested alike).

    The input rows are L2-normalised first (the test features reach the refiner normalised, so the
    training batch does too) and scaled by sqrt(in_dim), so that their entries have about unit size:
    at unit norm (entries ~ 1/sqrt(in_dim)) the layers' biases swamp them and every row leaves the
    blocks nearly the same (seen on the first synthetic run: refined identity loss stuck at ln(#ids)).

    Args:
        in_dim: size of the incoming embedding. dim: NFormer width d (a linear projection when
            different from ``in_dim``). blocks, heads, landmarks: 4, 2, 5 (METHODS.md §8).
        topk: neighbours k (20, the public code). neighbours: ``"affinity"`` (paper: top-k of each
            block's LAA affinity) or ``"input"`` (public code: top-k cosine of the input, once).
        cross_modal_quota: neighbours reserved for the other modality (0 = off).
        dropout: 0.1 (public code).
        pre_norm: ``x + Attn(LN(x))``, ``+ FF(LN(.))`` instead of the paper's and public code's post-LN
            ``LN(x + Attn(x))``, ``LN(. + FF(.))``. Trained end to end from scratch, post-LN blocks barely
            learn at the CPU budget (identity loss 4.79 vs 3.12 after 180 steps on a trained CNN's
            synthetic features, 136 ids; README), so the synthetic recipe uses pre-LN. Pre-LN ends with
            a LayerNorm (without it the refined features grew and the triplet loss rose 5.0 -> 5.4).
    """

    def __init__(
        self,
        in_dim: int,
        *,
        dim: int = 256,
        blocks: int = 4,
        heads: int = 2,
        landmarks: int = 5,
        topk: int = 20,
        neighbours: Literal["affinity", "input"] = "affinity",
        cross_modal_quota: int = 0,
        dropout: float = 0.1,
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        if neighbours not in NEIGHBOURS:
            raise ValueError(f"NFormerEncoder: neighbours must be one of {NEIGHBOURS}, got {neighbours!r}")
        if topk < 1 or not 0 <= cross_modal_quota <= topk:
            raise ValueError(f"NFormerEncoder: need topk >= 1 and 0 <= cross_modal_quota <= topk, "
                             f"got topk={topk}, cross_modal_quota={cross_modal_quota}")
        self.topk, self.neighbours, self.cross_modal_quota = topk, neighbours, cross_modal_quota
        self.landmarks = landmarks
        self.proj: nn.Module = nn.Identity() if dim == in_dim else nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(
            NFormerBlock(dim, heads=heads, landmarks=landmarks, dropout=dropout, pre_norm=pre_norm) for _ in range(blocks))
        # pre-LN: a final LayerNorm bounds the residual stream (as pre-LN transformers end)
        self.final_norm: nn.Module = nn.LayerNorm(dim) if pre_norm else nn.Identity()
        self.bnneck = BNNeck(dim)
        self.out_dim = dim

    def forward(
        self,
        z: torch.Tensor,
        modality: torch.Tensor | None = None,
        *,
        topk: int | None = None,
        cross_modal_quota: int | None = None,
        landmarks: list[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int = 1024,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, in_dim) embeddings, (N,) modality -> ``(refined (N, d), after the BNNeck (N, d))``.

        ``topk``/``cross_modal_quota`` override the trained values (test time); ``landmarks``
        gives each block's (m,) indices (else drawn with ``generator``)."""
        k = self.topk if topk is None else int(topk)
        quota = self.cross_modal_quota if cross_modal_quota is None else int(cross_modal_quota)
        if not 0 <= quota <= k:
            raise ValueError(f"NFormer: cross_modal_quota must be in 0..topk ({k}), got {quota}")
        unit = F.normalize(z.to(self.bnneck.weight.dtype), dim=1)  # (N, in_dim), in the parameters' dtype
        x = self.proj(unit * math.sqrt(unit.shape[1]))  # (N, d)
        input_lists = None
        if self.neighbours == "input":
            unit = unit[None]  # (1, N, in_dim)
            input_lists = neighbour_lists(unit, unit, k, modality=modality, quota=quota, chunk_size=chunk_size)
        for i, block in enumerate(self.blocks):
            x = block(x, topk=k, modality=modality, quota=quota, input_lists=input_lists,
                      landmarks=None if landmarks is None else landmarks[i], generator=generator,
                      chunk_size=chunk_size)
        x = self.final_norm(x)  # (N, d)
        return x, self.bnneck(x)
