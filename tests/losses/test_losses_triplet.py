"""Batch-hard triplet and WRT (seeds/001 §1) against hand-worked numbers and per-anchor loops."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.types import Batch
from vireid.errors import ConfigError
from vireid.losses import (
    TripletBatchHard,
    WeightedRegularizedTriplet,
    pairwise_euclidean,
    triplet_batch_hard,
    weighted_regularized_triplet,
)
from vireid.types import ModelOutput

# Four 2-D points, two identities (think A, C visible and B, D infrared):
#   A = (0, 0) id 0, B = (3, 4) id 0, C = (6, 0) id 1, D = (6, 8) id 1
# Distances: AB = 5, AC = 6, AD = 10, BC = 5, BD = 5, CD = 8.
POINTS = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 0.0], [6.0, 8.0]])
PIDS = torch.tensor([0, 0, 1, 1])


def _random_batch(seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(8, 16, generator=gen) * scale
    pids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # 4 ids x (1 visible + 1 infrared)
    return features, pids


def _dist64(x: torch.Tensor, normalize: bool = False) -> list[list[float]]:
    x = x.double()
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return [[float((x[i] - x[j]).norm()) for j in range(len(x))] for i in range(len(x))]


def _batch_hard_loop(x: torch.Tensor, pids: torch.Tensor, margin: float, normalize: bool = False) -> float:
    d = _dist64(x, normalize)
    n = len(d)
    total = 0.0
    for i in range(n):
        pos = max(d[i][j] for j in range(n) if pids[j] == pids[i])
        neg = min(d[i][j] for j in range(n) if pids[j] != pids[i])
        total += max(pos - neg + margin, 0.0)
    return total / n


def _wrt_loop(x: torch.Tensor, pids: torch.Tensor, normalize: bool = False) -> float:
    """Literal seeds/001 §1: w^p = exp(d)/sum exp(d) over P_i (anchor included), w^n = exp(-d)/sum over N_i."""
    d = _dist64(x, normalize)
    n = len(d)
    total = 0.0
    for i in range(n):
        pos = [d[i][j] for j in range(n) if pids[j] == pids[i]]
        neg = [d[i][k] for k in range(n) if pids[k] != pids[i]]
        zp = sum(math.exp(v) for v in pos)
        zn = sum(math.exp(-v) for v in neg)
        s = sum(math.exp(v) / zp * v for v in pos) - sum(math.exp(-v) / zn * v for v in neg)
        total += math.log1p(math.exp(s))
    return total / n


def test_pairwise_euclidean() -> None:
    expected = torch.tensor([[0, 5, 6, 10], [5, 0, 5, 5], [6, 5, 0, 8], [10, 5, 8, 0]], dtype=torch.float32)
    torch.testing.assert_close(pairwise_euclidean(POINTS), expected, atol=1e-5, rtol=0)
    x, _ = _random_batch(0)
    y = torch.randn(3, 16)
    reference = torch.cdist(x.double(), y.double()).float()
    torch.testing.assert_close(pairwise_euclidean(x, y), reference, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = pairwise_euclidean(x.bfloat16())
    assert d.dtype == torch.float32
    xb = x.bfloat16().double()
    torch.testing.assert_close(d, torch.cdist(xb, xb).float(), rtol=1e-4, atol=1e-3)
    assert bool((d.diagonal() <= 1e-6).all())  # self-distances exact (up to the 1e-12 clamp)


def test_batch_hard_hand_worked() -> None:
    # anchor: hardest positive, hardest negative, [d_ap - d_an + 0.3]_+
    #   A: AB 5, min(AC 6, AD 10) = 6 -> [5 - 6 + 0.3]_+ = 0
    #   B: BA 5, min(BC 5, BD 5)  = 5 -> 0.3
    #   C: CD 8, min(CA 6, CB 5)  = 5 -> 3.3
    #   D: DC 8, min(DA 10, DB 5) = 5 -> 3.3
    # mean = (0 + 0.3 + 3.3 + 3.3) / 4 = 1.725
    assert triplet_batch_hard(POINTS, PIDS, margin=0.3).item() == pytest.approx(1.725, abs=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_batch_hard_against_loop(normalize: bool) -> None:
    x, pids = _random_batch(1)
    got = triplet_batch_hard(x, pids, margin=0.3, normalize=normalize)
    assert got.item() == pytest.approx(_batch_hard_loop(x, pids, 0.3, normalize), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("normalize", [False, True])
def test_batch_hard_single_identity_is_zero_with_graph(normalize: bool) -> None:
    """No negatives: 0 with zero gradients, without a host-side branch (every hinge is relu(-inf))."""
    x = torch.randn(4, 3, requires_grad=True)
    loss = triplet_batch_hard(x, torch.zeros(4, dtype=torch.long), normalize=normalize)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_wrt_hand_worked() -> None:
    e = math.exp

    def softplus(v: float) -> float:
        return math.log(1 + e(v))

    # anchor A: positives {A: 0, B: 5}, negatives {C: 6, D: 10}
    pa = 5 * e(5) / (e(0) + e(5))
    na = (6 * e(-6) + 10 * e(-10)) / (e(-6) + e(-10))
    # anchor B: positives {B: 0, A: 5}, negatives {C: 5, D: 5} -> negative term exactly 5
    pb = 5 * e(5) / (e(0) + e(5))
    nb = 5.0
    # anchor C: positives {C: 0, D: 8}, negatives {A: 6, B: 5}
    pc = 8 * e(8) / (e(0) + e(8))
    nc = (6 * e(-6) + 5 * e(-5)) / (e(-6) + e(-5))
    # anchor D: positives {D: 0, C: 8}, negatives {A: 10, B: 5}
    pd = 8 * e(8) / (e(0) + e(8))
    nd = (10 * e(-10) + 5 * e(-5)) / (e(-10) + e(-5))
    expected = (softplus(pa - na) + softplus(pb - nb) + softplus(pc - nc) + softplus(pd - nd)) / 4
    assert expected == pytest.approx(1.69209, abs=1e-5)  # 0.28598 + 0.29883 + 3.07283 + 3.11073, / 4
    assert weighted_regularized_triplet(POINTS, PIDS).item() == pytest.approx(expected, rel=1e-5)
    assert _wrt_loop(POINTS, PIDS) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("normalize", [False, True])
def test_wrt_against_loop(normalize: bool) -> None:
    x, pids = _random_batch(2)
    got = weighted_regularized_triplet(x, pids, normalize=normalize)
    assert got.item() == pytest.approx(_wrt_loop(x, pids, normalize), rel=1e-5)


def test_wrt_stable_at_large_distances() -> None:
    # distances ~ 150-250: exp(d) overflows float32 (> 88), the max-subtracted softmax does not
    x, pids = _random_batch(3, scale=40.0)
    assert pairwise_euclidean(x).max() > 100
    got = weighted_regularized_triplet(x, pids)
    assert torch.isfinite(got) and got.item() == pytest.approx(_wrt_loop(x, pids), rel=1e-5)


def test_wrt_public_code_weights() -> None:
    # small distances: the public code's softmax_weights agrees with the formula (its +1e-6 is negligible)
    x, pids = _random_batch(4, scale=0.2)
    default = weighted_regularized_triplet(x, pids)
    public = weighted_regularized_triplet(x, pids, public_code_weights=True)
    assert public.item() == pytest.approx(default.item(), abs=1e-5)
    # distances >= 25 (POINTS x 5): its negative shift is 0, so sum exp(-d_n) ~ 1e-11 << 1e-6 and the
    # negative term vanishes: the loss becomes mean softplus(sum w^p d^p) = (24.83 * 2 + 40 * 2) / 4
    public = weighted_regularized_triplet(POINTS * 5, PIDS, public_code_weights=True)
    pos = [25 * math.exp(25) / (1 + math.exp(25))] * 2 + [40 * math.exp(40) / (1 + math.exp(40))] * 2
    assert public.item() == pytest.approx(sum(pos) / 4, rel=1e-4)
    assert weighted_regularized_triplet(POINTS * 5, PIDS).item() == pytest.approx(_wrt_loop(POINTS * 5, PIDS), rel=1e-5)


@pytest.mark.parametrize("fn", [triplet_batch_hard, weighted_regularized_triplet])
def test_gradients_finite_with_duplicate_points(fn) -> None:
    x, pids = _random_batch(5)
    x = x.clone()
    x[4] = x[0]  # a visible/infrared pair at distance 0
    x.requires_grad_(True)
    fn(x, pids).backward()
    assert bool(torch.isfinite(x.grad).all()) and bool(x.grad.abs().sum() > 0)


@pytest.mark.parametrize("fn", [triplet_batch_hard, weighted_regularized_triplet])
def test_bf16_autocast_matches_float32_on_rounded_features(fn) -> None:
    x, pids = _random_batch(6)
    xb = x.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fn(xb, pids)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, fn(xb.float(), pids))


def _output_and_batch() -> tuple[ModelOutput, Batch]:
    x, pids = _random_batch(7)
    out = ModelOutput(features=x, bn_features=x * 2, logits=None, extras={"part": x * 3})
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    batch = Batch(torch.zeros(8, 3, 4, 4), pids, torch.zeros(8), modality, torch.arange(8))
    return out, batch


def test_modules_read_the_chosen_feature() -> None:
    out, batch = _output_and_batch()
    x, pids = out.features, batch.pids
    assert TripletBatchHard()(out, batch).item() == pytest.approx(triplet_batch_hard(x, pids).item())
    assert TripletBatchHard(feature="bn_features", margin=0.5)(out, batch).item() == pytest.approx(
        triplet_batch_hard(2 * x, pids, 0.5).item())
    assert WeightedRegularizedTriplet()(out, batch).item() == pytest.approx(
        weighted_regularized_triplet(x, pids).item())
    assert WeightedRegularizedTriplet(feature="extras:part")(out, batch).item() == pytest.approx(
        weighted_regularized_triplet(3 * x, pids).item())


def test_feature_option_errors() -> None:
    out, batch = _output_and_batch()
    with pytest.raises(ConfigError, match="feature='logits' is not one of"):
        WeightedRegularizedTriplet(feature="logits")
    with pytest.raises(KeyError, match=r"no extras\['mask'\]; extras: \['part'\]"):
        TripletBatchHard(feature="extras:mask")(out, batch)
    with pytest.raises(ValueError, match=r"expected pids of shape \(8,\)"):
        triplet_batch_hard(out.features, batch.pids[:4])
