"""Drawing primitives, the body-space grid and the modality design of the synthetic renderer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vireid.data.synthetic import generator as gen
from vireid.data.synthetic.camera import render_scene, sample_camera
from vireid.data.synthetic.identity import Garment, IdentitySpec, sample_identity
from vireid.data.synthetic.person import draw_person, sample_pose
from vireid.data.synthetic.render import body_grid, render_image, sample_jitter
from vireid.data.synthetic.shapes import Grid, PatternSpec, capsule, coverage, ellipse, pattern_field, rectangle
from vireid.data.synthetic.tables import build_rand_perm_cam, format_id_line


def unit_grid(n: int = 41) -> Grid:
    """u, v in [-1, 1] on an n x n grid, pixel size 0.05."""
    ax = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    v, u = np.meshgrid(ax, ax, indexing="ij")
    return Grid(u, v, float(ax[1] - ax[0]))


def test_coverage_has_a_one_pixel_ramp() -> None:
    sd = np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 2.0], dtype=np.float32)
    np.testing.assert_allclose(coverage(sd, 1.0), [1.0, 1.0, 0.5, 0.25, 0.0, 0.0])


def test_capsule_axis_position_and_outside() -> None:
    g = unit_grid()
    alpha, t, d = capsule(g, (0.0, -0.5), (0.0, 0.5), 0.2)
    centre = (20, 20)  # u = v = 0
    assert alpha[centre] == 1.0 and t[centre] == pytest.approx(0.5) and d[centre] == 0.0
    assert alpha[20, 0] == 0.0  # u = -1, far outside
    assert t[0, 20] == 0.0 and t[40, 20] == 1.0  # clamped beyond the end points
    # area ~ rectangle 1.0 x 0.4 + disc of radius 0.2
    area = alpha.sum() * g.px ** 2
    assert area == pytest.approx(0.4 + np.pi * 0.04, rel=0.03)


def test_ellipse_and_rectangle_areas() -> None:
    g = unit_grid(201)
    alpha, _ = ellipse(g, (0.1, -0.2), 0.5, 0.3)
    assert alpha.sum() * g.px ** 2 == pytest.approx(np.pi * 0.5 * 0.3, rel=0.01)
    assert rectangle(g, -0.5, 0.25, 0.0, 0.5).sum() * g.px ** 2 == pytest.approx(0.75 * 0.5, rel=0.01)


def test_patterns_are_periodic_and_plain_is_empty() -> None:
    g = unit_grid(81)
    assert not pattern_field(g, PatternSpec()).any()
    freq = 2.5  # period 0.4 = 16 pixels of 0.025
    vertical = pattern_field(g, PatternSpec("stripes", freq, 0.0, 0.1))
    np.testing.assert_allclose(vertical[:, :-16], vertical[:, 16:], atol=1e-5)  # repeats along u
    np.testing.assert_allclose(vertical, vertical[:1, :].repeat(81, axis=0), atol=1e-6)  # constant along v
    assert vertical.min() == 0.0 and vertical.max() == 1.0 and abs(vertical.mean() - 0.5) < 0.05
    checks = pattern_field(g, PatternSpec("checks", freq, 0.0, 0.0))
    np.testing.assert_allclose(checks[:-16, :-16], checks[16:, 16:], atol=1e-5)
    dots = pattern_field(g, PatternSpec("dots", freq, 0.0, 0.0))
    assert 0.15 < dots.mean() < 0.35  # discs of radius 0.28 period: pi * 0.28^2 = 0.246
    with pytest.raises(ValueError, match="unknown pattern kind"):
        pattern_field(g, PatternSpec("zigzag", 3.0))


def test_body_grid_windows_map_back_to_pixels() -> None:
    grid = body_grid(64, 32, 0.85, 0.03, -0.02, 0.05, 0.04, True)
    (a, b, c), (d, e, f) = grid.to_pixel
    rows, cols = np.mgrid[0:64, 0:32]
    np.testing.assert_allclose(a * grid.u + b * grid.v + c, cols, atol=1e-3)
    np.testing.assert_allclose(d * grid.u + e * grid.v + f, rows, atol=1e-3)
    assert grid.px == pytest.approx(1.0 / (0.85 * 64))
    # v spans ~0..1 over the person's pixels: the body centre v = 0.5 is at row 64 * (0.5 - 0.02)
    assert abs(grid.v[int(64 * 0.48), 16] - 0.5) < 0.05


def test_windowed_drawing_equals_full_grid_drawing() -> None:
    rng = np.random.default_rng(0)
    for pid in range(1, 6):
        ident = sample_identity(np.random.default_rng(pid), pid)
        pose = sample_pose(rng, (1.0, 1.0, 1.0))
        grid = body_grid(96, 48, 0.85, 0.0, 0.0, 0.03, 0.02, bool(pid % 2))
        full = Grid(grid.u, grid.v, grid.px, None)
        for infrared in (False, True):
            a = np.zeros((96, 48, 1 if infrared else 3), dtype=np.float32)
            b = a.copy()
            draw_person(a, grid, ident, pose, infrared)
            draw_person(b, full, ident, pose, infrared)
            np.testing.assert_allclose(a, b, atol=1e-6)
            assert a.max() > 0.0


def _render(ident: IdentitySpec, cam: int, config: gen.SyntheticConfig) -> np.ndarray:
    camera = sample_camera(np.random.default_rng(cam), np.random.default_rng(10 + cam), cam)
    background = render_scene(camera.scene, camera.modality, 80, 48)
    jitter = sample_jitter(np.random.default_rng(5), camera)
    return render_image(ident, camera, jitter, background, 64, 32, np.random.default_rng(6))


def test_colour_does_not_reach_infrared_and_material_does_not_reach_visible() -> None:
    config = gen.SyntheticConfig(num_ids=5)
    ident = gen.identity_spec(config, 1)
    recoloured = dataclasses.replace(ident, top=dataclasses.replace(ident.top, colour=(1.0, 0.0, 1.0)),
                                     bottom=dataclasses.replace(ident.bottom, colour=(0.0, 1.0, 0.0)))
    refabric = dataclasses.replace(ident, top=dataclasses.replace(ident.top, ir_level=ident.top.ir_level + 0.3,
                                                                  material="other"))
    vis, ir = 1, 3
    assert _render(ident, ir, config).ndim == 2 and _render(ident, vis, config).shape == (64, 32, 3)
    np.testing.assert_array_equal(_render(ident, ir, config), _render(recoloured, ir, config))
    assert not np.array_equal(_render(ident, vis, config), _render(recoloured, vis, config))
    np.testing.assert_array_equal(_render(ident, vis, config), _render(refabric, vis, config))
    assert not np.array_equal(_render(ident, ir, config), _render(refabric, ir, config))


def test_patterns_reach_both_modalities() -> None:
    config = gen.SyntheticConfig(num_ids=5)
    ident = gen.identity_spec(config, 1)
    top = Garment(ident.top.colour, (0.0, 0.0, 1.0), 0.5, 0.2, PatternSpec("stripes", 9.0, np.pi / 2, 0.0), "cotton")
    plain = dataclasses.replace(top, pattern=PatternSpec())
    striped, unstriped = dataclasses.replace(ident, top=top), dataclasses.replace(ident, top=plain)
    for cam in (1, 3):
        assert not np.array_equal(_render(striped, cam, config), _render(unstriped, cam, config))


def test_table_helpers() -> None:
    assert format_id_line([3, 10, 7]) == "3,10,7\n"
    table = build_rand_perm_cam({1: {1: 3}, 3: {2: 300}}, 2, np.random.default_rng(0))
    assert table[0, 0][0, 0].shape == (10, 3) and table[0, 0][1, 0].shape == (10, 0)
    assert table[2, 0][1, 0].dtype == np.uint16  # over 255 images
    assert table[1, 0][0, 0].dtype == np.uint8
