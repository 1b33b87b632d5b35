"""CMTR's L_MAC and L_MAID against hand-worked values (seeds/001 §2 §3.3; METHODS.md §6)."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.losses import build_loss
from vireid.methods.cmtr.losses import modality_aware_centre
from vireid.types import Batch, ModelOutput


def softplus(x: float) -> float:
    return math.log(1.0 + math.exp(x))


# 5 images: identity 0 = visible (0,0), infrared (3,4), visible (0,2); identity 1 = visible and infrared (1,0)
REMOVED = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0], [1.0, 0.0], [1.0, 0.0]])
PIDS = torch.tensor([0, 0, 0, 1, 1])
MODALITY = torch.tensor([0, 1, 0, 0, 1])


def _batch(pids: torch.Tensor = PIDS, modality: torch.Tensor = MODALITY) -> Batch:
    n = len(pids)
    return Batch(images=torch.zeros(n, 3, 4, 2), pids=pids, camids=torch.zeros(n, dtype=torch.long),
                 modality=modality, index=torch.arange(n))


def test_mac_joint_centre_by_hand() -> None:
    # identity 0's joint centre: ((0,0) + (3,4) + (0,2)) / 3 = (1, 2); distances sqrt(5), sqrt(8), 1
    # identity 1's centre (1, 0): distances 0, 0 -> log(1 + e^0) = log 2
    expected = [softplus(math.sqrt(5)), softplus(math.sqrt(8)), softplus(1.0), math.log(2), math.log(2)]
    got = modality_aware_centre(REMOVED, PIDS, MODALITY, "joint")
    assert float(got) == pytest.approx(sum(expected) / 5, rel=1e-6)
    assert float(modality_aware_centre(REMOVED, PIDS, MODALITY, "joint", "sum")) == pytest.approx(sum(expected),
                                                                                                 rel=1e-6)


def test_mac_per_modality_centre_by_hand() -> None:
    # identity 0 visible: centre (0, 1), distances 1, 1; every other (identity, modality) group has one image: 0
    expected = [softplus(1.0), math.log(2), softplus(1.0), math.log(2), math.log(2)]
    loss = build_loss("cmtr_mac", centre="per_modality")
    out = ModelOutput(features=REMOVED, bn_features=REMOVED, extras={"removed_features": REMOVED})
    assert float(loss(out, _batch())) == pytest.approx(sum(expected) / 5, rel=1e-6)


def test_mac_gradient_is_finite_at_a_zero_distance() -> None:
    removed = REMOVED.clone().requires_grad_(True)
    modality_aware_centre(removed, PIDS, MODALITY, "per_modality").backward()
    assert bool(torch.isfinite(removed.grad).all())
    # a one-image group sits on its own centre: no gradient for it
    assert torch.equal(removed.grad[1], torch.zeros(2))


def test_maid_is_the_cross_entropy_of_the_removed_logits() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    pids = torch.tensor([0, 1])
    out = ModelOutput(features=torch.zeros(2, 2), bn_features=torch.zeros(2, 2), logits=torch.zeros(2, 2),
                      extras={"removed_logits": logits})
    expected = (softplus(-2.0) + softplus(-1.0)) / 2  # -log softmax = log(1 + e^(other - own))
    batch = _batch(pids, torch.tensor([0, 1]))
    assert float(build_loss("cmtr_maid")(out, batch)) == pytest.approx(expected, rel=1e-6)
    assert float(build_loss("cmtr_maid", reduction="sum")(out, batch)) == pytest.approx(2 * expected, rel=1e-6)


def test_losses_name_the_missing_extras() -> None:
    out = ModelOutput(features=torch.zeros(2, 2), bn_features=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"cmtr_mac: the model output has no extras\['removed_features'\]"):
        build_loss("cmtr_mac")(out, _batch(torch.tensor([0, 1]), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match=r"cmtr_mac.\.centre: input should be .joint. or .per_modality., got .global."):
        build_loss("cmtr_mac", centre="global")
