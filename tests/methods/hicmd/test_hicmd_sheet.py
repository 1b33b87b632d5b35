"""The swap contact sheet: cell (i, j) is the identity codes of image i with the excluded codes of j."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.methods.hicmd.model import HiCMD
from vireid.methods.hicmd.sheet import pick_pairs, render_sheet, swap_grid, swap_spread
from vireid.types import Modality, Sample


def test_swap_grid_cells_decode_row_identity_with_column_pose_and_illumination() -> None:
    torch.manual_seed(0)
    model = HiCMD(0, dim=4, style_dim=3, illum_dim=2, pose_dim=2, num_res=1, feat_dim=8).train()
    rows, cols = torch.randn(2, 3, 16, 8), torch.randn(3, 3, 16, 8)
    grid = swap_grid(model, rows, cols)
    assert grid.shape == (2, 3, 3, 16, 8) and model.training  # the mode is restored
    model.eval()
    p, s, _, _ = model.encode(rows)
    _, _, mu, _ = model.encode(cols)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(grid[i, j], model.decode(p[i:i + 1], s[i:i + 1], mu[j:j + 1])[0],
                                       atol=1e-5, rtol=1e-4)


def test_render_sheet_places_heads_and_cells() -> None:
    h, w, gap = 4, 2, 2
    row_heads = np.zeros((2, h, w, 3))
    col_heads = np.full((3, h, w, 3), 0.5)
    grid = np.full((2, 3, h, w, 3), 1.0)
    grid[1, 2] = 0.25
    pic = render_sheet(row_heads, col_heads, grid, gap=gap)
    assert pic.dtype == np.uint8 and pic.shape == (3 * (h + gap) + gap, 4 * (w + gap) + 2 * gap, 3)
    assert (pic[gap:gap + h, 2 * gap + w + gap:][:, :w] == 128).all()  # first column head
    y, x = gap + 2 * (h + gap), gap + 3 * (w + gap) + gap  # cell (1, 2)
    assert (pic[y:y + h, x:x + w] == 64).all()
    assert (pic[y:y + h, gap:gap + w] == 0).all()  # row head 1


def test_pick_pairs_takes_one_visible_and_one_infrared_image_per_identity() -> None:
    samples = [Sample(f"{pid}_{m}_{k}.jpg", pid, 1, Modality(m)) for pid in range(5) for m in (0, 1) for k in range(3)]
    samples += [Sample("9_0_0.jpg", 9, 1, Modality.VISIBLE)]  # visible only: never chosen
    picked = pick_pairs(samples, 3, seed=1)
    assert len(picked) == 6 and [int(s.modality) for s in picked] == [0, 1] * 3
    assert all(picked[2 * i].pid == picked[2 * i + 1].pid != 9 for i in range(3))
    assert picked == pick_pairs(samples, 3, seed=1)
    with pytest.raises(ValueError, match="both modalities"):
        pick_pairs(samples[-1:], 1)


def test_swap_spread_separates_column_and_row_effects() -> None:
    # cell(i, j) = a_i + b_j on 1x1x1 "images": within = mean |b_j - mean b|, between = mean |a_i - mean a|
    a, b = torch.tensor([0.0, 0.4]), torch.tensor([0.1, 0.2, 0.6])
    grid = (a[:, None] + b[None, :]).view(2, 3, 1, 1, 1)
    within, between = swap_spread(grid)
    assert within == pytest.approx((0.2 + 0.1 + 0.3) / 3)
    assert between == pytest.approx(0.2)
    assert swap_spread(a.view(2, 1, 1, 1, 1).expand(2, 3, 1, 1, 1))[0] == 0.0  # columns change nothing
