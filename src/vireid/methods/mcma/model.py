"""The MCMA network (seeds/002 §6; METHODS.md §15): an image encoder giving patch tokens, a text
encoder, a shared 2-layer reconstruction decoder ``E_rec``, the bisimulation predictors, and the
EMA teacher whose patch tokens are the reconstruction targets.

- Image: a CNN backbone (ImageNet MobileNetV2 by default) whose last map, projected to width D by a
  1x1 convolution, gives the patch tokens ``Z^v`` (B, N, D), N = h x w; the global image embedding is
  their mean through a BatchNorm (B, D): pooled post-ReLU features share a large common offset that
  would put every image at cosine ~1 from every caption (the project met the same with DAN's
  discriminators). (The seed does not name the backbone; a CNN map stands in for ViT patches.)
- Text: :class:`~.text_encoder.TransformerTextEncoder` (default) or a local Hugging Face model; its
  global caption embedding also goes through a BatchNorm (:attr:`MCMA.text_bn`), for the same reason:
  a from-scratch transformer's outputs share the [CLS]/position embeddings and the final LayerNorm's
  bias, so at initialisation every caption sat at cosine ~0.97 from every other one and the cosine
  matching loss had almost nothing to separate.
- ``E_rec({Z^v_um, Z^m, z^t_glo})`` (:meth:`MCMA.reconstruct`): masked positions' tokens are
  replaced by the learned mask token ``Z^m``, the caption's global embedding is prepended, two
  transformer layers run, and a linear head predicts every position; the loss reads the masked
  ones only. The student's tokens come from the full image, so an unmasked token's receptive field
  overlaps its masked neighbours (a CNN has no exact patch boundaries); the mask token hides the
  masked token itself.
- ``theta_V``, ``theta_T``: 2-layer MLP predictors mapping text relations to image ones and back.

``forward(images, modality)`` returns the project's :class:`~vireid.types.ModelOutput` for images
(retrieval embedding = the global image embedding); :meth:`encode_text` embeds captions.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from vireid.models.backbones import ARCHS, TwoStreamResNet
from vireid.models.mobilenet import MOBILENET_ARCHS, TwoStreamMobileNetV2
from vireid.methods.mcma.text_encoder import HFTextEncoder, TransformerTextEncoder
from vireid.types import ModelOutput


class ImageTokenEncoder(nn.Module):
    """Backbone map -> 1x1 projection -> patch tokens (B, N, D) and their mean (B, D)."""

    def __init__(self, arch: str, dim: int, pretrained: str | os.PathLike[str] | None) -> None:
        super().__init__()
        if arch not in ARCHS and arch not in MOBILENET_ARCHS:
            raise ValueError(f"MCMA: unknown arch {arch!r}; valid: {sorted(ARCHS) + sorted(MOBILENET_ARCHS)}")
        cls = TwoStreamMobileNetV2 if arch in MOBILENET_ARCHS else TwoStreamResNet
        self.backbone = cls(arch, num_specific_stages=0, last_stride=1, pretrained=pretrained)
        self.proj = nn.Conv2d(self.backbone.out_channels, dim, 1)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.proj(self.backbone(images, modality))  # (B, D, h, w)
        tokens = fmap.flatten(2).transpose(1, 2).float()  # (B, N, D)
        return tokens, tokens.mean(dim=1)


def _mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))


class MCMA(nn.Module):
    """Image/text encoders, shared reconstruction decoder, predictors, EMA teacher, shared ID classifier.

    Args:
        num_classes: training identities (shared classifier over image and text embeddings; 0 = none).
        vocab_size: the caption tokenizer's size (scratch text encoder).
        arch, pretrained: image backbone. dim: shared width D.
        text_model: a local Hugging Face model folder instead of the scratch encoder (None: scratch).
        text_depth, text_heads, max_length, text_pool: the scratch text encoder (``"mean"`` or ``"cls"`` pooling).
        decoder_depth: layers of E_rec (METHODS.md: 2). max_patches: longest token grid (positions).
        ema_momentum: teacher update ``theta_t <- m theta_t + (1 - m) theta_s``.
    """

    def __init__(self, num_classes: int, *, vocab_size: int = 2000, arch: str = "mobilenet_v2",
                 pretrained: str | os.PathLike[str] | None = None, dim: int = 256, text_model: str | None = None,
                 text_depth: int = 2, text_heads: int = 4, max_length: int = 64, decoder_depth: int = 2,
                 max_patches: int = 256, ema_momentum: float = 0.99, text_pool: str = "mean") -> None:
        super().__init__()
        if not 0.0 <= ema_momentum < 1.0:
            raise ValueError(f"MCMA: ema_momentum must be in [0, 1), got {ema_momentum}")
        self.image = ImageTokenEncoder(arch, dim, pretrained)
        self.text: nn.Module = (HFTextEncoder(text_model, dim=dim) if text_model
                                else TransformerTextEncoder(vocab_size, dim=dim, depth=text_depth, heads=text_heads,
                                                            max_length=max_length, pool=text_pool))
        self.teacher = copy.deepcopy(self.image).requires_grad_(False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dec_pos = nn.Parameter(torch.zeros(1, max_patches + 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.dec_pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, 4, dim * 4, 0.0, batch_first=True, norm_first=True, activation="gelu")
        self.decoder = nn.TransformerEncoder(layer, decoder_depth, enable_nested_tensor=False)
        self.dec_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.predict_v, self.predict_t = _mlp(dim), _mlp(dim)
        self.image_bn = nn.BatchNorm1d(dim)
        self.text_bn = nn.BatchNorm1d(dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        self.ema_momentum, self.dim, self.max_patches = float(ema_momentum), dim, max_patches

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W), (B,) -> ModelOutput(features = bn_features = global (B, D), logits, extras={'tokens'})."""
        tokens, pooled = self.image(images, modality)  # (B, N, D), (B, D)
        glob = self.image_bn(pooled)  # (B, D)
        logits = self.classifier(glob) if self.classifier is not None else None
        return ModelOutput(features=glob, bn_features=glob, logits=logits, extras={"tokens": tokens})

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids and mask -> tokens (B, L, D), global z^t_glo (B, D) (through :attr:`text_bn`)."""
        tokens, glob = self.text(ids, mask)  # (B, L, D), (B, D)
        return tokens.float(), self.text_bn(glob.float())

    @torch.no_grad()
    def teacher_tokens(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """The EMA teacher's patch tokens (B, N, D): the reconstruction targets (eval mode, no gradient)."""
        was = self.teacher.training
        self.teacher.eval()
        tokens, _ = self.teacher(images, modality)
        self.teacher.train(was)
        return tokens

    def reconstruct(self, tokens: torch.Tensor, mask: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
        """E_rec: (B, N, D) tokens, (B, N) bool mask (True = hidden), (B, D) caption embedding -> (B, N, D)."""
        n = tokens.shape[1]
        if n > self.max_patches:
            raise ValueError(f"MCMA: {n} patch tokens exceed max_patches={self.max_patches}")
        x = torch.where(mask[..., None], self.mask_token.to(tokens.dtype).expand_as(tokens), tokens)  # (B, N, D)
        x = torch.cat([caption[:, None, :], x], dim=1) + self.dec_pos[:, : n + 1]  # (B, 1 + N, D)
        return self.dec_head(self.decoder(x)[:, 1:])  # (B, N, D)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """EMA step of the teacher towards the student image encoder (call after each optimiser step)."""
        m = self.ema_momentum
        for t, s in zip(self.teacher.parameters(), self.image.parameters()):
            t.mul_(m).add_(s.detach(), alpha=1.0 - m)
        for t, s in zip(self.teacher.buffers(), self.image.buffers()):
            t.copy_(s)
