"""SAP's teacher targets on a hand-built part map (seeds/002 §4; METHODS.md §14)."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.methods.sap.targets import (band_part_map, part_map_from_parsing, patch_affinity_target,
                                        patch_part_targets)

# coarse part ids (0 = background), 4 x 4
MAP = torch.tensor([[0, 0, 1, 1],
                    [0, 0, 1, 1],
                    [2, 2, 2, 0],
                    [2, 2, 0, 0]])


def _softmax(xs: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in xs)
    return [math.exp(x) / z for x in xs]


def test_part_distribution_and_foreground_by_hand() -> None:
    m_hat, m_f = patch_part_targets(MAP[None], 3, patch_size=2, stride=2, lam=1.0, gamma=0.5)
    # 2x2 patches, row-major: all background, all part 1, all part 2, 3/4 background + 1/4 part 2
    fractions = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.75, 0, 0.25]]
    expected = torch.tensor([_softmax(f) for f in fractions])
    torch.testing.assert_close(m_hat[0], expected)
    # m^[B]: e/(e+2) = 0.576 >= 0.5 (background); 1/(e+2) = 0.21; 0.21; e^.75/(e^.75+1+e^.25) = 0.4810 < 0.5
    assert m_f[0].tolist() == [False, True, True, True]
    assert expected[3, 0] == pytest.approx(0.4810, abs=1e-4)
    _, m_f10 = patch_part_targets(MAP[None], 3, 2, 2, lam=10.0)
    assert m_f10[0].tolist() == [False, True, True, False]  # lambda 10: the mostly-background patch is background


def test_overlapping_patches_count_the_windows_the_vit_cuts() -> None:
    m_hat, _ = patch_part_targets(MAP[None], 3, patch_size=2, stride=1, lam=1.0)
    assert m_hat.shape == (1, 9, 3)  # (floor((4-2)/1)+1)^2
    # patch (row 1, col 1) covers [[0, 1], [2, 2]]: fractions (1/4, 1/4, 1/2)
    torch.testing.assert_close(m_hat[0, 4], torch.tensor(_softmax([0.25, 0.25, 0.5])))


def test_a_patch_by_hand() -> None:
    m_hat, m_f = patch_part_targets(MAP[None], 3, 2, 2, lam=1.0)
    a = patch_affinity_target(m_hat, m_f)[0]  # (5, 5)
    rows = m_hat[0].tolist()
    flags = [0.0, 1.0, 1.0, 1.0]
    expected = [[1.0] + flags] + [[flags[i]] + [sum(x * y for x, y in zip(rows[i], rows[j])) for j in range(4)]
                                  for i in range(4)]
    torch.testing.assert_close(a, torch.tensor(expected))


def test_parsing_teacher_maps_atr_labels_to_coarse_parts() -> None:
    atr = torch.tensor([[0, 2, 4, 6], [9, 14, 16, 11]])  # bg, hair, upper, pants / left shoe, left arm, bag, face
    assert part_map_from_parsing(atr).tolist() == [[0, 1, 2, 3], [6, 4, 7, 1]]
    with pytest.raises(ValueError, match=r"ATR label ids must lie in 0..17, got 0..18"):
        part_map_from_parsing(torch.tensor([[0, 18]]))


def test_rule_based_teacher_is_horizontal_bands_all_foreground() -> None:
    bands = band_part_map(2, 14, 3, 7)
    assert bands.shape == (2, 14, 3)
    assert bands[0, :, 0].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    assert bool((bands[:, :, 0:1] == bands).all())
    _, m_f = patch_part_targets(bands, 8, 2, 2, lam=10.0)
    assert bool(m_f.all())  # no background anywhere
