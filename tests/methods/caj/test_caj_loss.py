"""CAJ's squared-difference WRT (seeds/001 §8) against hand-worked values, a loop and the public code's form."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vireid.types import Batch
from vireid.losses import build_loss, weighted_regularized_triplet
from vireid.methods.caj.losses import squared_difference_wrt, wrt_margins
from vireid.types import ModelOutput


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_two_singletons_by_hand() -> None:
    # pids [0, 1], x = [0, 2]: each anchor's only positive is itself (d = 0), its only negative is at 2
    # mu = 0 - 2 = -2 for both; phi = -4; L = log(1 + e^-4)
    feats = torch.tensor([[0.0], [2.0]])
    pids = torch.tensor([0, 1])
    assert wrt_margins(feats, pids).tolist() == pytest.approx([-2.0, -2.0], abs=1e-5)  # d_ii is 1e-6 (sqrt clamp)
    assert math.isclose(float(squared_difference_wrt(feats, pids)), softplus(-4.0), rel_tol=1e-5)


def test_three_points_by_hand() -> None:
    # pids [0, 0, 1], x = [0, 3, 1]; distances d01 = 3, d02 = 1, d12 = 2
    feats = torch.tensor([[0.0], [3.0], [1.0]])
    pids = torch.tensor([0, 0, 1])
    e3 = math.exp(3)
    fp = (0 * 1 + 3 * e3) / (1 + e3)  # positives {self: 0, other: 3}, weights softmax(d) = (1, e^3)/(1 + e^3)
    mu0 = fp - 1.0  # one negative at 1
    mu1 = fp - 2.0  # one negative at 2
    cn2 = (1 * math.exp(-1) + 2 * math.exp(-2)) / (math.exp(-1) + math.exp(-2))  # negatives at 1 and 2
    mu2 = 0.0 - cn2  # its only positive is itself
    mus = [mu0, mu1, mu2]
    assert wrt_margins(feats, pids).tolist() == pytest.approx(mus, rel=1e-6)
    phi = [math.copysign(m * m, m) for m in mus]
    expected = sum(softplus(p) for p in phi) / 3
    assert math.isclose(float(squared_difference_wrt(feats, pids)), expected, rel_tol=1e-6)
    # WRT uses the same margins without the square: the shared helper agrees with the existing loss
    wrt = sum(softplus(m) for m in mus) / 3
    assert math.isclose(float(weighted_regularized_triplet(feats, pids)), wrt, rel_tol=1e-6)


def _loop_reference(feats: torch.Tensor, pids: torch.Tensor) -> float:
    n = len(pids)
    d = [[float(torch.norm(feats[i] - feats[j])) for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        pos = [j for j in range(n) if pids[j] == pids[i]]
        neg = [j for j in range(n) if pids[j] != pids[i]]
        zp = sum(math.exp(d[i][j]) for j in pos)
        zn = sum(math.exp(-d[i][k]) for k in neg)
        mu = sum(math.exp(d[i][j]) / zp * d[i][j] for j in pos) - sum(math.exp(-d[i][k]) / zn * d[i][k] for k in neg)
        total += softplus(math.copysign(min(mu * mu, 88.0), mu))
    return total / n


def test_matches_a_loop_over_a_mixed_modality_batch() -> None:
    torch.manual_seed(0)
    pids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])  # e.g. [x^v, x~^v, x^r] of 3 identities
    feats = torch.randn(9, 6, requires_grad=True)
    loss = squared_difference_wrt(feats, pids)
    assert math.isclose(float(loss.detach()), _loop_reference(feats.detach(), pids), rel_tol=1e-5)
    loss.backward()
    assert bool(torch.isfinite(feats.grad).all()) and float(feats.grad.abs().sum()) > 0


def test_clamp_at_88_matches_the_public_code_form() -> None:
    # anchor 0 has a positive at 20 and a negative at 1: mu ~ 19, mu^2 ~ 361 > 88 is clamped
    feats = torch.tensor([[0.0], [20.0], [1.0]], requires_grad=True)
    pids = torch.tensor([0, 0, 1])
    loss = squared_difference_wrt(feats, pids)
    mu = wrt_margins(feats.detach(), pids)
    # the public code: SoftMarginLoss(clamp_max(mu^2, 88), y) with y = -1 where mu > 0 and +1 otherwise
    y = -((mu > 0).float() + (mu > 0).float() - 1)
    code = F.soft_margin_loss(torch.clamp_max(mu.pow(2), 88.0), y)
    assert math.isclose(float(loss.detach()), float(code), rel_tol=1e-6)
    assert float(mu[0]) > math.sqrt(88) and math.isclose(float(loss.detach()), _loop_reference(feats.detach(), pids),
                                                          rel_tol=1e-6)
    loss.backward()
    assert bool(torch.isfinite(feats.grad).all())


def test_registered_loss_reads_the_selected_feature() -> None:
    feats = torch.tensor([[0.0], [2.0]])
    batch = Batch(images=torch.zeros(2, 3, 2, 2), pids=torch.tensor([0, 1]), camids=torch.zeros(2, dtype=torch.long),
                  modality=torch.tensor([0, 1]), index=torch.arange(2))
    out = ModelOutput(features=feats, bn_features=torch.zeros(2, 1))
    assert math.isclose(float(build_loss("wrt_squared")(out, batch)), softplus(-4.0), rel_tol=1e-5)
    assert math.isclose(float(build_loss("wrt_squared", feature="bn_features")(out, batch)), softplus(0.0),
                        rel_tol=1e-6)
    with pytest.raises(ValueError, match="must be > 0"):
        build_loss("wrt_squared", max_square=0.0)
