"""SPOT's loss terms (seeds/001 §4 §3.3) against hand-worked values, and the recipe's weighted total
``L = L_B + lambda1 L_IS + lambda2 L_IP + L_IF``."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.config import LossConfig
from vireid.engine.build import build_losses
from vireid.methods.spot.losses import SPOTBaseLoss, SPOTFusedLoss, spot_branch_loss
from vireid.types import Batch, ModelOutput

PIDS = torch.tensor([0, 0, 1, 1])
FEATS = torch.tensor([[0.0], [1.0], [3.0], [5.0]])  # 1-D embeddings: distances are |a - b|
LOGITS = torch.tensor([[math.log(3.0), 0.0]] * 2 + [[0.0, math.log(3.0)]] * 2)  # p(true) = 3/4 everywhere


def _ce(eps: float) -> float:
    # q = (1 - eps + eps/2, eps/2), log p = (log 3/4, log 1/4) for every row
    return -((1 - eps / 2) * math.log(0.75) + (eps / 2) * math.log(0.25))


def _wrt() -> float:
    def soft(d: list[float], sign: float) -> float:
        w = [math.exp(sign * x) for x in d]
        return sum(wi * x for wi, x in zip(w, d)) / sum(w)

    x = [0.0, 1.0, 3.0, 5.0]
    total = 0.0
    for i in range(4):
        pos = [abs(x[i] - x[j]) for j in range(4) if PIDS[j] == PIDS[i]]  # the anchor itself included
        neg = [abs(x[i] - x[j]) for j in range(4) if PIDS[j] != PIDS[i]]
        total += math.log1p(math.exp(soft(pos, 1.0) - soft(neg, -1.0)))
    return total / 4


def _hard(margin: float) -> float:
    # anchor 0: pos max 1, neg min 3; 1: 1, 2; 2: 2, 2; 3: 2, 4
    return sum(max(p - n + margin, 0.0) for p, n in ((1, 3), (1, 2), (2, 2), (2, 4))) / 4


def _batch() -> Batch:
    return Batch(torch.zeros(4, 3, 8, 4), PIDS, torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 0, 1]),
                 torch.arange(4))


def test_branch_loss_hand_worked() -> None:
    got = spot_branch_loss(FEATS, LOGITS, PIDS, epsilon=0.1)
    assert float(got) == pytest.approx(_ce(0.1) + _wrt(), rel=1e-5)
    got = spot_branch_loss(FEATS, LOGITS, PIDS, epsilon=0.0, triplet="hard", margin=0.5)
    assert float(got) == pytest.approx(-math.log(0.75) + _hard(0.5), rel=1e-5)
    assert _hard(0.5) == pytest.approx(0.125)  # only anchor 2 (x = 3): 2 - 2 + 0.5


def test_each_term_reads_its_branch_and_the_total_is_weighted() -> None:
    zero = torch.zeros(4, 1)
    scale = {"base": 1.0, "is": 2.0, "ip": 3.0}
    extras = {}
    for b, s in scale.items():
        extras[f"{b}_features"], extras[f"{b}_logits"] = FEATS * s, LOGITS * s
    out = ModelOutput(features=FEATS * 4.0, bn_features=zero, logits=LOGITS * 4.0, extras=extras)
    batch = _batch()
    cfgs = [LossConfig(name="spot_base", weight=1.0), LossConfig(name="spot_is", weight=0.5, params={"epsilon": 0.0}),
            LossConfig(name="spot_ip", weight=0.25), LossConfig(name="spot_if", weight=1.0)]
    losses = build_losses(cfgs)
    values = {n.name: float(n.fn(out, batch)) for n in losses}
    for name, s, eps in (("spot_base", 1.0, 0.1), ("spot_is", 2.0, 0.0), ("spot_ip", 3.0, 0.1), ("spot_if", 4.0, 0.1)):
        expected = float(spot_branch_loss(FEATS * s, LOGITS * s, PIDS, epsilon=eps))
        assert values[name] == pytest.approx(expected, rel=1e-6), name
    # branch "base" at scale 1 is the hand-worked value
    assert values["spot_base"] == pytest.approx(_ce(0.1) + _wrt(), rel=1e-5)
    total = sum(n.weight * n.fn(out, batch) for n in losses)
    expected = values["spot_base"] + 0.5 * values["spot_is"] + 0.25 * values["spot_ip"] + values["spot_if"]
    assert float(total) == pytest.approx(expected, rel=1e-6)


def test_missing_branch_and_bad_options_are_named() -> None:
    out = ModelOutput(features=FEATS, bn_features=FEATS, logits=LOGITS)
    with pytest.raises(KeyError, match=r"spot_base: the model output has no extras \['base_features', 'base_logits'\]"):
        SPOTBaseLoss()(out, _batch())
    with pytest.raises(ValueError, match="no logits"):
        SPOTFusedLoss()(ModelOutput(features=FEATS, bn_features=FEATS), _batch())
    with pytest.raises(ValueError, match="triplet must be one of"):
        SPOTBaseLoss(triplet="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\)"):
        SPOTFusedLoss(epsilon=1.0)
