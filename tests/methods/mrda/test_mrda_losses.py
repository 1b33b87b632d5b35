"""MRDA's losses (seeds/003 Eq. 7, 18-22) against hand-worked values and straightforward loops."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.types import Batch
from vireid.losses import build_loss
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.methods.mrda.losses import (
    MRM_LOSSES,
    correlation_consistency,
    hetero_centre_triplet,
    modality_pairs,
    region_centre,
)
from vireid.types import ModelOutput


def _batch(pids: list[int], modality: list[int]) -> Batch:
    n = len(pids)
    return Batch(images=torch.zeros(n, 3, 2, 2), pids=torch.tensor(pids), camids=torch.zeros(n, dtype=torch.long),
                 modality=torch.tensor(modality), index=torch.arange(n))


# ----------------------------------------------------------------------------- hetero-centre triplet

# id 0: visible (0,0), (2,0) -> C0v = (1,0); infrared (1,1), (1,3) -> C0r = (1,2)
# id 1: visible (4,0), (4,2) -> C1v = (4,1); infrared (5,0), (3,0) -> C1r = (4,0)
HC_FEATS = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [4.0, 2.0],
                         [1.0, 1.0], [1.0, 3.0], [5.0, 0.0], [3.0, 0.0]])
HC_PIDS = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
HC_MOD = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_hetero_centre_triplet_by_hand() -> None:
    rho = 1.5
    # anchor C0v: pos ||C0v - C0r|| = 2; negs ||C0v - C1v|| = sqrt(10), ||C0v - C1r|| = 3 -> 1.5 + 2 - 3 = 0.5
    # anchor C0r: pos 2; negs ||C0r - C1v|| = sqrt(10), ||C0r - C1r|| = sqrt(13) -> 1.5 + 2 - sqrt(10) = 0.3377
    # anchor C1v: pos 1; negs sqrt(10), sqrt(10) -> 1.5 + 1 - 3.162 < 0 -> 0
    # anchor C1r: pos 1; negs 3, sqrt(13) -> 1.5 + 1 - 3 < 0 -> 0
    terms = [0.5, 1.5 + 2 - math.sqrt(10), 0.0, 0.0]
    got_sum = hetero_centre_triplet(HC_FEATS, HC_PIDS, HC_MOD, margin=rho, reduction="sum")
    got_mean = hetero_centre_triplet(HC_FEATS, HC_PIDS, HC_MOD, margin=rho)
    assert math.isclose(float(got_sum), sum(terms), rel_tol=1e-5)
    assert math.isclose(float(got_mean), sum(terms) / 4, rel_tol=1e-5)
    # the default margin 0.3 separates these centres: every anchor is satisfied
    assert float(hetero_centre_triplet(HC_FEATS, HC_PIDS, HC_MOD)) == 0.0


def _hc_loop(feats: torch.Tensor, pids: torch.Tensor, mod: torch.Tensor, margin: float) -> torch.Tensor:
    centres = {}
    for p in pids.unique().tolist():
        for m in (0, 1):
            rows = [i for i in range(len(pids)) if pids[i] == p and mod[i] == m]
            if rows:
                centres[(p, m)] = feats[rows].mean(0)
    terms = []
    for (p, m), c in centres.items():
        if (p, 1 - m) not in centres:
            continue
        pos = torch.norm(c - centres[(p, 1 - m)])
        neg = min(torch.norm(c - other) for (q, _), other in centres.items() if q != p)
        terms.append(torch.clamp(margin + pos - neg, min=0))
    return torch.stack(terms).mean()


def test_hetero_centre_triplet_matches_a_loop_and_has_gradients() -> None:
    torch.manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2])
    mod = torch.tensor([0] * 6 + [1] * 6)
    feats = torch.randn(12, 5, requires_grad=True)
    loss = hetero_centre_triplet(feats, pids, mod, margin=2.0)
    torch.testing.assert_close(loss, _hc_loop(feats.detach(), pids, mod, 2.0))
    loss.backward()
    assert bool(torch.isfinite(feats.grad).all()) and float(feats.grad.abs().sum()) > 0


def test_hetero_centre_triplet_degenerate_batches_give_zero() -> None:
    feats = torch.randn(4, 3, requires_grad=True)
    one_id = hetero_centre_triplet(feats, torch.tensor([2, 2, 2, 2]), torch.tensor([0, 0, 1, 1]))
    assert float(one_id.detach()) == 0.0 and one_id.requires_grad
    one_modality = hetero_centre_triplet(feats, torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 0, 0]))
    assert float(one_modality.detach()) == 0.0
    with pytest.raises(ValueError, match="reduction must be"):
        hetero_centre_triplet(feats, torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]), reduction="max")


# ----------------------------------------------------------------------------- correlation consistency


def test_correlation_consistency_by_hand() -> None:
    # F^v = I: G^v = I / sqrt(2). F^r = [[1,0],[1,0]]: F F^T = all ones, G^r = all 1/2.
    # G^v - G^r = [[1/sqrt2 - 1/2, -1/2], [-1/2, 1/sqrt2 - 1/2]]; Frobenius^2 = 2 (1/sqrt2 - 1/2)^2 + 2/4 = 2 - sqrt2
    fv = torch.eye(2)
    fr = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert math.isclose(float(correlation_consistency(fv, fr)), math.sqrt(2 - math.sqrt(2)), rel_tol=1e-6)
    assert float(correlation_consistency(fv, 3 * fv)) == pytest.approx(0.0, abs=1e-7)  # scale-free
    with pytest.raises(ValueError, match="two \\(n, D\\) feature matrices of one shape"):
        correlation_consistency(fv, torch.ones(3, 2))


def test_correlation_consistency_matches_a_loop() -> None:
    torch.manual_seed(0)
    fv, fr = torch.randn(6, 4), torch.randn(6, 4)

    def gram(f: torch.Tensor) -> list[list[float]]:
        g = [[float(sum(f[i, k] * f[j, k] for k in range(4))) for j in range(6)] for i in range(6)]
        norm = math.sqrt(sum(v * v for row in g for v in row))
        return [[v / norm for v in row] for row in g]

    gv, gr = gram(fv), gram(fr)
    expected = math.sqrt(sum((gv[i][j] - gr[i][j]) ** 2 for i in range(6) for j in range(6)))
    assert math.isclose(float(correlation_consistency(fv, fr)), expected, rel_tol=1e-5)


def test_correlation_consistency_loss_pairs_rows_by_sampler_order() -> None:
    fv = torch.eye(2)
    fr = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = ModelOutput(features=torch.cat([fv, fr]), bn_features=torch.zeros(4, 2))
    loss = build_loss("correlation_consistency")(out, _batch([5, 7, 5, 7], [0, 0, 1, 1]))
    assert math.isclose(float(loss), math.sqrt(2 - math.sqrt(2)), rel_tol=1e-6)
    with pytest.raises(ValueError, match="2 pairs differ, first: position 0, visible pid 5 vs infrared pid 7"):
        build_loss("correlation_consistency")(out, _batch([5, 7, 7, 5], [0, 0, 1, 1]))
    with pytest.raises(ValueError, match="3 visible and 1 infrared rows"):
        build_loss("correlation_consistency")(out, _batch([5, 7, 5, 7], [0, 0, 0, 1]))


# ----------------------------------------------------------------------------- region centre


def _maps(values: list[list[float]]) -> torch.Tensor:
    return torch.tensor(values).view(len(values), -1, 1, 1)  # (B, C, 1, 1): pooled = the values


def test_region_centre_by_hand() -> None:
    pids, mod = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    orig = _maps([[0, 0], [1, 0], [0, 3], [1, 4]])  # v0, v1, r0, r1
    masked = _maps([[3, 4], [1, 1], [0, 0], [1, 4]])
    # term 1 (visible): mean(||(0,0)-(3,4)|| = 5, ||(1,0)-(1,1)|| = 1) = 3
    # term 2 (infrared): mean(||(0,3)-(0,0)|| = 3, 0) = 1.5
    # term 3 (originals): mean(||v0 - r0|| = 3, ||v1 - r1|| = 4) = 3.5
    assert math.isclose(float(region_centre(orig, masked, pids, mod)), 3 + 1.5 + 3.5, rel_tol=1e-6)
    # term 3 on the masked copies: mean(||(3,4)-(0,0)|| = 5, ||(1,1)-(1,4)|| = 3) = 4
    assert math.isclose(float(region_centre(orig, masked, pids, mod, ac_third="masked")), 3 + 1.5 + 4, rel_tol=1e-6)


def test_region_centre_map_option_compares_whole_maps_in_terms_1_and_2() -> None:
    pids, mod = torch.tensor([0, 0]), torch.tensor([0, 1])
    orig = torch.tensor([[[[1.0, -1.0]]], [[[2.0, 2.0]]]])  # (2, 1, 1, 2): v pooled 0, r pooled 2
    masked = torch.tensor([[[[0.0, 0.0]]], [[[2.0, 2.0]]]])
    # pooled: term 1 = |0 - 0| = 0, term 2 = 0, term 3 = |0 - 2| = 2
    assert math.isclose(float(region_centre(orig, masked, pids, mod)), 2.0, rel_tol=1e-6)
    # map: term 1 = ||(1,-1) - (0,0)|| = sqrt 2; term 3 stays pooled
    assert math.isclose(float(region_centre(orig, masked, pids, mod, ac_on="map")), 2 + math.sqrt(2), rel_tol=1e-6)


def test_region_centre_matches_a_loop_and_has_finite_gradients_at_zero_distance() -> None:
    torch.manual_seed(0)
    pids, mod = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 0, 0, 1, 1, 1])
    orig = torch.randn(6, 4, 3, 2, requires_grad=True)
    masked = torch.randn(6, 4, 3, 2)
    po, pm = orig.detach().mean((2, 3)), masked.mean((2, 3))
    t1 = sum(torch.norm(po[i] - pm[i]) for i in range(3)) / 3
    t2 = sum(torch.norm(po[i] - pm[i]) for i in range(3, 6)) / 3
    t3 = sum(torch.norm(po[i] - po[i + 3]) for i in range(3)) / 3
    loss = region_centre(orig, masked, pids, mod)
    torch.testing.assert_close(loss, t1 + t2 + t3)
    loss.backward()
    assert bool(torch.isfinite(orig.grad).all())
    same = torch.zeros(2, 4, 1, 1, requires_grad=True)  # all distances 0
    region_centre(same, same.detach(), torch.tensor([0, 0]), torch.tensor([0, 1])).backward()
    assert bool(torch.isfinite(same.grad).all())


def test_region_centre_loss_reads_the_extras_and_names_what_is_missing() -> None:
    orig, masked = _maps([[0, 0], [0, 3]]), _maps([[3, 4], [0, 0]])
    out = ModelOutput(features=torch.zeros(2, 2), bn_features=torch.zeros(2, 2),
                      extras={"stage_map": orig, "masked_stage_map": masked})
    loss = build_loss("region_centre", ac_on="pooled", ac_third="orig")(out, _batch([0, 0], [0, 1]))
    assert math.isclose(float(loss), 5 + 3 + 3, rel_tol=1e-6)
    with pytest.raises(KeyError, match="no extras\\['stage_map'\\]"):
        build_loss("region_centre")(ModelOutput(torch.zeros(2, 2), torch.zeros(2, 2)), _batch([0, 0], [0, 1]))
    with pytest.raises(ValueError, match="ac_on must be one of"):
        build_loss("region_centre", ac_on="flat")
    assert MRM_LOSSES == ("region_centre",)


# ----------------------------------------------------------------------------- identity and pairing


def test_mrda_id_covers_the_masked_copies() -> None:
    torch.manual_seed(0)
    logits, masked = torch.randn(4, 6), torch.randn(4, 6)
    pids = torch.tensor([0, 5, 0, 5])
    batch = _batch(pids.tolist(), [0, 0, 1, 1])
    with_mrm = ModelOutput(torch.zeros(4, 2), torch.zeros(4, 2), logits, {"masked_logits": masked})
    expected = (cross_entropy_label_smooth(logits, pids, 0.1) + cross_entropy_label_smooth(masked, pids, 0.1)) / 2
    torch.testing.assert_close(build_loss("mrda_id", epsilon=0.1)(with_mrm, batch), expected)
    without = ModelOutput(torch.zeros(4, 2), torch.zeros(4, 2), logits)
    torch.testing.assert_close(build_loss("mrda_id")(without, batch), cross_entropy_label_smooth(logits, pids, 0.1))
    with pytest.raises(ValueError, match="no logits"):
        build_loss("mrda_id")(ModelOutput(torch.zeros(4, 2), torch.zeros(4, 2)), batch)


def test_modality_pairs_follow_batch_order() -> None:
    vis, ir = modality_pairs(torch.tensor([1, 1, 3, 3]), torch.tensor([1, 0, 0, 1]))
    assert vis.tolist() == [1, 2] and ir.tolist() == [0, 3]
    with pytest.raises(ValueError, match="visible pid 1 vs infrared pid 3"):
        modality_pairs(torch.tensor([3, 1, 1, 3]), torch.tensor([1, 0, 1, 0]))
