"""Hi-CMD: the ID-preserving person image generator (ID-PIG) and hierarchical feature learning (HFL).

Choi et al., "Hi-CMD: Hierarchical Cross-Modality Disentanglement for Visible-Infrared Person
Re-Identification", CVPR 2020 (seeds/001 §9; METHODS.md §12).

One module holds both parts, so that the shared trainer optimises them with one optimiser and
``vireid test`` / ``extract`` see an ordinary re-ID model:

* ``E_p(x) -> p`` (spatial prototype code), ``E_a(x) -> [a^s; a^c; a^p]`` (style, illumination,
  pose; ``a^ex = [a^c; a^p]`` VAE-style: sampled in training, its mean in eval);
* ``G(p, a^s, a^c, a^p)``: the AdaIN decoder (:mod:`.networks`);
* HFL (seeds/001 §9 last paragraph): the ID-discriminative codes only, ``p`` through two more strided
  stages (three levels pooled) and ``a^s``, each level scaled by a learned weight and concatenated
  ("weighted concatenation"), then an FC layer -> feature -> BNNeck -> identity classifier.

In training mode the forward also runs the generator on the batch's cross-modality pairs (see
:meth:`HiCMD.forward`); the reconstruction, KL, adversarial and generated-data losses
(:mod:`.losses`) read what it leaves in ``ModelOutput.extras``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.methods.hicmd.networks import AttributeEncoder, Decoder, PrototypeEncoder, init_kaiming
from vireid.models.layers import BNNeck, weights_init_classifier
from vireid.types import Modality, ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["HiCMD", "HICMD_EXTRAS", "pair_rows"]

# extras keys set in training mode on a batch with cross-modality pairs (documented on HiCMD.forward)
HICMD_EXTRAS: tuple[str, ...] = (
    "rows", "partner", "real", "same", "cross", "trans", "cycle", "style", "style_hat", "ex", "ex_hat",
    "ex_mu", "ex_logvar", "gen_features", "gen_bn_features", "gen_logits",
)


def _stage(cin: int, cout: int) -> nn.Sequential:
    """An HFL stage: strided 3x3 conv (zero padding) -> BatchNorm -> ReLU, halving the map."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def pair_rows(modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The batch's cross-modality pairs as stacked rows: ``(rows, partner)``, each (2n,) int64.

    The i-th visible image is paired with the i-th infrared image (the cross-modality sampler puts
    the same identity at position i of both halves; the losses check the identities). ``rows`` lists
    the n visible then the n infrared batch indices; ``partner[k]`` is the batch index of row k's
    pair, i.e. ``rows`` rolled by n. ``None`` when the two modalities have different counts or one
    is absent (no pairs: the generator is not run).
    """
    vis = torch.nonzero(modality == int(Modality.VISIBLE)).flatten()  # (n,)
    ir = torch.nonzero(modality == int(Modality.INFRARED)).flatten()  # (n,)
    if vis.numel() == 0 or vis.numel() != ir.numel():
        return None
    return torch.cat([vis, ir]), torch.cat([ir, vis])


class HiCMD(nn.Module):
    """Hi-CMD network: ID-PIG generator + HFL re-ID head (see the module docstring).

    Args:
        num_classes: training identities (0 = embedding only).
        dim: base width of the encoders (``p`` has ``4 * dim`` channels at 1/4 of the input).
        style_dim, illum_dim, pose_dim: sizes of ``a^s``, ``a^c`` and ``a^p``.
        num_res: residual blocks in ``E_p`` and AdaIN blocks in the decoder.
        feat_dim: the HFL embedding size.
        attr_leaky: negative slope of the attribute encoder's activations (0: ReLU, MUNIT's choice).
        generate: run the generator in training mode (False: a plain feature learner on ``p`` and
            ``a^s``; the generator losses then have nothing to read).
        use_generated: also pass the generated cross-modality images through HFL (``gen_*`` extras,
            the generated-data re-ID loss; seeds/001 §9 "训练数据采用训练得到的生成器进行数据增强").
        mean, std: the normalisation of the input images (ImageNet).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        dim: int = 16,
        style_dim: int = 8,
        illum_dim: int = 8,
        pose_dim: int = 8,
        num_res: int = 2,
        feat_dim: int = 256,
        attr_leaky: float = 0.0,
        generate: bool = True,
        use_generated: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if dim < 4 or min(style_dim, illum_dim, pose_dim, feat_dim) < 1:
            raise ValueError(f"HiCMD: dim must be >= 4 and code sizes >= 1, got dim={dim}, style_dim={style_dim}, "
                             f"illum_dim={illum_dim}, pose_dim={pose_dim}, feat_dim={feat_dim}")
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise ValueError(f"HiCMD: mean and std need 3 values each (std > 0), got {mean} and {std}")
        self.generate, self.use_generated = bool(generate), bool(use_generated)
        self.proto = PrototypeEncoder(dim, num_res)
        if not 0.0 <= attr_leaky < 1.0:
            raise ValueError(f"HiCMD: attr_leaky must be in [0, 1), got {attr_leaky}")
        self.attr = AttributeEncoder(dim, style_dim, illum_dim, pose_dim, leaky=attr_leaky)
        init_kaiming(self.attr.body)  # no normalisation inside: PyTorch's default init all but silences it
        c = self.proto.out_channels
        self.decoder = Decoder(c, style_dim + illum_dim + pose_dim, num_res)
        self.illum_dim = illum_dim
        # HFL: p -> two more strided stages; levels p, h1, h2 pooled, a^s; weighted concatenation -> FC
        self.hfl1 = _stage(c, 2 * c)
        self.hfl2 = _stage(2 * c, 4 * c)
        self.level_dims = (c, 2 * c, 4 * c, style_dim)
        self.level_weights = nn.Parameter(torch.ones(len(self.level_dims)))
        self.fc = nn.Linear(sum(self.level_dims), feat_dim)
        self.bnneck = BNNeck(feat_dim)
        self.classifier: nn.Linear | None = None
        self.reset_classifier(num_classes)
        self.out_dim = feat_dim
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, 3, 1, 1), persistent=False)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the identity classifier (``num_classes`` 0: none)."""
        self.classifier = None
        if num_classes > 0:
            self.classifier = nn.Linear(self.fc.out_features, num_classes, bias=False)
            self.classifier.apply(weights_init_classifier)

    # ------------------------------------------------------------------ parts

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> pixels in [0, 1] (float32)."""
        return images.float() * self.std + self.mean

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] -> the normalised images the encoders take."""
        return (pixels - self.mean) / self.std

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised images (B, 3, H, W) -> ``p`` (B, C, H/4, W/4), ``a^s`` (B, ds), ``a^ex`` mean and
        log-variance (B, dc + dp)."""
        p, _ = self.proto(images)
        style, mu, logvar = self.attr(images)
        return p, style, mu, logvar

    def sample_ex(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``a^ex``: ``mu + eps * exp(logvar / 2)`` in training (reparameterisation), ``mu`` in eval."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, p: torch.Tensor, style: torch.Tensor, ex: torch.Tensor) -> torch.Tensor:
        """``G(p, a^s, a^ex)`` -> pixels (B, 3, H, W) in [0, 1]; ``ex = [a^c; a^p]``."""
        return self.decoder(p, torch.cat([style.float(), ex.float()], dim=1))

    def hfl(self, p: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Hierarchical feature learning from ``p`` and ``a^s`` only: (features, bn_features, logits)."""
        h1 = self.hfl1(p)  # (B, 2C, H/8, W/8)
        h2 = self.hfl2(h1)  # (B, 4C, H/16, W/16)
        levels = [p.float().mean(dim=(2, 3)), h1.float().mean(dim=(2, 3)), h2.float().mean(dim=(2, 3)), style.float()]
        cat = torch.cat([w * x for w, x in zip(self.level_weights, levels)], dim=1)  # (B, sum dims) float32
        with torch.autocast(device_type=cat.device.type, enabled=False):  # the embedding in float32
            feats = self.fc(cat)  # (B, D)
        bn = self.bnneck(feats)  # (B, D)
        logits = self.classifier(bn) if self.classifier is not None else None
        return feats, bn, logits

    # ------------------------------------------------------------------ forward

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images, (B,) modality -> :class:`ModelOutput` of the B images.

        ``features`` / ``bn_features`` / ``logits`` come from HFL (train and eval alike). In training
        mode with ``generate`` and a batch of n visible + n infrared images, ``extras`` holds (2n rows
        in the order of ``rows``; row k's pair is batch image ``partner[k]``, its identity the same;
        ``ex`` codes sampled, images as pixels in [0, 1]):

        * ``rows``, ``partner``: (2n,) batch indices (:func:`pair_rows`);
        * ``real``: (2n, 3, H, W) the images of ``rows``;
        * ``same``: ``G(p_k, a^s_k, a^ex_k)`` (L_same); ``cross``: ``G(p_j, a^s_j, a^ex_k)`` with j the
          partner (L_cross: k's pose and illumination, the partner's identity codes);
        * ``trans``: ``G(p_j, a^s_j, a^c_k, a^p_j)`` (the partner in k's illumination; second term of L_adv);
        * ``cycle``: ``G(p^_k, a^s^_k, a^ex^_k)`` with ``p^_k, a^s^_k`` encoded from ``cross`` of the partner's
          row (which carries k's identity codes) and ``a^ex^_k`` from ``cross`` of row k (METHODS.md §12
          Ambiguities); ``style``/``style_hat`` (2n, ds) and ``ex``/``ex_hat`` (2n, dex) for L_code
          (``ex`` as means);
        * ``ex_mu``, ``ex_logvar``: (B, dex) of every batch image (L_kl);
        * with ``use_generated``: ``gen_features``, ``gen_bn_features``, ``gen_logits`` of the 2n
          ``cross`` images through HFL, from the codes already encoded for the cycle (labelled with
          the identity of ``rows``; the re-ID loss on them also reaches the generator).
        """
        p, style, mu, logvar = self.encode(images)
        feats, bn, logits = self.hfl(p, style)
        out = ModelOutput(features=feats, bn_features=bn, logits=logits)
        if not (self.training and self.generate):
            return out
        pairs = pair_rows(modality)
        if pairs is None:
            return out
        rows, partner = pairs
        n2 = rows.numel()
        swap = torch.roll(torch.arange(n2, device=rows.device), n2 // 2)  # stacked index of the partner
        ex = self.sample_ex(mu, logvar)  # (B, dex)
        p_r, s_r, ex_r = p[rows], style[rows], ex[rows]  # (2n, ...)
        illum = ex_r[:, : self.illum_dim]
        trans_ex = torch.cat([illum, ex_r[swap, self.illum_dim:]], dim=1)  # k's a^c, the partner's a^p
        gen = self.decode(torch.cat([p_r, p_r[swap], p_r[swap]]), torch.cat([s_r, s_r[swap], s_r[swap]]),
                          torch.cat([ex_r, ex_r, trans_ex]))  # (6n, 3, H, W)
        same, cross, trans = gen.split(n2)
        p_c, s_c, mu_c, logvar_c = self.encode(self.normalize(cross).to(images.dtype))  # codes of the cross images
        ex_c = self.sample_ex(mu_c, logvar_c)
        cycle = self.decode(p_c[swap], s_c[swap], ex_c)  # (2n, 3, H, W)
        out.extras.update({
            "rows": rows, "partner": partner, "real": self.to_pixels(images[rows]), "same": same, "cross": cross,
            "trans": trans, "cycle": cycle, "style": s_r.float(), "style_hat": s_c[swap].float(),
            "ex": mu[rows].float(), "ex_hat": mu_c.float(), "ex_mu": mu.float(), "ex_logvar": logvar.float(),
        })
        if self.use_generated:
            g_feats, g_bn, g_logits = self.hfl(p_c, s_c)
            out.extras.update({"gen_features": g_feats, "gen_bn_features": g_bn})
            if g_logits is not None:
                out.extras["gen_logits"] = g_logits
        return out
