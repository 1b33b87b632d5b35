"""MSCLNet's losses against hand-worked numbers on tiny inputs (seeds/001 §7; METHODS.md §10)."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.methods.msclnet.losses import (CascadeInter, CascadeIntra, CascadeSubclass, Diversity, GlobalComplement,
                                           LocalComplement, ModalityIdentity, SynergyIdentity, inter_class_loss,
                                           intra_class_loss, subclass_loss)
from vireid.types import Batch, ModelOutput


def batch(pids, modality, camids=None) -> Batch:
    n = len(pids)
    return Batch(images=torch.zeros(n, 3, 2, 2), pids=torch.tensor(pids), camids=torch.tensor(camids or [0] * n),
                 modality=torch.tensor(modality), index=torch.arange(n))


def test_subclass_and_intra_by_hand() -> None:
    # 1-D features; sub-classes (0, cam 1) = {0, 2} centre 1, (0, cam 2) = {10}, (1, cam 1) = {4}
    f = torch.tensor([[0.0], [2.0], [10.0], [4.0]])
    pids, subs = torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 2, 1])
    assert float(subclass_loss(f, pids, subs)) == pytest.approx((1 + 1 + 0 + 0) / 4)
    # C_0 = 4, C_1 = 4; identity 0: (1 - 4)^2 + (10 - 4)^2 = 45 for each of its 3 rows; identity 1: 0
    assert float(intra_class_loss(f, pids, subs)) == pytest.approx((45 * 3 + 0) / 4)


def test_inter_by_hand() -> None:
    f = torch.tensor([[1.0, 0.0], [3.0, 0.0], [3.0, 4.0]])  # centres (2, 0) -> (1, 0) and (3, 4) -> (0.6, 0.8)
    pids = torch.tensor([5, 5, 9])
    # ||(1, 0) - (0.6, 0.8)||^2 = 0.16 + 0.64 = 0.8 -> [1 - 0.8]_+ = 0.2
    assert float(inter_class_loss(f, pids, 1.0)) == pytest.approx(0.2, abs=1e-6)
    f3 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # normalised centres (1,0), (0,1), (-1,0): d2 2, 4, 2
    assert float(inter_class_loss(f3, torch.tensor([0, 1, 2]), 3.0)) == pytest.approx((1 + 0 + 1) / 3, abs=1e-6)
    assert float(inter_class_loss(f3, torch.tensor([0, 0, 0]), 3.0)) == 0.0


def test_cascade_modules_on_regdb_like_cameras_collapse_to_modalities() -> None:
    # RegDB: one visible camera (1) and one thermal camera (2): (identity, camera) = (identity, modality)
    bn = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    out = ModelOutput(features=bn, bn_features=bn)
    b = batch([0, 0, 1, 1], [0, 1, 0, 1], camids=[1, 2, 1, 2])
    unit = torch.nn.functional.normalize(bn, dim=1)
    assert float(CascadeSubclass()(out, b)) == pytest.approx(0.0, abs=1e-7)  # every sub-class holds one image
    assert float(CascadeIntra()(out, b)) == pytest.approx(float(intra_class_loss(unit, b.pids, b.modality)))
    want = float(inter_class_loss(unit, b.pids, 1.0))
    assert float(CascadeInter()(out, b)) == pytest.approx(want)


def test_diversity_by_hand() -> None:
    # pair 0: p^v = (1/2, 1/2), p^r = (3/4, 1/4): KL = 1/2 ln(4/3); pair 1: KL ~ 9.3 -> clamped at 2
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(3.0), 0.0], [20.0, 0.0]])
    out = ModelOutput(features=logits, bn_features=logits, logits=logits,
                      extras={"pair_visible": torch.tensor([0, 1]), "pair_infrared": torch.tensor([2, 3])})
    got = float(Diversity(clamp=2.0)(out, batch([0, 1, 0, 1], [0, 0, 1, 1])))
    assert got == pytest.approx(-(0.5 * math.log(4 / 3) + 2.0) / 2, abs=1e-6)


def test_modality_and_synergy_identity_by_hand() -> None:
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # a visible row of id 0, an infrared row of id 1
    out = ModelOutput(features=logits, bn_features=logits, logits=logits,
                      extras={"pair_visible": torch.tensor([0]), "pair_infrared": torch.tensor([1]),
                              "synergy_logits": torch.tensor([[0.0, 0.0]])})
    b = batch([0, 1], [0, 1])
    assert float(ModalityIdentity(epsilon=0.0)(out, b)) == pytest.approx(-math.log(0.75) + math.log(2.0))
    with pytest.raises(ValueError, match="must share an identity"):
        SynergyIdentity(epsilon=0.0)(out, b)
    b_same = batch([0, 0], [0, 1])
    assert float(SynergyIdentity(epsilon=0.0)(out, b_same)) == pytest.approx(math.log(2.0))


def test_local_by_hand() -> None:
    bv = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])  # one pair, three parts
    bs = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [-1.0, 0.0]]])  # cos 0, 1, -1
    out = ModelOutput(features=bv[0], bn_features=bv[0], extras={"synergy_parts": bs, "visible_parts": bv})
    got = float(LocalComplement(eps=1e-12)(out, batch([0, 0], [0, 1])))
    assert got == pytest.approx((1 + math.sqrt(2)) + (0 + 1e-6) + (2 + 2), abs=1e-5)


def test_global_by_hand() -> None:
    # pairs (ids 0, 0, 1): normalised synergy (1,0), (0,1) -> C^s_0 = (.5,.5); (3,4) -> C^s_1 = (.6,.8)
    # infrared rows 3, 4, 5: id 0 (2,0), (7,0) -> C^r_0 = (1,0); id 1 (0,5) -> C^r_1 = (0,1)
    syn = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    bn = torch.tensor([[9.0, 9.0], [9.0, 9.0], [9.0, 9.0], [2.0, 0.0], [7.0, 0.0], [0.0, 5.0]])
    out = ModelOutput(features=bn, bn_features=bn, extras={"synergy_bn": syn, "pair_visible": torch.tensor([0, 1, 2]),
                                                           "pair_infrared": torch.tensor([3, 4, 5])})
    got = float(GlobalComplement()(out, batch([0, 0, 1, 0, 0, 1], [0, 0, 0, 1, 1, 1])))
    assert got == pytest.approx((0.5 + 0.5 + 0.4) / 3, abs=1e-6)
