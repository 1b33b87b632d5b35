"""A Vision Transformer backbone for re-ID, built on timm's ``VisionTransformer`` blocks.

The re-ID ViT of TransReID (He et al., ICCV 2021) and CMTR (seeds/001 §2; METHODS.md §6):

* overlapping patch embedding: P x P patches at stride S < P ("soft split", seeds/001 §2 §3.1), a
  ``Conv2d(3, D, kernel=P, stride=S)``, so the token grid is ``(floor((H-P)/S)+1, floor((W-P)/S)+1)``
  (METHODS.md §6 "Ambiguities": the seed's ``N = (H/P)(W/P)`` holds only for S = P);
* a learnable [cls] token, learnable absolute position embeddings ``e^pos`` for [cls] + N patches;
* optional learnable modality embeddings ``e^m``, one D-vector per modality added to every token,
  [cls] included (CMTR's ME, METHODS.md §6 Eq. ``I(x^m) = LP(patches) + e^pos + e^m``);
* timm's pre-norm transformer :class:`timm.models.vision_transformer.Block` stack and final LayerNorm
  (the same modules and parameter names as ``timm.models.VisionTransformer``, so timm / jx_vit
  checkpoints load: :mod:`vireid.models.vit_weights`).

:class:`ViTReID` is the plain re-ID model on top ([cls] output -> BNNeck -> classifier, the model
contract ``model(images, modality) -> ModelOutput``), registered as model ``vit``; the CMTR, SAP
and SPOT models reuse :class:`ReIDViT` as their ``backbone``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from functools import partial

import torch
from torch import nn

from vireid.errors import ConfigError
from vireid.models.base import BackboneHeadModel
from vireid.models.head import ReIDHead
from vireid.models.registry import register_model

logger = logging.getLogger(__name__)

__all__ = ["VIT_ARCHS", "ClsTokenPool", "OverlapPatchEmbed", "ReIDViT", "ViTArch", "ViTReID",
           "attention_probs", "patch_grid"]


@dataclass(frozen=True)
class ViTArch:
    """Width D, depth, heads and MLP ratio of a ViT size."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


# timm's sizes (vit_base_patch16_224 etc.) plus a few-layer one that trains on a CPU in minutes.
VIT_ARCHS: dict[str, ViTArch] = {
    "vit_base": ViTArch(768, 12, 12),  # ViT-B/16, the papers' backbone (TransReID, CMTR, SAP)
    "vit_small": ViTArch(384, 12, 6),  # timm vit_small_patch16_224 (DeiT-S has the same shape)
    "vit_tiny": ViTArch(192, 12, 3),  # timm vit_tiny_patch16_224 (DeiT-Ti)
    "vit_cpu": ViTArch(128, 4, 4, 2.0),  # the synthetic CPU recipes: 4 blocks of width 128
}


def patch_grid(img_size: Sequence[int], patch_size: int, stride: int) -> tuple[int, int]:
    """Token grid ``(floor((H-P)/S)+1, floor((W-P)/S)+1)`` of P x P patches at stride S (METHODS.md §6).

    ConfigError when the image is smaller than one patch.
    """
    h, w = int(img_size[0]), int(img_size[1])
    if patch_size < 1 or stride < 1:
        raise ConfigError(f"ViT: patch_size and stride must be >= 1, got {patch_size} and {stride}")
    if h < patch_size or w < patch_size:
        raise ConfigError(f"ViT: image size {h}x{w} is smaller than one {patch_size}x{patch_size} patch")
    return (h - patch_size) // stride + 1, (w - patch_size) // stride + 1


class OverlapPatchEmbed(nn.Module):
    """P x P patches at stride S, linearly projected to D: ``Conv2d(C, D, P, S)`` then flattened.

    Same parameter names as timm's ``PatchEmbed`` (``proj.weight`` (D, C, P, P), ``proj.bias``), so a
    timm checkpoint's non-overlapping projection loads unchanged (only the stride differs).
    """

    def __init__(self, img_size: Sequence[int], patch_size: int, stride: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.patch_size, self.stride = int(patch_size), int(stride)
        self.grid_size = patch_grid(self.img_size, self.patch_size, self.stride)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, D) tokens in row-major grid order."""
        if tuple(images.shape[-2:]) != self.img_size:
            raise ConfigError(
                f"ViT: built for {self.img_size[0]}x{self.img_size[1]} images (model.params.img_size), got "
                f"{images.shape[-2]}x{images.shape[-1]}; set model.params.img_size to data.height, data.width")
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)

    def extra_repr(self) -> str:
        return f"img_size={self.img_size}, patch={self.patch_size}, stride={self.stride}, grid={self.grid_size}"


def attention_probs(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention ``softmax(q k^T / sqrt(d_head))`` of a timm ``Attention`` on its input ``x``.

    ``x`` (B, T, D) is the block's normalised input (``block.norm1(tokens)``); returns (B, heads, T, T),
    rows summing to 1 (dropout not applied). timm's fused attention does not return the weights, so
    they are recomputed from the module's own ``qkv``, ``q_norm``, ``k_norm`` and ``scale``.
    """
    b, t, _ = x.shape
    qkv = attn.qkv(x).reshape(b, t, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, T, d)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # (B, h, T, d)
    scores = (q * attn.scale) @ k.transpose(-2, -1)  # (B, h, T, T)
    return scores.float().softmax(dim=-1)


class ReIDViT(nn.Module):
    """ViT re-ID backbone: overlapping patches + [cls] + ``e^pos`` (+ ``e^m``) -> timm blocks -> LayerNorm.

    ``forward(images (B, 3, H, W), modality (B,))`` returns the normalised tokens (B, 1 + N, D), [cls]
    first; :meth:`forward_tokens` can also return the last block's attention (SAP).

    Args:
        arch: a size of :data:`VIT_ARCHS` (``vit_base`` = ViT-B/16 of the papers; ``vit_cpu`` for CPU).
        img_size: (H, W) of the inputs; fixes the position-embedding grid.
        patch_size: P (16 for ViT-B/16 weights). stride: S (< P overlaps; TransReID and CMTR: 12).
        modality_embed: add a learnable per-modality D-vector to every token (CMTR's ME).
        num_modalities: rows of the modality embedding (visible, infrared).
        drop_path: stochastic depth of the last block (linearly increasing; TransReID: 0.1).
        drop_rate, attn_drop_rate: dropout after the embeddings / of the attention weights.
        embed_dim, depth, num_heads, mlp_ratio: override the arch's values (None = the arch's).
        pretrained: None or a local checkpoint in timm's or the jx_vit format
            (:func:`vireid.models.vit_weights.load_vit_weights`; position embeddings resized bicubically).
    """

    def __init__(
        self,
        arch: str = "vit_base",
        *,
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        modality_embed: bool = True,
        num_modalities: int = 2,
        drop_path: float = 0.1,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        embed_dim: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        mlp_ratio: float | None = None,
        pretrained: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        # timm is imported here, not at module level: importing it costs ~3 s of CPU (huggingface_hub),
        # which every `vireid` command would pay since the model registry imports this module
        from timm.layers import trunc_normal_
        from timm.models.vision_transformer import Block, init_weights_vit_timm

        if arch not in VIT_ARCHS:
            raise ConfigError(f"ViT: unknown arch {arch!r}; valid: {', '.join(VIT_ARCHS)}")
        if len(img_size) != 2:
            raise ConfigError(f"ViT: img_size must be [height, width], got {list(img_size)}")
        spec = VIT_ARCHS[arch]
        dim = embed_dim or spec.embed_dim
        depth = depth or spec.depth
        heads = num_heads or spec.num_heads
        if dim % heads:
            raise ConfigError(f"ViT: embed_dim {dim} is not divisible by num_heads {heads}")
        if stride > patch_size:
            logger.warning("ViT: stride %d > patch_size %d leaves pixels that no patch sees", stride, patch_size)
        self.arch, self.embed_dim, self.num_heads = arch, dim, heads
        self.patch_embed = OverlapPatchEmbed(img_size, patch_size, stride, 3, dim)
        self.num_patches = self.patch_embed.num_patches
        self.grid_size = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, dim))
        self.modality_embed = nn.Parameter(torch.zeros(num_modalities, dim)) if modality_embed else None
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(*[
            Block(dim, heads, mlp_ratio=mlp_ratio or spec.mlp_ratio, qkv_bias=True, proj_drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=r, norm_layer=norm) for r in rates])
        self.norm = norm(dim)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if self.modality_embed is not None:
            trunc_normal_(self.modality_embed, std=0.02)
        self.blocks.apply(init_weights_vit_timm)
        if pretrained is not None:
            from vireid.models.vit_weights import load_vit_weights

            load_vit_weights(self, pretrained)

    @property
    def out_channels(self) -> int:
        return self.embed_dim

    def cam_target(self) -> nn.Module:
        """The layer Grad-CAM reads (:mod:`vireid.report.gradcam`): the last block's input norm, whose
        patch tokens (B, 1 + N, D) still feed the [cls] output (the final patch tokens do not)."""
        return self.blocks[-1].norm1

    def embed(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Input embedding ``LP(patches) + e^pos (+ e^m)`` with [cls] first: (B, 3, H, W) -> (B, 1 + N, D)."""
        x = self.patch_embed(images)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + N, D)
        if self.modality_embed is not None:
            x = x + self.modality_embed[modality.long()].unsqueeze(1).to(x.dtype)  # (B, 1, D) to every token
        return self.pos_drop(x)

    def forward_tokens(self, images: torch.Tensor, modality: torch.Tensor,
                       return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(tokens (B, 1 + N, D), last block's attention (B, heads, 1 + N, 1 + N) or None)``."""
        x = self.embed(images, modality)  # (B, 1 + N, D)
        attn = None
        if return_attention:
            x = self.blocks[:-1](x)
            attn = attention_probs(self.blocks[-1].attn, self.blocks[-1].norm1(x))  # (B, h, T, T)
            x = self.blocks[-1](x)
        else:
            x = self.blocks(x)
        return self.norm(x), attn

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), (B,) -> normalised tokens (B, 1 + N, D), [cls] first."""
        return self.forward_tokens(images, modality)[0]


class ClsTokenPool(nn.Module):
    """The [cls] token of a token sequence, as float32: (B, 1 + N, D) -> (B, D)."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0].float()


@register_model("vit")
class ViTReID(BackboneHeadModel):
    """The ViT re-ID baseline (TransReID's baseline): :class:`ReIDViT` -> [cls] -> BNNeck -> classifier.

    ``forward(images (B, 3, H, W), modality (B,))`` returns, in train and eval mode alike,
    ``ModelOutput(features=[cls] output (B, D) [triplet/WRT], bn_features=after the BNNeck (B, D)
    [identity loss, retrieval], logits=(B, num_classes) or None)``. The keyword arguments are
    :class:`ReIDViT`'s (``modality_embed`` defaults to off here: the plain baseline).
    """

    traceable_forward: ClassVar[bool] = True  # no data-dependent branch: ONNX export traces forward as is

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "vit_base",
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        modality_embed: bool = False,
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
        self.head = ReIDHead(self.backbone.out_channels, num_classes, ClsTokenPool())
        self.out_dim = self.backbone.out_channels
