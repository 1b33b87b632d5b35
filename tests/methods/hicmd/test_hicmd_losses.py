"""Hi-CMD losses (seeds/001 §9; METHODS.md §12) against hand-worked values and direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vireid.errors import ConfigError
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.losses.triplet import triplet_batch_hard
from vireid.methods.hicmd.losses import (CodeReconstruction, CrossReconstruction, CycleReconstruction,
                                         GeneratedIdentity, HiCMDAdversarial, KLDivergence, SameReconstruction,
                                         gaussian_kl)
from vireid.types import Batch, ModelOutput


def _batch(pids: list[int], modality: list[int]) -> Batch:
    n = len(pids)
    return Batch(torch.zeros(n, 3, 4, 2), torch.tensor(pids), torch.zeros(n, dtype=torch.long),
                 torch.tensor(modality), torch.arange(n))


def _out(**extras: torch.Tensor) -> ModelOutput:
    n = 4
    return ModelOutput(torch.zeros(n, 2), torch.zeros(n, 2), None, {
        "rows": torch.tensor([0, 1, 2, 3]), "partner": torch.tensor([2, 3, 0, 1]), **extras})


BATCH = _batch([5, 7, 5, 7], [0, 0, 1, 1])  # visible 5, 7 then infrared 5, 7: pairs (0, 2), (1, 3)


def _images(*values: float) -> torch.Tensor:
    """Four 1x1x2 "images" (4, 1, 1, 2) from 8 numbers."""
    return torch.tensor(values, dtype=torch.float32).view(4, 1, 1, 2)


def test_each_reconstruction_term_is_the_mean_absolute_error_of_its_own_image() -> None:
    real = _images(0, 1, 0, 1, 0, 1, 0, 1)
    # |diff| per element: same 0.5 everywhere; cross: 1 on one of 8 elements; cycle: 0.25 on every element
    same = real + 0.5
    cross = real.clone()
    cross[2, 0, 0, 1] = 0.0  # was 1
    cycle = real - 0.25
    out = _out(real=real, same=same, cross=cross, cycle=cycle)
    assert float(SameReconstruction()(out, BATCH)) == pytest.approx(0.5)
    assert float(CrossReconstruction()(out, BATCH)) == pytest.approx(1 / 8)
    assert float(CycleReconstruction()(out, BATCH)) == pytest.approx(0.25)


def test_code_reconstruction_adds_the_style_and_excluded_code_errors() -> None:
    style = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 3.0], [1.0, -1.0]])
    style_hat = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 3.0], [1.0, 1.0]])  # |d|: 2 + 2 over 8 -> 0.5
    ex = torch.zeros(4, 3)
    ex_hat = torch.full((4, 3), -0.1)  # 0.1
    out = _out(style=style, style_hat=style_hat, ex=ex, ex_hat=ex_hat)
    assert float(CodeReconstruction()(out, BATCH)) == pytest.approx(0.6)


def test_code_reconstruction_moves_only_the_reencoded_codes() -> None:
    # L_code's target is the real image's code: with gradient on both sides the loss is minimised by
    # shrinking every code to one constant (the collapse of the synthetic runs); the real codes
    # must get no gradient from it, the re-encoded ones sign(hat - target) / numel.
    style = torch.tensor([[1.0, 2.0], [0.0, 0.5], [3.0, 3.0], [1.0, -1.0]], requires_grad=True)
    style_hat = torch.tensor([[2.0, 0.0], [1.0, 0.0], [2.0, 4.0], [1.5, 1.0]], requires_grad=True)
    ex = torch.zeros(4, 3, requires_grad=True)
    ex_hat = torch.full((4, 3), -0.1, requires_grad=True)
    out = _out(style=style, style_hat=style_hat, ex=ex, ex_hat=ex_hat)
    CodeReconstruction()(out, BATCH).backward()
    assert style.grad is None and ex.grad is None
    torch.testing.assert_close(style_hat.grad, torch.sign(style_hat - style).detach() / 8)
    torch.testing.assert_close(ex_hat.grad, torch.full((4, 3), -1.0 / 12))
    # the symmetric form (detach_target=False) pulls the real codes towards the re-encoded ones too
    style.grad = None
    CodeReconstruction(detach_target=False)(out, BATCH).backward()
    torch.testing.assert_close(style.grad, torch.sign(style - style_hat).detach() / 8)


def test_pairs_of_different_identities_and_a_missing_generator_are_errors() -> None:
    real = _images(*range(8))
    with pytest.raises(ValueError, match="different identities"):
        SameReconstruction()(_out(real=real, same=real), _batch([5, 7, 7, 5], [0, 0, 1, 1]))
    with pytest.raises(ConfigError, match="no generator extras"):
        CrossReconstruction()(ModelOutput(torch.zeros(4, 2), torch.zeros(4, 2)), BATCH)


def test_kl_matches_the_closed_form_and_torch_distributions() -> None:
    # hand-worked: mu = 1, logvar = 0 over 3 dims -> 0.5 * 3 * (1 + 1 - 1 - 0) = 1.5 per row
    assert float(gaussian_kl(torch.ones(2, 3), torch.zeros(2, 3))) == pytest.approx(1.5)
    assert float(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))) == 0.0
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                            torch.distributions.Normal(torch.zeros(5, 4), torch.ones(5, 4)))
    out = ModelOutput(torch.zeros(5, 2), torch.zeros(5, 2), None, {"ex_mu": mu, "ex_logvar": logvar})
    assert float(KLDivergence()(out, BATCH)) == pytest.approx(float(ref.sum(1).mean()), rel=1e-5)


def test_generated_identity_is_cross_entropy_plus_triplet_over_real_and_generated() -> None:
    g = torch.Generator().manual_seed(1)
    feats, gen_feats, gen_logits = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 6, generator=g)
    out = ModelOutput(feats, feats, None, {"rows": torch.tensor([0, 1, 2, 3]), "partner": torch.tensor([2, 3, 0, 1]),
                                           "gen_features": gen_feats, "gen_logits": gen_logits})
    batch = _batch([5, 2, 5, 2], [0, 0, 1, 1])
    labels = torch.tensor([5, 2, 5, 2])
    expected = cross_entropy_label_smooth(gen_logits, labels, 0.1) + 0.5 * triplet_batch_hard(
        torch.cat([feats, gen_feats]), torch.cat([batch.pids, labels]), 0.3)
    value = GeneratedIdentity(epsilon=0.1, margin=0.3, triplet_weight=0.5)(out, batch)
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


def test_adversarial_generator_side_freezes_the_discriminators_and_matches_the_formula() -> None:
    torch.manual_seed(0)
    adv = HiCMDAdversarial(dim=4, num_layers=2)
    with pytest.raises(ConfigError, match="trainer: hicmd"):
        adv(_out(cross=torch.rand(4, 3, 8, 4), trans=torch.rand(4, 3, 8, 4)), BATCH)
    adv.attached = True
    cross = torch.rand(4, 3, 8, 4, requires_grad=True)
    trans = torch.rand(4, 3, 8, 4)
    loss = adv(_out(cross=cross, trans=trans), BATCH)
    # rows 0, 1 carry visible illumination -> D_1; rows 2, 3 infrared -> D_2; both fakes of a row alike
    fake = torch.cat([cross, trans]).detach()
    mods = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    expected = sum(-F.logsigmoid(adv.discriminators[m](fake[mods == m])).mean() for m in (0, 1)) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert cross.grad is not None and cross.grad.abs().sum() > 0  # the generator side reaches the images
    assert all(p.grad is None for p in adv.discriminators.parameters())  # ... and never the discriminators
    assert all(p.requires_grad for p in adv.discriminators.parameters())  # unfrozen afterwards


def test_discriminator_loss_is_minus_log_d_real_minus_log_one_minus_d_fake_per_modality() -> None:
    torch.manual_seed(0)
    adv = HiCMDAdversarial(dim=4, num_layers=2)
    real, fake = torch.rand(4, 3, 8, 4), torch.rand(6, 3, 8, 4)
    real_mod, fake_mod = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 0, 1, 1, 1])
    d = adv.discriminators
    expected = 0.0
    for m in (0, 1):
        expected += -torch.log(torch.sigmoid(d[m](real[real_mod == m]))).mean()
        expected += -torch.log(1 - torch.sigmoid(d[m](fake[fake_mod == m]))).mean()
    value = adv.discriminator_loss(real, real_mod, fake, fake_mod)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert math.isfinite(value.item())
