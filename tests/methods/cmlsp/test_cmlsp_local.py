"""CM-LSP's stripe distance and DP local shortest path (seeds/001 §6 "3.2") against hand-worked
numbers and a brute-force minimum over every monotone path."""

from __future__ import annotations

import itertools

import pytest
import torch

from vireid.methods.cmlsp.local import local_path_distances, normalise_stripes, shortest_path, stripe_distances


def _monotone_paths(h: int, w: int):
    """Every path from (0, 0) to (h-1, w-1) moving one step down or right: lists of cells."""
    moves = h - 1 + w - 1
    for downs in itertools.combinations(range(moves), h - 1):
        i = j = 0
        cells = [(0, 0)]
        for step in range(moves):
            if step in downs:
                i += 1
            else:
                j += 1
            cells.append((i, j))
        yield cells


def test_normalise_stripes_hand_worked() -> None:
    got = normalise_stripes(torch.tensor([[1.0, 2.0, 3.0, 6.0]]), eps=0.0)  # mean 3, range 5
    torch.testing.assert_close(got, torch.tensor([[-0.4, -0.2, 0.0, 0.6]]))


def test_stripe_distance_and_path_hand_worked() -> None:
    # visible stripes [1,2,3] -> [-.5, 0, .5] and [0,0,4] -> [-1/3, -1/3, 2/3];
    # thermal stripes [3,2,1] -> [.5, 0, -.5] and [2,4,6] -> [-.5, 0, .5]
    a = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]])  # (1, h=2, d=3)
    b = torch.tensor([[[3.0, 2.0, 1.0], [2.0, 4.0, 6.0]]])
    d = stripe_distances(a, b, eps=0.0)  # (1, 1, 2, 2)
    want = torch.tensor([[2.0, 0.0], [7 / 3, 2 / 3]])  # d_11 = 1 + 0 + 1, d_21 = 5/6 + 1/3 + 7/6, ...
    torch.testing.assert_close(d[0, 0], want)
    # S_11 = 2, S_12 = 2, S_21 = 13/3, S_22 = min(2, 13/3) + 2/3 = 8/3
    assert shortest_path(want).item() == pytest.approx(8 / 3)
    assert local_path_distances(a, b, eps=0.0).item() == pytest.approx(8 / 3 / 2)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 4), (2, 2), (3, 3), (4, 3), (5, 5), (6, 6)])
def test_dp_equals_brute_force_over_monotone_paths(h: int, w: int) -> None:
    g = torch.Generator().manual_seed(h * 10 + w)
    d = torch.rand(7, h, w, generator=g, dtype=torch.float64)  # 7 pairs at once
    got = shortest_path(d)  # (7,)
    for k in range(7):
        brute = min(sum(float(d[k, i, j]) for i, j in cells) for cells in _monotone_paths(h, w))
        assert float(got[k]) == pytest.approx(brute, abs=1e-12)


def test_gradient_is_the_indicator_of_the_shortest_path() -> None:
    g = torch.Generator().manual_seed(3)
    d = torch.rand(4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    shortest_path(d).backward()
    values = d.detach()
    best = min(_monotone_paths(4, 4), key=lambda cells: sum(float(values[i, j]) for i, j in cells))
    want = torch.zeros(4, 4, dtype=torch.float64)
    for i, j in best:
        want[i, j] = 1.0
    torch.testing.assert_close(d.grad, want)


def test_stripe_distances_against_the_formula_for_every_pair() -> None:
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(3, 4, 5, generator=g), torch.randn(2, 4, 5, generator=g)

    def norm(f: torch.Tensor) -> torch.Tensor:
        return (f - f.mean()) / (f.max() - f.min() + 1e-6)

    d = stripe_distances(a, b)
    for n, m, i, j in itertools.product(range(3), range(2), range(4), range(4)):
        want = (norm(a[n, i]) - norm(b[m, j])).abs().sum()
        assert float(d[n, m, i, j]) == pytest.approx(float(want), rel=1e-5)
    with pytest.raises(ValueError, match="same stripe count"):
        local_path_distances(a, b[:, :3])
