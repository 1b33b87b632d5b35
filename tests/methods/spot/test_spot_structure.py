"""SPOT's structure parts (seeds/001 §4 §3.1-3.2): part pooling against a loop, the sinusoidal part
encoding against hand-worked values, the relation net's size rule, the heatmap resize and fallback."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.data.aux_store import uniform_heatmaps as store_uniform
from vireid.methods.spot.structure import PartMasks, RelationNet, part_pool, resize_heatmaps, uniform_heatmaps
from vireid.methods.spot.tpi import PartInteraction, sinusoidal_positions


def test_part_pool_equals_a_loop_over_parts_and_positions() -> None:
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(2, 3, 4, 2, generator=g)  # (B, p, H, W)
    feats = torch.randn(2, 5, 4, 2, generator=g)  # (B, C, H, W)
    eps = 1e-6
    expected = torch.zeros(2, 3, 5)
    for b in range(2):
        for i in range(3):
            num = torch.zeros(5)
            den = 0.0
            for y in range(4):
                for x in range(2):
                    num += masks[b, i, y, x] * feats[b, :, y, x]
                    den += float(masks[b, i, y, x])
            expected[b, i] = num / (den + eps)
    torch.testing.assert_close(part_pool(masks, feats, eps), expected, rtol=1e-5, atol=1e-6)


def test_part_pool_of_a_one_hot_mask_picks_the_position() -> None:
    feats = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(1, 2, 3, 2)  # (1, C=2, H=3, W=2)
    masks = torch.zeros(1, 1, 3, 2)
    masks[0, 0, 2, 1] = 1.0  # only (h=2, w=1)
    out = part_pool(masks, feats, eps=0.0)
    torch.testing.assert_close(out[0, 0], feats[0, :, 2, 1])


def test_part_pool_rejects_mismatched_maps() -> None:
    with pytest.raises(ValueError, match="part_pool"):
        part_pool(torch.rand(1, 2, 4, 2), torch.rand(1, 3, 4, 3))


def test_sinusoidal_positions_hand_worked() -> None:
    # pos = part index, d_m = 4 (width), dims 2k / 2k+1 (METHODS.md §11's corrected reading)
    pe = sinusoidal_positions(3, 4, base=10000.0)
    for pos in range(3):
        expected = [math.sin(pos), math.cos(pos), math.sin(pos / 100.0), math.cos(pos / 100.0)]
        torch.testing.assert_close(pe[pos], torch.tensor(expected, dtype=torch.float32))
    odd = sinusoidal_positions(2, 3, base=4.0)  # odd width: the last column is a sine
    torch.testing.assert_close(odd[1], torch.tensor([math.sin(1.0), math.cos(1.0), math.sin(1.0 / 4.0 ** (2 / 3))]))


def test_part_interaction_adds_positions_before_the_encoder() -> None:
    seen = {}

    class Record(torch.nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            seen["tokens"] = tokens
            return tokens * 2.0

    tpi = PartInteraction(4, parts=3, encoder=Record())
    parts = torch.zeros(2, 3, 4)
    tokens, mean = tpi(parts)
    torch.testing.assert_close(seen["tokens"][1], sinusoidal_positions(3, 4))  # zeros + PE
    torch.testing.assert_close(mean, (2.0 * sinusoidal_positions(3, 4)).mean(0).expand(2, 4))
    with pytest.raises(ValueError, match="expected part features"):
        tpi(torch.zeros(2, 4, 4))


def test_relation_net_maps_4x_heatmaps_to_the_feature_size() -> None:
    net = RelationNet(joints=17, out_channels=16, hidden=8)
    assert net(torch.rand(2, 17, 16, 8)).shape == (2, 16, 4, 2)
    assert net(torch.rand(1, 17, 72, 36)).shape == (1, 16, 18, 9)  # 288x144 ResNet (last stride 1): 18x9
    with pytest.raises(ValueError, match="RelationNet: expected heatmaps"):
        net(torch.rand(2, 18, 16, 8))


def test_part_masks_are_in_0_1() -> None:
    m = PartMasks(8, parts=6)(torch.randn(2, 8, 4, 2) * 10)
    assert m.shape == (2, 6, 4, 2) and bool(((m >= 0) & (m <= 1)).all())


def test_resize_heatmaps_keeps_mass_when_shrinking_and_matches_the_store_fallback() -> None:
    hm = torch.zeros(1, 1, 8, 4)
    hm[0, 0, 0:2, 0:2] = 1.0
    small = resize_heatmaps(hm, 4, 2)
    assert small.shape == (1, 1, 4, 2) and float(small[0, 0, 0, 0]) == 1.0 and float(small.sum()) == 1.0
    assert torch.equal(resize_heatmaps(hm, 8, 4), hm)
    assert resize_heatmaps(hm, 16, 8).shape == (1, 1, 16, 8)
    u = uniform_heatmaps(2, 17, 16, 8, like=hm)
    torch.testing.assert_close(u[1].numpy(), store_uniform(17, 16, 8)("any.jpg"))
