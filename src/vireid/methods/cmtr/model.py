"""CMTR's network: a ViT with learnable modality embeddings, the BNNeck feature and the modality removal.

Liang et al., "CMTR: Cross-modality Transformer for Visible-infrared Person Re-identification"
(seeds/001 §2; METHODS.md §6):

* input embedding ``I(x^m) = LP(overlapping patches) + e^pos + e^m`` (§3.2), ``e^m`` added to every
  token, [cls] included [UNSPEC, METHODS.md §6];
* ``f^m = BN(V^m)``: the [cls] output after the BNNeck, the test feature [seed];
* the modality removal ``f^m - phi_m(e^m)`` with ``phi_m`` a per-modality ``Linear(D, D)``
  [UNSPEC→METHODS.md §6], and ``FC_id`` the shared identity classifier applied to it (L_MAID).

The losses (L_MAC, L_MAID) live in :mod:`vireid.methods.cmtr.losses`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from vireid.models.head import ReIDHead
from vireid.models.vit import ClsTokenPool, ReIDViT
from vireid.types import ModelOutput

__all__ = ["CMTR"]


class CMTR(nn.Module):
    """CMTR: :class:`~vireid.models.vit.ReIDViT` with modality embeddings -> [cls] -> BNNeck -> classifier.

    ``forward(images (B, 3, H, W), modality (B,))`` returns, in train and eval mode alike, a
    :class:`ModelOutput` with ``features`` = the [cls] output V (B, D) [WRT], ``bn_features`` =
    ``f = BN(V)`` (B, D) [identity loss, retrieval], ``logits`` = ``FC_id(f)`` (B, N) or None, and
    ``extras``:

    * ``"modality_shift"``: ``phi_m(e^m)`` of each image's modality (B, D);
    * ``"removed_features"``: ``f - phi_m(e^m)`` (B, D) [L_MAC];
    * ``"removed_logits"``: ``FC_id(f - phi_m(e^m))`` (B, N), only with a classifier [L_MAID].

    With ``subtract_at_test`` the eval-mode ``bn_features`` (the retrieval embedding) are the removed
    features ``f - phi_m(e^m)`` instead of ``f`` (METHODS.md §6: off by default; the seed tests on ``f``).
    Training mode is unaffected.

    Args:
        num_classes: training identities (0 = no classifier: no logits, no ``removed_logits``).
        arch, img_size, patch_size, stride, drop_path, embed_dim, depth, num_heads, mlp_ratio, pretrained:
            the ViT's (:class:`~vireid.models.vit.ReIDViT`; the paper: ``vit_base``, 256x128, P=16, S=12,
            ImageNet ViT-B/16 weights from a local file).
        modality_embed: learnable modality embeddings (CMTR's ME; False: the plain ViT with the MAE
            losses reading ``phi_m`` of a zero vector, i.e. a learned per-modality bias).
        subtract_at_test: retrieve with ``f - phi_m(e^m)``.
    """

    traceable_forward: ClassVar[bool] = True  # ONNX export traces forward as is (the ME is a gather)

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "vit_base",
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        modality_embed: bool = True,
        subtract_at_test: bool = False,
        drop_path: float = 0.1,
        embed_dim: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        mlp_ratio: float | None = None,
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = ReIDViT(arch, img_size=img_size, patch_size=patch_size, stride=stride,
                                modality_embed=modality_embed, drop_path=drop_path, embed_dim=embed_dim,
                                depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, pretrained=pretrained)
        dim = self.backbone.out_channels
        self.head = ReIDHead(dim, num_classes, ClsTokenPool())
        self.phi = nn.ModuleList([nn.Linear(dim, dim) for _ in range(2)])  # phi_vis, phi_ir
        self.subtract_at_test = bool(subtract_at_test)
        self.out_dim = dim

    def modality_shifts(self) -> torch.Tensor:
        """``phi_m(e^m)`` for m = visible, infrared: (2, D) float32."""
        me = self.backbone.modality_embed
        rows = [me[m] if me is not None else self.phi[m].weight.new_zeros(self.out_dim) for m in range(2)]
        return torch.stack([self.phi[m](rows[m].float()) for m in range(2)])  # (2, D)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) images, (B,) modality labels -> ModelOutput (see the class docs)."""
        out = self.head(self.backbone(images, modality))  # features, bn_features (B, D) float32
        shift = self.modality_shifts().to(out.bn_features.dtype)[modality.long()]  # (B, D)
        removed = out.bn_features - shift  # (B, D)
        extras = {"modality_shift": shift, "removed_features": removed}
        if self.head.classifier is not None:
            extras["removed_logits"] = self.head.classifier(removed)  # (B, N): the shared FC_id
        bn = removed if (self.subtract_at_test and not self.training) else out.bn_features
        return ModelOutput(features=out.features, bn_features=bn, logits=out.logits, extras=extras)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the identity classifier."""
        self.head.reset_classifier(num_classes)
