"""SAP's student: a ViT with learnable part proxies, proxy attention and MAPR (seeds/002 §4; METHODS.md §14).

* The ViT (:class:`vireid.models.vit.ReIDViT`, no modality embedding): tokens ``I`` = [cls] + N patches; the
  last block's patch attention ``softmax(I W_q (I W_k)^T / sqrt(D))`` (head-averaged) is what L_patch
  distils.
* Learnable part proxies ``Q_proxy`` (P x D) and the proxy attention ``softmax(Q_proxy (I'W'_k)^T / sqrt(d))
  I'W'_v`` over the patch tokens ``I'`` (one head, d = D): its weights are what L_proxy distils.
* MAPR (mutual-absorption partition refinement, our reading of the slide's two cross-attentions): the proxies
  absorb the patches (proxy -> patch, Q = proxies, K/V = patches), then the patches absorb the updated
  proxies (patch -> proxy, Q = patches, K/V = proxies), then the proxies attend once more to the refined
  patches with the same weights. Without MAPR the part features are the first pass.
* Features: "CE + triplet on [cls] and the proxies" [UNSPEC]: [cls] and each part feature get a BNNeck and a
  classifier; the embedding is their concatenation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from vireid.models.head import ReIDHead
from vireid.models.vit import ReIDViT
from vireid.types import ModelOutput

__all__ = ["CrossAttention", "SAP", "SAP_EXTRAS"]

SAP_EXTRAS = ("attention", "proxy_attention", "patch_tokens", "patch_geometry", "part_logits")


class CrossAttention(nn.Module):
    """One-head pre-norm cross-attention block: ``x + proj(softmax(q k^T / sqrt(D)) v)``, then an MLP.

    ``forward(query (B, M, D), context (B, N, D)) -> (out (B, M, D), attention (B, M, N))``.
    """

    def __init__(self, dim: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_out = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kv = self.norm_kv(context)  # (B, N, D)
        scores = (self.q(self.norm_q(query)) * self.scale) @ self.k(kv).transpose(1, 2)  # (B, M, N)
        attn = scores.float().softmax(dim=-1)  # (B, M, N)
        out = query + self.proj(attn.to(kv.dtype) @ self.v(kv))  # (B, M, D)
        return out + self.mlp(self.norm_out(out)), attn


class SAP(nn.Module):
    """SAP student: ViT -> [cls] + part proxies (proxy attention, MAPR) -> BNNecks -> classifiers.

    ``forward(images (B, 3, H, W), modality (B,))`` returns, in train and eval mode alike, a
    :class:`ModelOutput` with ``features`` = [cls] and the P part features concatenated, before their
    BNNecks (B, (1 + P) D) [triplet], ``bn_features`` = the same after them (B, (1 + P) D) [retrieval],
    ``logits`` = the [cls] classifier's (B, N_ids) or None, and ``extras``:

    * ``"attention"``: the last block's head-averaged attention (B, 1 + N, 1 + N) [L_patch];
    * ``"proxy_attention"``: the proxies' attention over the patches, first pass (B, P, N) [L_proxy];
    * ``"patch_tokens"``: the final patch tokens I' (B, N, D) [SSD];
    * ``"patch_geometry"``: ``[patch_size, stride, grid_h, grid_w]`` (4,) int64 [the teacher's patches];
    * ``"part_logits"``: each part's classifier (B, P, N_ids), only with a classifier [identity loss on parts].

    Args:
        num_classes: training identities (0 = no classifiers).
        num_parts: part proxies P (7: the parsing teacher's coarse groups without background; the bands
            teacher cuts the image into P bands).
        mapr: mutual-absorption partition refinement (see the module docs).
        arch, img_size, patch_size, stride, drop_path, embed_dim, depth, num_heads, mlp_ratio, pretrained: the
            ViT's (:class:`~vireid.models.vit.ReIDViT`; the paper: ViT-B/16 at 256x128, S = 12).
    """

    traceable_forward: ClassVar[bool] = True  # ONNX export traces forward as is

    def __init__(
        self,
        num_classes: int,
        *,
        num_parts: int = 7,
        mapr: bool = True,
        arch: str = "vit_base",
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        drop_path: float = 0.1,
        embed_dim: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        mlp_ratio: float | None = None,
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if num_parts < 1:
            raise ValueError(f"SAP: num_parts must be >= 1, got {num_parts}")
        self.backbone = ReIDViT(arch, img_size=img_size, patch_size=patch_size, stride=stride, modality_embed=False,
                                drop_path=drop_path, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                                mlp_ratio=mlp_ratio, pretrained=pretrained)
        dim = self.backbone.out_channels
        self.num_parts, self.mapr, self.dim = num_parts, bool(mapr), dim
        self.proxies = nn.Parameter(torch.randn(1, num_parts, dim) * 0.02)  # Q_proxy
        self.proxy_attn = CrossAttention(dim)  # proxy -> patch
        self.patch_absorb = CrossAttention(dim) if self.mapr else None  # patch -> proxy
        # [cls], then the parts: each a BNNeck and a bias-free classifier (ReIDHead on a flat feature)
        self.heads = nn.ModuleList([ReIDHead(dim, num_classes, nn.Identity()) for _ in range(1 + num_parts)])
        self.num_classes = num_classes
        self.out_dim = (1 + num_parts) * dim
        geometry = [self.backbone.patch_embed.patch_size, self.backbone.patch_embed.stride, *self.backbone.grid_size]
        self.register_buffer("patch_geometry", torch.tensor(geometry, dtype=torch.int64), persistent=False)

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh bias-free classifiers for [cls] and every part (0 = none)."""
        self.num_classes = num_classes
        for head in self.heads:
            head.reset_classifier(num_classes)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) images, (B,) modality labels (unused) -> ModelOutput (see the class docs)."""
        tokens, attn = self.backbone.forward_tokens(images, modality, return_attention=True)  # (B, T, D), (B, h, T, T)
        patches = tokens[:, 1:]  # (B, N, D): I'
        proxies = self.proxies.expand(tokens.shape[0], -1, -1).to(tokens.dtype)  # (B, P, D)
        parts, proxy_attn = self.proxy_attn(proxies, patches)  # (B, P, D), (B, P, N)
        if self.patch_absorb is not None:
            refined, _ = self.patch_absorb(patches, parts)  # (B, N, D): patches absorb the proxies
            parts, _ = self.proxy_attn(parts, refined)  # (B, P, D): proxies absorb the refined patches
        feats = torch.cat([tokens[:, :1], parts], dim=1).float()  # (B, 1 + P, D)
        outs = [head(feats[:, i]) for i, head in enumerate(self.heads)]  # BNNeck + classifier of each
        bn = torch.stack([o.bn_features for o in outs], dim=1)  # (B, 1 + P, D)
        extras = {"attention": attn.mean(dim=1), "proxy_attention": proxy_attn, "patch_tokens": patches,
                  "patch_geometry": self.patch_geometry}
        logits = None
        if self.num_classes > 0:
            all_logits = torch.stack([o.logits for o in outs], dim=1)  # (B, 1 + P, N)
            logits, extras["part_logits"] = all_logits[:, 0], all_logits[:, 1:]
        return ModelOutput(features=feats.flatten(1), bn_features=bn.flatten(1), logits=logits, extras=extras)
