"""CM-LSP + BN-GE's losses (seeds/001 §6 "3.4") against hand-worked numbers and loop implementations."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.methods.cmlsp.local import shortest_path
from vireid.methods.cmlsp.losses import (
    CMLSPCentreTriplet,
    CMLSPIdentity,
    CMLSPLocal,
    cross_modal_centre_triplet,
    local_shortest_path_triplet,
    local_stripewise_triplet,
)
from vireid.types import Batch, ModelOutput


def _batch(pids: list[int], modality: list[int]) -> Batch:
    n = len(pids)
    return Batch(torch.zeros(n, 3, 4, 2), torch.tensor(pids), torch.zeros(n, dtype=torch.long),
                 torch.tensor(modality), torch.arange(n))


def test_centre_triplet_hand_worked() -> None:
    # 1-d features; identity 0: visible -0.5, 0.5 (centre 0), thermal 1; identity 1: visible 3, thermal 2, 2.
    # anchors: fc_v^0 = 0: pos 1, neg min(|0-3|, |0-2|) = 2 -> [0.3 + 1 - 2]_+ = 0; fc_v^1 = 3: pos 1, neg 2 -> 0;
    # fc_t^0 = 1: pos 1, neg min(|1-3|, |1-2|) = 1 -> 0.3;  fc_t^1 = 2: pos 1, neg min(2, 1) = 1 -> 0.3.
    f = torch.tensor([[-0.5], [0.5], [3.0], [1.0], [2.0], [2.0]])
    pids, mod = torch.tensor([0, 0, 1, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 1, 1])
    assert cross_modal_centre_triplet(f, pids, mod, 0.3, "sum").item() == pytest.approx(0.6, abs=1e-5)
    assert cross_modal_centre_triplet(f, pids, mod, 0.3, "mean").item() == pytest.approx(0.15, abs=1e-5)
    # the seed's omitted j != i matters: with j = i allowed, fc_v^0's own thermal centre (distance 1)
    # would be its "negative" too; we exclude it, so margin 0 gives 0 here.
    assert cross_modal_centre_triplet(f, pids, mod, 0.0, "sum").item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=">= 2 identities with both modalities"):
        cross_modal_centre_triplet(f[:2], pids[:2], mod[:2])


def test_centre_triplet_module_adds_the_enhanced_term() -> None:
    g = torch.Generator().manual_seed(0)
    f, e = torch.randn(8, 5, generator=g), torch.randn(8, 3, generator=g)
    b = _batch([0, 0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1])
    out = ModelOutput(f, f, None, {"enhanced": e})
    want = cross_modal_centre_triplet(f, b.pids, b.modality) + cross_modal_centre_triplet(e, b.pids, b.modality)
    torch.testing.assert_close(CMLSPCentreTriplet()(out, b), want)
    torch.testing.assert_close(CMLSPCentreTriplet(enhanced=False)(out, b),
                               cross_modal_centre_triplet(f, b.pids, b.modality))


def test_identity_hand_worked() -> None:
    # all logits 0 over N = 3 classes: each cross-entropy is log 3. h = 2 stripes, one visible and one
    # thermal image: L = g + eg + 2 visible stripes + 2 thermal stripes = 6 log 3; local_start 2: 4 log 3.
    n = 3
    out = ModelOutput(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, n),
                      {"enhanced_logits": torch.zeros(2, n), "local_logits": torch.zeros(2, 2, n)})
    b = _batch([0, 2], [0, 1])
    assert CMLSPIdentity()(out, b).item() == pytest.approx(6 * math.log(3), abs=1e-5)
    assert CMLSPIdentity(local_start=2)(out, b).item() == pytest.approx(4 * math.log(3), abs=1e-5)
    assert CMLSPIdentity(enhanced=False, local=False)(out, b).item() == pytest.approx(math.log(3), abs=1e-6)
    # a confident right stripe-1 prediction of the visible image removes one log 3 term (to ~0)
    out.extras["local_logits"][0, 0] = torch.tensor([50.0, -50.0, -50.0])
    assert CMLSPIdentity()(out, b).item() == pytest.approx(5 * math.log(3), abs=1e-5)
    with pytest.raises(ValueError, match="local_start 3 > the model's 2 stripes"):
        CMLSPIdentity(local_start=3)(out, b)


def _loop_shortest_path_triplet(local: torch.Tensor, pids: list[int], mod: list[int], margin: float) -> float:
    """Straightforward reading: for every anchor, S_hh/h to each image of the other modality by the DP on
    d_ij written out per element, hardest positive and negative, hinge, mean."""
    h = local.shape[1]

    def norm(f: torch.Tensor) -> torch.Tensor:
        return (f - f.mean()) / (f.max() - f.min() + 1e-6)

    def pair(a: int, b: int) -> float:
        d = [[float((norm(local[a, i]) - norm(local[b, j])).abs().sum()) for j in range(h)] for i in range(h)]
        s = [[0.0] * h for _ in range(h)]
        for i in range(h):
            for j in range(h):
                before = [s[i - 1][j]] * (i > 0) + [s[i][j - 1]] * (j > 0)
                s[i][j] = d[i][j] + (min(before) if before else 0.0)
        return s[h - 1][h - 1] / h

    terms = []
    for a in range(len(pids)):
        others = [b for b in range(len(pids)) if mod[b] != mod[a]]
        pos = [pair(a, b) for b in others if pids[b] == pids[a]]
        neg = [pair(a, b) for b in others if pids[b] != pids[a]]
        if pos and neg:
            terms.append(max(0.0, margin + max(pos) - min(neg)))
    return sum(terms) / len(terms)


def test_local_shortest_path_triplet_equals_a_loop_implementation() -> None:
    g = torch.Generator().manual_seed(1)
    local = torch.randn(6, 3, 4, generator=g)
    pids, mod = [0, 1, 2, 0, 1, 1], [0, 0, 0, 1, 1, 1]  # identity 2 has no thermal image: its anchor has no positive
    got = local_shortest_path_triplet(local, torch.tensor(pids), torch.tensor(mod), margin=2.0)
    assert got.item() == pytest.approx(_loop_shortest_path_triplet(local, pids, mod, 2.0), rel=1e-5)
    # local_start = 2 drops stripe 1 before the path
    got2 = local_shortest_path_triplet(local, torch.tensor(pids), torch.tensor(mod), margin=2.0, local_start=2)
    assert got2.item() == pytest.approx(_loop_shortest_path_triplet(local[:, 1:], pids, mod, 2.0), rel=1e-5)


def test_local_stripewise_triplet_hand_worked() -> None:
    # one stripe, 1-d features: a (pid 0) 0, b (pid 0) 1, c (pid 1) 3. Anchors: a: pos 1, neg 3 -> [0.5 - 2]_+ = 0;
    # b: pos 1, neg 2 -> 0; c has no positive (skipped). Margin 2.5: a -> 0.5, b -> 1.5, mean 1.0, sum 2.0.
    local = torch.tensor([[[0.0]], [[1.0]], [[3.0]]])
    pids = torch.tensor([0, 0, 1])
    assert local_stripewise_triplet(local, pids, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    assert local_stripewise_triplet(local, pids, 2.5).item() == pytest.approx(1.0, abs=1e-5)
    assert local_stripewise_triplet(local, pids, 2.5, reduction="sum").item() == pytest.approx(2.0, abs=1e-5)
    # two stripes: the second (features 0, 5, 1) gives a: [2.5 + 5 - 1]_+ = 6.5, b: [2.5 + 5 - 4]_+ = 3.5;
    # mean over the four terms (0.5, 1.5, 6.5, 3.5) = 3.0; local_start 2 keeps the second stripe: 5.0
    two = torch.tensor([[[0.0], [0.0]], [[1.0], [5.0]], [[3.0], [1.0]]])
    assert local_stripewise_triplet(two, pids, 2.5).item() == pytest.approx(3.0, abs=1e-5)
    assert local_stripewise_triplet(two, pids, 2.5, local_start=2).item() == pytest.approx(5.0, abs=1e-5)


def test_local_module_modes() -> None:
    g = torch.Generator().manual_seed(2)
    local = torch.randn(8, 4, 6, generator=g)
    b = _batch([0, 0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1])
    out = ModelOutput(torch.zeros(8, 2), torch.zeros(8, 2), None, {"local": local})
    torch.testing.assert_close(CMLSPLocal()(out, b), local_shortest_path_triplet(local, b.pids, b.modality))
    torch.testing.assert_close(CMLSPLocal(mode="stripewise")(out, b), local_stripewise_triplet(local, b.pids))
    with pytest.raises(ValueError, match="mode must be one of"):
        CMLSPLocal(mode="aligned")
    with pytest.raises(ValueError, match="local_start is 1-based"):
        CMLSPLocal(local_start=0)
    with pytest.raises(ValueError, match="extras\\['local'\\]"):
        CMLSPLocal()(ModelOutput(torch.zeros(8, 2), torch.zeros(8, 2)), b)
    assert shortest_path(torch.zeros(1, 1)).item() == 0.0
