"""MRDA: mask reconstruction and dynamic attention for visible-infrared re-ID.

Zhang et al., "Cross-Modal Person Re-Identification Based on Mask Reconstruction with Dynamic
Attention", Laser & Optoelectronics Progress, DOI 10.3788/LOP231742 (seeds/003; METHODS.md §1):

* the mask reconstruction module (MRM, §2.2 Eq. 1-4): a min-max "human mask" ``M+`` and the
  masked body image ``x * M+``, fed through the network beside the original (Eq. 5-6);
* the two-stream ResNet with stages 0-1 modality-specific and 2-4 shared (§2.3 Eq. 5-8);
* the dynamic attention module (DAM, §2.4 Eq. 9-17) or a Table-1 alternative as the pooler;
* a BNNeck and a bias-free identity classifier.

The losses (Eq. 7, 18-23) live in :mod:`vireid.methods.mrda.losses`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.methods.mrda.attention import ATTENTIONS, DAM_MODES, build_attention_pool
from vireid.models.backbones import ARCHS, NUM_STAGES, TwoStreamResNet
from vireid.models.head import ReIDHead
from vireid.types import ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["MRDA", "MRDA_EXTRAS", "human_mask", "mask_pair", "mask_reconstruct"]

# extras keys set in training mode when use_mrm is on (documented on MRDA)
MRDA_EXTRAS: tuple[str, ...] = (
    "stage_map", "masked_stage_map", "masked_features", "masked_bn_features", "masked_logits", "mask",
)


def mask_pair(images01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-2 on images in [0, 1]: ``(M+, M-)``, each (B, 1, H, W) in [0, 1] with ``M+ + M- = 1``.

    Eq. 1 read as in METHODS.md §1: per-image min-max normalisation over all pixels and channels,
    then the per-pixel L2 norm over the channels divided by sqrt(C), so ``M+`` lies in [0, 1]. A
    constant image gets ``M+ = 0``.
    """
    if images01.dim() != 4:
        raise ValueError(f"mask_pair: expected images (B, C, H, W), got {tuple(images01.shape)}")
    x = images01.float()  # (B, C, H, W)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    scaled = (x - lo) / (hi - lo).clamp(min=1e-12)  # (B, C, H, W) in [0, 1]
    m_plus = torch.linalg.vector_norm(scaled, dim=1, keepdim=True) / math.sqrt(x.shape[1])  # (B, 1, H, W)
    m_plus = m_plus.clamp(0.0, 1.0)
    return m_plus, 1.0 - m_plus


def human_mask(images01: torch.Tensor) -> torch.Tensor:
    """``M+`` of Eq. 1 for images in [0, 1]: (B, C, H, W) -> (B, 1, H, W) in [0, 1]."""
    return mask_pair(images01)[0]


@torch.no_grad()
def mask_reconstruct(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked body images ``x_M+ = M+ * x`` (Eq. 3) of a normalised batch, normalised again.

    ``images`` are normalised with ``mean``/``std`` (each (C,) or broadcastable to (1, C, 1, 1));
    they are mapped back to [0, 1] pixels, masked there, and normalised again. No gradient flows
    through the mask. Returns ``(masked images (B, C, H, W) in the input dtype, M+ (B, 1, H, W))``.
    """
    mean = mean.reshape(1, -1, 1, 1).to(images.device, torch.float32)  # (1, C, 1, 1)
    std = std.reshape(1, -1, 1, 1).to(images.device, torch.float32)  # (1, C, 1, 1)
    pixels = images.float() * std + mean  # (B, C, H, W) raw [0, 1] pixels
    m_plus = human_mask(pixels)  # (B, 1, H, W)
    masked = (m_plus * pixels - mean) / std  # (B, C, H, W)
    return masked.to(images.dtype), m_plus


class MRDA(nn.Module):
    """MRDA network (seeds/003 Fig. 1): MRM -> two-stream ResNet -> DAM pooler -> BNNeck -> classifier.

    ``forward(images (B, 3, H, W), modality (B,))`` returns a :class:`ModelOutput` in train and
    eval mode alike, for the B original images: ``features`` = the pooled embedding ``F_bar``
    before the BNNeck (B, C) [hetero-centre triplet, correlation consistency], ``bn_features``
    after it (B, C) [retrieval], ``logits`` (B, num_classes) or ``None``.

    In training mode with ``use_mrm`` the masked copies ``x * M+`` (Eq. 3) are concatenated to
    the originals along the batch axis (Eq. 5-6; both copies share every BatchNorm) and
    ``extras`` holds, row i always belonging to input image i:

    * ``"stage_map"``: (B, C_s, h_s, w_s) output of stage ``ac_stage`` for the originals;
    * ``"masked_stage_map"``: the same for the masked copies (region-centre loss, Eq. 7);
    * ``"masked_features"``, ``"masked_bn_features"``: (B, C) embeddings of the masked copies;
    * ``"masked_logits"``: (B, num_classes) their logits (only with a classifier) [identity loss];
    * ``"mask"``: (B, 1, H, W) the mask ``M+`` (detached).

    In eval mode, or without ``use_mrm``, only the original images are run and ``extras`` is
    empty (the test uses the original image only).

    Args:
        num_classes: training identities (0 = embedding only, no classifier).
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"`` (MRDA: resnet50).
        num_specific_stages: modality-specific stages (MRDA: 2 = stem and layer1, Eq. 8).
        last_stride: stride of layer4 (1: a 2048x18x9 map at 288x144).
        pretrained: ``None``, ``"imagenet"`` (local torch hub cache only) or a state dict file.
        use_mrm: add the mask reconstruction module (Table 2 "MRM").
        attention: pooler, one of ``"dam"``, ``"bam"``, ``"cbam"``, ``"iwpam"``, ``"none"``
            (Table 1 / Table 2 "DAM"); see :func:`~vireid.methods.mrda.attention.build_attention_pool`.
        ac_stage: stage (0 = stem, 1..4 = layer1..4) whose output feeds the region-centre loss
            (MRDA: 1; seeds/003 Fig. 6 compares 0-4).
        gem_p: GeM exponent b (3).
        dam_k, dam_mode, dam_qk_channels, dam_regions: DAM's top-k regions (6), reading
            (``"select_q"`` = A, ``"route_kv"`` = B), Q/K channels (256), regions (None = one per row).
        attention_reduction: channel reduction of BAM/CBAM (16). iwpa_parts: IWPAM's parts (3).
        mean, std: the normalisation of the input images (ImageNet), undone to compute the mask.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        num_specific_stages: int = 2,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        use_mrm: bool = True,
        attention: str = "dam",
        ac_stage: int = 1,
        gem_p: float = 3.0,
        dam_k: int = 6,
        dam_mode: str = "select_q",
        dam_qk_channels: int = 256,
        dam_regions: int | None = None,
        attention_reduction: int = 16,
        iwpa_parts: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"MRDA: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if attention not in ATTENTIONS:
            raise ValueError(f"MRDA: unknown attention {attention!r}; valid: {', '.join(ATTENTIONS)}")
        if dam_mode not in DAM_MODES:
            raise ValueError(f"MRDA: dam_mode must be one of {DAM_MODES}, got {dam_mode!r}")
        if not 0 <= ac_stage < NUM_STAGES:
            raise ValueError(f"MRDA: ac_stage must be in 0..{NUM_STAGES - 1}, got {ac_stage}")
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise ValueError(f"MRDA: mean and std need 3 values each (std > 0), got {mean} and {std}")
        self.use_mrm, self.attention, self.ac_stage = bool(use_mrm), attention, int(ac_stage)
        self.backbone = TwoStreamResNet(arch, num_specific_stages=num_specific_stages, last_stride=last_stride,
                                        pretrained=pretrained)
        channels = self.backbone.out_channels
        pool = build_attention_pool(attention, channels, gem_p=gem_p, dam_k=dam_k, dam_mode=dam_mode,
                                    dam_qk_channels=dam_qk_channels, dam_regions=dam_regions,
                                    reduction=attention_reduction, iwpa_parts=iwpa_parts)
        self.head = ReIDHead(channels, num_classes, pool)
        self.out_dim = channels
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]), persistent=False)
        self.register_buffer("std", torch.tensor([float(s) for s in std]), persistent=False)
        logger.debug("MRDA(%s): use_mrm=%s attention=%s ac_stage=%d", arch, use_mrm, attention, ac_stage)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality labels -> ModelOutput (see the class docs)."""
        if not (self.training and self.use_mrm):
            return self.head(self.backbone(images, modality))
        b = images.shape[0]
        masked, m_plus = mask_reconstruct(images, self.mean, self.std)  # (B, 3, H, W), (B, 1, H, W)
        both = torch.cat([images, masked])  # (2B, 3, H, W): Eq. 5-6, batch-axis cat
        mods = torch.cat([modality, modality])  # (2B,)
        final, saved = self.backbone.forward_stages(both, mods, (self.ac_stage,))  # (2B, C, h, w)
        out = self.head(final)  # (2B, C) features
        stage = saved[self.ac_stage]  # (2B, C_s, h_s, w_s)
        extras = {
            "stage_map": stage[:b],
            "masked_stage_map": stage[b:],
            "masked_features": out.features[b:],
            "masked_bn_features": out.bn_features[b:],
            "mask": m_plus,
        }
        logits = None
        if out.logits is not None:
            logits = out.logits[:b]  # (B, N)
            extras["masked_logits"] = out.logits[b:]  # (B, N)
        return ModelOutput(features=out.features[:b], bn_features=out.bn_features[:b], logits=logits,
                           extras=extras)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the identity classifier."""
        self.head.reset_classifier(num_classes)
