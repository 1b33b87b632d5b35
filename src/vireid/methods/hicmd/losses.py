"""Hi-CMD losses (seeds/001 §9 "2.2 损失函数说明"; METHODS.md §12), each ``loss(out, batch)`` on what
:class:`~vireid.methods.hicmd.model.HiCMD` leaves in ``ModelOutput.extras`` in training mode.

Reconstruction (images as pixels in [0, 1]; mirrored for both modalities because the extras stack
the visible rows then the infrared rows, each with its pair):

* ``hicmd_cross``: ``L_cross = E|x1 - G(p2, a2^s, a1^ex)|_1``;
* ``hicmd_same``: ``L_same = E|x1 - G(p1, a1^s, a1^ex)|_1``;
* ``hicmd_cycle``: ``L_cycle = E|x1 - G(p^1, a^1^s, a^1^ex)|_1`` (hatted codes as METHODS.md recommends);
* ``hicmd_code``: ``L_code = E|a1^s - a^1^s|_1 + E|a1^ex - a^1^ex|_1`` (the real image's codes as
  the target, not moved by this loss: see :class:`CodeReconstruction`);

their recipe weights are ``lambda_1..4`` of ``L_recon``. ``hicmd_kl``: ``E[KL(a^ex || N(0, I))]``.
``hicmd_adv``: the generator's side of ``L_adv`` for the per-modality discriminators it owns (their
updates, the other side, are made by :class:`~vireid.methods.hicmd.trainer.HiCMDTrainer`).
``hicmd_generated_id``: cross-entropy + batch-hard triplet with the generated cross-modality
images as extra samples of their source identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.errors import ConfigError
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.losses.triplet import triplet_batch_hard
from vireid.methods.hicmd.networks import ImageDiscriminator
from vireid.types import Batch, Modality, ModelOutput

__all__ = ["CodeReconstruction", "CrossReconstruction", "CycleReconstruction", "GeneratedIdentity",
           "HiCMDAdversarial", "KLDivergence", "SameReconstruction", "gaussian_kl", "l1"]


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``E|x - y|_1`` as the mean absolute difference over every element (float32)."""
    if x.shape != y.shape:
        raise ValueError(f"hicmd: reconstruction of shape {tuple(x.shape)} against target {tuple(y.shape)}")
    return (x.float() - y.float()).abs().mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``mean_i KL(N(mu_i, diag exp(logvar_i)) || N(0, I))``: ``0.5 * sum_j (mu^2 + e^lv - 1 - lv)``, (B, D) -> ()."""
    return 0.5 * (mu.float() ** 2 + logvar.float().exp() - 1.0 - logvar.float()).sum(dim=1).mean()


def paired_extras(out: ModelOutput, batch: Batch, owner: str) -> dict[str, torch.Tensor]:
    """The generator extras, after checking that every stacked pair shares an identity."""
    extras = out.extras
    if "rows" not in extras:
        raise ConfigError(f"loss {owner}: the model output has no generator extras; it needs model hicmd "
                          "(generate: true) and batches of n visible + n infrared images (the cross-modality sampler)")
    rows, partner = extras["rows"], extras["partner"]
    if not torch.equal(batch.pids[rows], batch.pids[partner]):
        raise ValueError(f"loss {owner}: the i-th visible and i-th infrared images of the batch have different "
                         "identities; Hi-CMD pairs them by position (P ids x (K visible + K infrared) batches)")
    return extras


class CrossReconstruction(nn.Module):
    """``L_cross`` (seeds/001 §9 Eq. "跨模态重构"): row k against ``G(p_j, a^s_j, a^ex_k)``, j its pair."""

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        e = paired_extras(out, batch, "hicmd_cross")
        return l1(e["real"], e["cross"])


class SameReconstruction(nn.Module):
    """``L_same`` (seeds/001 §9 "同模态重构"): row k against ``G(p_k, a^s_k, a^ex_k)``."""

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        e = paired_extras(out, batch, "hicmd_same")
        return l1(e["real"], e["same"])


class CycleReconstruction(nn.Module):
    """``L_cycle`` (seeds/001 §9 "cycle 重构"): row k against ``G(p^_k, a^s^_k, a^ex^_k)``."""

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        e = paired_extras(out, batch, "hicmd_cycle")
        return l1(e["real"], e["cycle"])


class CodeReconstruction(nn.Module):
    """``L_code = E|sg(a^s) - a^s^|_1 + E|sg(a^ex) - a^ex^|_1`` (seeds/001 §9 "编码损失"; ``a^ex`` as
    VAE means), the codes of the real image the target.

    The target codes of the real image are detached (``sg``, stop-gradient) by default: the codes
    re-encoded from the generated images must come back to them (as in MUNIT's style
    reconstruction, whose target, a sampled code, carries no gradient). With gradient on both sides the loss has a
    trivial minimum, one constant code for every image, which it reaches directly by shrinking the
    attribute encoder's activations: on the synthetic CPU recipe that silenced the attribute
    encoder within 20 steps (README "Hi-CMD on the synthetic dataset"). ``detach_target=False``
    restores the symmetric form.
    """

    def __init__(self, detach_target: bool = True) -> None:
        super().__init__()
        self.detach_target = bool(detach_target)

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        e = paired_extras(out, batch, "hicmd_code")
        style, ex = e["style"], e["ex"]  # (2n, ds), (2n, dex): the real images' codes
        if self.detach_target:
            style, ex = style.detach(), ex.detach()
        return l1(style, e["style_hat"]) + l1(ex, e["ex_hat"])


class KLDivergence(nn.Module):
    """``L_kl = E[KL(a^ex || N(0, I))]`` over every batch image (seeds/001 §9 "KL 散度损失")."""

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        if "ex_mu" not in out.extras:
            raise ConfigError("loss hicmd_kl: the model output has no ex_mu/ex_logvar extras (model hicmd in training)")
        return gaussian_kl(out.extras["ex_mu"], out.extras["ex_logvar"])


class GeneratedIdentity(nn.Module):
    """Re-ID on the generated cross-modality images (seeds/001 §9: generated same-ID images augment
    re-ID training): ``CE(gen_logits, y) + triplet_weight * triplet([f; f_gen], [y; y])``.

    Args:
        epsilon: label smoothing of the cross-entropy. margin: triplet margin.
        triplet_weight: weight of the triplet term over real and generated features together.
    """

    def __init__(self, epsilon: float = 0.1, margin: float = 0.3, triplet_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0 or margin < 0 or triplet_weight < 0:
            raise ValueError(f"hicmd_generated_id: need 0 <= epsilon < 1, margin >= 0, triplet_weight >= 0; got "
                             f"{epsilon}, {margin}, {triplet_weight}")
        self.epsilon, self.margin, self.triplet_weight = epsilon, margin, triplet_weight

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        e = paired_extras(out, batch, "hicmd_generated_id")
        if "gen_features" not in e:
            raise ConfigError("loss hicmd_generated_id: the model runs with use_generated: false; "
                              "set model.params.use_generated: true or drop this loss")
        labels = batch.pids[e["rows"]]  # (2n,) the source identity of each generated image
        loss = e["gen_features"].new_zeros(()).float()
        if "gen_logits" in e:
            loss = loss + cross_entropy_label_smooth(e["gen_logits"], labels, self.epsilon)
        if self.triplet_weight > 0:
            feats = torch.cat([out.features, e["gen_features"]])  # (B + 2n, D)
            loss = loss + self.triplet_weight * triplet_batch_hard(feats, torch.cat([batch.pids, labels]), self.margin)
        return loss


def bce_logits(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """``-E log D`` (real) or ``-E log(1 - D)`` (fake) of discriminator logits, float32."""
    target = torch.ones_like(logits.float()) if real else torch.zeros_like(logits.float())
    return F.binary_cross_entropy_with_logits(logits.float(), target)


class HiCMDAdversarial(nn.Module):
    """``L_adv`` with one discriminator per modality, ``D_1`` (visible) and ``D_2`` (infrared) (seeds/001 §9 "对抗损失").

    ``L_adv1 = E log(1 - D1(G(p2, a2^s, a1^c, a1^p))) + E log(1 - D1(G(p2, a2^s, a1^c, a2^p))) + E log D1(x1)``;
    D maximises it, G minimises it; ``D_2`` mirrors it. The module owns the discriminators (their
    weights are part of the loss's state, saved in checkpoints). Called as a loss, it returns the
    generator's side in the usual non-saturating form, ``-E log D_m(fake)`` over both kinds of fake
    images (``cross`` and ``trans`` extras; each judged by the discriminator of the modality whose
    illumination it carries), with the discriminators frozen. :meth:`discriminator_loss` is the other
    side; :class:`~vireid.methods.hicmd.trainer.HiCMDTrainer` minimises it with its own optimiser.

    Args:
        dim: width of the first discriminator layer. num_layers: strided layers (patch size).
        lr, beta1, beta2: the discriminators' Adam settings (used by the trainer).
    """

    def __init__(self, dim: int = 32, num_layers: int = 3, lr: float = 1e-4, beta1: float = 0.5,
                 beta2: float = 0.999) -> None:
        super().__init__()
        if lr <= 0 or not 0 <= beta1 < 1 or not 0 <= beta2 < 1:
            raise ValueError(f"hicmd_adv: need lr > 0 and betas in [0, 1); got lr={lr}, betas=({beta1}, {beta2})")
        self.discriminators = nn.ModuleList([ImageDiscriminator(dim, num_layers) for _ in Modality])
        self.lr, self.betas = lr, (beta1, beta2)
        self.attached = False  # set by HiCMDTrainer, which updates the discriminators

    def judge(self, pixels: torch.Tensor, modality: torch.Tensor) -> list[torch.Tensor]:
        """Logits of each image by the discriminator of its ``modality`` (one tensor per modality present)."""
        return [self.discriminators[int(m)](pixels[modality == int(m)]) for m in Modality
                if bool((modality == int(m)).any())]

    @staticmethod
    def fakes(out: ModelOutput, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The generated images D judges, (4n, 3, H, W), and the modality whose D judges each, (4n,)."""
        e = paired_extras(out, batch, "hicmd_adv")
        mods = batch.modality[e["rows"]]
        return torch.cat([e["cross"], e["trans"]]), torch.cat([mods, mods])

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        if not self.attached:
            raise ConfigError("loss hicmd_adv: its discriminators are trained by the Hi-CMD trainer; "
                              "add `trainer: hicmd` to the recipe")
        fake, mods = self.fakes(out, batch)
        frozen = [p.requires_grad for p in self.discriminators.parameters()]
        for p in self.discriminators.parameters():
            p.requires_grad_(False)
        try:
            logits = self.judge(fake, mods)
        finally:
            for p, flag in zip(self.discriminators.parameters(), frozen):
                p.requires_grad_(flag)
        return sum(bce_logits(lg, real=True) for lg in logits) / len(logits)

    def discriminator_loss(self, real: torch.Tensor, real_modality: torch.Tensor, fake: torch.Tensor,
                           fake_modality: torch.Tensor) -> torch.Tensor:
        """``-L_adv`` summed over the modalities present: ``-E log D_m(x_m) - E log(1 - D_m(fake_m))``
        (the two fake terms of L_adv pooled into one mean). Pass ``fake`` detached."""
        loss = real.new_zeros(()).float()
        for m in Modality:
            r, f = real[real_modality == int(m)], fake[fake_modality == int(m)]
            if r.shape[0]:
                loss = loss + bce_logits(self.discriminators[int(m)](r), real=True)
            if f.shape[0]:
                loss = loss + bce_logits(self.discriminators[int(m)](f), real=False)
        return loss
