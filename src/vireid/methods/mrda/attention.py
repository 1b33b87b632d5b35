"""Attention poolers for the final map: MRDA's dynamic attention module (DAM) and the Table-1 alternatives.

DAM: Zhang et al., "Cross-Modal Person Re-Identification Based on Mask Reconstruction with Dynamic
Attention" (MRDA), seeds/003 §2.4 Eq. 9-17; METHODS.md §1 "DAM" and "Ambiguities". The
alternatives MRDA swaps in for DAM (seeds/003 Table 1):

* BAM, Park et al., BMVC 2018 ("BAM: Bottleneck Attention Module"): ``F' = F * (1 + sigmoid(M_c + M_s))``;
* CBAM, Woo et al., ECCV 2018 ("CBAM: Convolutional Block Attention Module"): ``F'' = M_s(F') * F'``,
  ``F' = M_c(F) * F``;
* IWPAM, the intra-modality weighted-part attention of DDAG (Ye et al., ECCV 2020), after the
  public DDAG code (``attention.py``, class ``IWPA``, with one frame per image).

Every pooler maps a (B, C, H, W) map to a (B, C) float32 embedding, so it plugs into
:class:`~vireid.models.head.ReIDHead` as its ``pool``: DAM and IWPAM add their attended vector to
``GeM(f)`` (a residual sum), BAM and CBAM refine the map and then GeM-pool it, ``"none"`` is plain
GeM. Build one with :func:`build_attention_pool`.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from vireid.models.layers import GeM

logger = logging.getLogger(__name__)

__all__ = [
    "ATTENTIONS", "DAM_MODES", "BAM", "CBAM", "DynamicAttention", "IWPAttention", "RefinedGeM",
    "build_attention_pool", "gather_regions", "region_affinity", "region_tokens", "top_regions",
]

ATTENTIONS: tuple[str, ...] = ("dam", "bam", "cbam", "iwpam", "none")
DAM_MODES: tuple[str, ...] = ("select_q", "route_kv")


# ----------------------------------------------------------------------------- DAM building blocks


def region_tokens(x: torch.Tensor, num_regions: int) -> torch.Tensor:
    """Split a map into ``num_regions`` horizontal bands of tokens: (B, C, H, W) -> (B, R, (H/R)*W, C).

    Band ``r`` holds rows ``r*H/R .. (r+1)*H/R - 1``, tokens in row-major order.
    """
    b, c, h, w = x.shape
    if num_regions < 1 or h % num_regions:
        raise ValueError(f"region_tokens: the map height {h} is not a multiple of num_regions={num_regions}")
    rows = h // num_regions
    t = x.reshape(b, c, num_regions, rows * w)  # (B, C, R, T)
    return t.permute(0, 2, 3, 1)  # (B, R, T, C)


def region_affinity(q_tokens: torch.Tensor, k_tokens: torch.Tensor) -> torch.Tensor:
    """Eq. 10-11: ``M_aff = avg(Q) @ avg(K)^T`` over horizontal regions: (B, R, T, C) x2 -> (B, R, R)."""
    q_avg = q_tokens.mean(dim=2)  # (B, R, C)
    k_avg = k_tokens.mean(dim=2)  # (B, R, C)
    return q_avg @ k_avg.transpose(1, 2)  # (B, R, R)


def top_regions(affinity: torch.Tensor, k: int, mode: str = "select_q") -> torch.Tensor:
    """Eq. 12, ``M_index = topk(M_aff)``, under the two readings of METHODS.md §1.

    * ``"select_q"`` (reading A, default): region score ``M_aff.sum(-1)``; the ``k`` best regions
      of each image, (B, R, R) -> (B, k), in increasing region order.
    * ``"route_kv"`` (reading B, BiFormer-style routing): for each query region the ``k`` regions
      of highest affinity, (B, R, R) -> (B, R, k), in increasing region order.
    """
    if mode not in DAM_MODES:
        raise ValueError(f"top_regions: mode must be one of {DAM_MODES}, got {mode!r}")
    r = affinity.shape[-1]
    if not 1 <= k <= r:
        raise ValueError(f"top_regions: need 1 <= k <= {r} regions, got k={k}")
    scores = affinity.sum(dim=-1) if mode == "select_q" else affinity  # (B, R) or (B, R, R)
    index = scores.topk(k, dim=-1).indices  # (B, k) or (B, R, k)
    return index.sort(dim=-1).values


def gather_regions(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Eq. 13, ``gather``: pick regions of (B, R, T, C) tokens by a (B, k) or (B, R', k) index.

    Returns (B, k, T, C) or (B, R', k, T, C).
    """
    batch = torch.arange(tokens.shape[0], device=tokens.device)  # (B,)
    batch = batch.view(-1, *([1] * (index.dim() - 1)))  # (B, 1) or (B, 1, 1)
    return tokens[batch, index]  # (B, k, T, C) or (B, R', k, T, C)


class DynamicAttention(nn.Module):
    """MRDA's dynamic attention module (DAM), seeds/003 §2.4 Eq. 9-17, as a pooler (B, C, H, W) -> (B, C).

    ``Q, K, V = Conv1x1(f)`` (Eq. 9); horizontal region pooling and the region affinity
    ``M_aff = Q_avg K_avg^T`` (Eq. 10-11); top-k regions (Eq. 12) gathered (Eq. 13); attention
    ``alpha = softmax(Q_index K^T / sqrt(C_q))`` (Eq. 14) and ``f_bar = alpha V`` (Eq. 15); the
    embedding ``F_bar = GeM(f) + mean(f_bar)`` (Eq. 16-17, the residual sum of METHODS.md).

    Modes (METHODS.md §1 "Ambiguities"):

    * ``"select_q"`` (reading A, default): keep the ``k`` regions of highest total affinity;
      their (k*T) query tokens attend to all H*W keys; ``f_bar`` is averaged over those tokens.
    * ``"route_kv"`` (reading B): every query region attends to the tokens of its own ``k``
      most affine regions (keys and values gathered, as in BiFormer's routing); ``f_bar`` is
      averaged over all H*W query tokens.

    Args:
        channels: C of the incoming map (V keeps C channels so it can be added to GeM(f)).
        qk_channels: C_q of Q and K (MRDA default 256).
        k: regions kept (MRDA default 6 of 18). A map with fewer regions keeps all of them.
        num_regions: horizontal regions R; ``None`` = one per row of the map. Must divide H.
        mode: ``"select_q"`` or ``"route_kv"``.
        gem_p: exponent of the GeM branch (MRDA: b = 3).
    """

    def __init__(
        self,
        channels: int,
        *,
        qk_channels: int = 256,
        k: int = 6,
        num_regions: int | None = None,
        mode: str = "select_q",
        gem_p: float = 3.0,
    ) -> None:
        super().__init__()
        if mode not in DAM_MODES:
            raise ValueError(f"DynamicAttention: mode must be one of {DAM_MODES}, got {mode!r}")
        if k < 1 or qk_channels < 1 or (num_regions is not None and num_regions < 1):
            raise ValueError(f"DynamicAttention: need k, qk_channels, num_regions >= 1, "
                             f"got k={k}, qk_channels={qk_channels}, num_regions={num_regions}")
        self.channels, self.qk_channels, self.k = channels, qk_channels, k
        self.num_regions, self.mode = num_regions, mode
        self.query = nn.Conv2d(channels, qk_channels, kernel_size=1)
        self.key = nn.Conv2d(channels, qk_channels, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gem = GeM(gem_p)
        self._warned_k = False

    def _effective_k(self, regions: int) -> int:
        if self.k <= regions:
            return self.k
        if not self._warned_k:
            logger.warning("DynamicAttention: k=%d exceeds the %d regions of the map; keeping all %d",
                           self.k, regions, regions)
            self._warned_k = True
        return regions

    def attend(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attended tokens and the selected regions (for inspection and tests).

        Returns:
            ``f_bar`` (B, k*T, C) for ``select_q`` or (B, R, T, C) for ``route_kv``, and the region
            index (B, k) or (B, R, k).
        """
        b, c, h, w = f.shape  # (B, C, H, W)
        regions = self.num_regions or h
        q = region_tokens(self.query(f), regions)  # (B, R, T, Cq)
        key = region_tokens(self.key(f), regions)  # (B, R, T, Cq)
        v = region_tokens(self.value(f), regions)  # (B, R, T, C)
        index = top_regions(region_affinity(q, key), self._effective_k(regions), self.mode)  # (B, k) | (B, R, k)
        scale = 1.0 / math.sqrt(self.qk_channels)
        if self.mode == "select_q":
            q_sel = gather_regions(q, index).flatten(1, 2)  # (B, k*T, Cq)
            keys = key.flatten(1, 2)  # (B, H*W, Cq)
            alpha = torch.softmax(q_sel @ keys.transpose(1, 2) * scale, dim=-1)  # (B, k*T, H*W)
            return alpha @ v.flatten(1, 2), index  # (B, k*T, C)
        k_sel = gather_regions(key, index).flatten(2, 3)  # (B, R, k*T, Cq)
        v_sel = gather_regions(v, index).flatten(2, 3)  # (B, R, k*T, C)
        alpha = torch.softmax(q @ k_sel.transpose(2, 3) * scale, dim=-1)  # (B, R, T, k*T)
        return alpha @ v_sel, index  # (B, R, T, C)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C) float32: ``GeM(f) + mean(f_bar)`` (Eq. 16)."""
        f_bar, _ = self.attend(f)
        attended = f_bar.float().flatten(1, -2).mean(dim=1)  # (B, C)
        return self.gem(f) + attended  # (B, C)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, qk_channels={self.qk_channels}, k={self.k}, "
                f"num_regions={self.num_regions}, mode={self.mode!r}")


# ----------------------------------------------------------------------------- Table-1 alternatives


class BAM(nn.Module):
    """Bottleneck attention module (Park et al., BMVC 2018), (B, C, H, W) -> (B, C, H, W).

    ``F' = F * (1 + sigmoid(M_c(F) + M_s(F)))`` with the channel branch
    ``M_c = MLP(GAP(F))`` (C -> C/r -> C, BN + ReLU in the middle) and the spatial branch
    1x1 reduce -> two 3x3 convs of dilation ``d`` -> 1x1 to one channel. The paper's sum of the
    two branches is used (the authors' code multiplies them).
    """

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.channel_gate = nn.Sequential(
            nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation),
                       nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(hidden, 1, 1))
        self.spatial_gate = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_c = self.channel_gate(x.mean(dim=(2, 3)))[:, :, None, None]  # (B, C, 1, 1)
        m_s = self.spatial_gate(x)  # (B, 1, H, W)
        return x * (1 + torch.sigmoid(m_c + m_s))  # (B, C, H, W)


class CBAM(nn.Module):
    """Convolutional block attention module (Woo et al., ECCV 2018), (B, C, H, W) -> (B, C, H, W).

    Channel attention ``M_c = sigmoid(MLP(AvgPool F) + MLP(MaxPool F))`` (shared MLP
    C -> C/r -> C), then spatial attention ``M_s = sigmoid(conv_kxk([mean_c F'; max_c F']))``;
    ``F'' = M_s * (M_c * F)``.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_c = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))  # (B, C)
        x = x * m_c[:, :, None, None]  # (B, C, H, W)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.spatial(pooled))  # (B, C, H, W)


class IWPAttention(nn.Module):
    """Intra-modality weighted-part attention (IWPA of DDAG, Ye et al., ECCV 2020) as a pooler (B, C, H, W) -> (B, C).

    As the public DDAG code with one frame per image: ``p`` horizontal part features
    (adaptive average pooling), cross-part attention ``softmax(fc1(P) fc2(P)^T)`` (no scaling, as
    in the code) applied to ``fc3(P)``, the refined parts combined with learnable weights
    ``softmax(gate)`` (initialised uniform) and added to the global feature ``GeM(f)``.
    """

    def __init__(self, channels: int, parts: int = 3, gem_p: float = 3.0) -> None:
        super().__init__()
        if parts < 1:
            raise ValueError(f"IWPAttention: parts must be >= 1, got {parts}")
        self.parts = parts
        self.fc1 = nn.Linear(channels, channels)
        self.fc2 = nn.Linear(channels, channels)
        self.fc3 = nn.Linear(channels, channels)
        self.gate = nn.Parameter(torch.full((parts,), 1.0 / parts))
        self.gem = GeM(gem_p)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        parts = F.adaptive_avg_pool2d(f, (self.parts, 1)).flatten(2).transpose(1, 2)  # (B, p, C)
        att = torch.softmax(self.fc1(parts) @ self.fc2(parts).transpose(1, 2), dim=-1)  # (B, p, p)
        refined = att @ self.fc3(parts)  # (B, p, C)
        weighted = torch.einsum("bpc,p->bc", refined.float(), torch.softmax(self.gate.float(), dim=0))  # (B, C)
        return self.gem(f) + weighted  # (B, C)


class RefinedGeM(nn.Module):
    """A map-refining attention followed by GeM: (B, C, H, W) -> (B, C) float32."""

    def __init__(self, refine: nn.Module, gem_p: float = 3.0) -> None:
        super().__init__()
        self.refine = refine
        self.gem = GeM(gem_p)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.gem(self.refine(f))  # (B, C)


def build_attention_pool(
    name: str,
    channels: int,
    *,
    gem_p: float = 3.0,
    dam_k: int = 6,
    dam_mode: str = "select_q",
    dam_qk_channels: int = 256,
    dam_regions: int | None = None,
    reduction: int = 16,
    iwpa_parts: int = 3,
) -> nn.Module:
    """The pooler ``name`` in :data:`ATTENTIONS` for a C-channel map: (B, C, H, W) -> (B, C).

    ``dam_*`` configure :class:`DynamicAttention`, ``reduction`` BAM/CBAM, ``iwpa_parts``
    :class:`IWPAttention`; ``"none"`` is plain GeM. Unused options are ignored.
    """
    if name == "dam":
        return DynamicAttention(channels, qk_channels=dam_qk_channels, k=dam_k, num_regions=dam_regions,
                                mode=dam_mode, gem_p=gem_p)
    if name == "bam":
        return RefinedGeM(BAM(channels, reduction), gem_p)
    if name == "cbam":
        return RefinedGeM(CBAM(channels, reduction), gem_p)
    if name == "iwpam":
        return IWPAttention(channels, iwpa_parts, gem_p)
    if name == "none":
        return GeM(gem_p)
    raise ValueError(f"unknown attention {name!r}; valid: {', '.join(ATTENTIONS)}")
