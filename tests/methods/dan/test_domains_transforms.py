"""The synthetic target domains' image transforms (DAN, seeds/000 "合成目标域"; METHODS.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv
from PIL import Image

from vireid.methods.dan.domains import (KINDS, add_noise, change_color, change_lighting, highpass, image_rng, make_params,
                                 occlude, transform_image)
from vireid.types import Modality
from vireid.errors import ConfigError


def _rgb(seed: int = 0, h: int = 24, w: int = 12) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(20, 236, size=(h, w, 3), dtype=np.uint8), "RGB")


def _grey(seed: int = 0, h: int = 24, w: int = 12) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(20, 236, size=(h, w), dtype=np.uint8), "L")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_deterministic_in_seed_and_relpath_and_keeps_size_and_mode(kind: str) -> None:
    params = make_params(kind)
    for image, modality in ((_rgb(), Modality.VISIBLE), (_grey(), Modality.INFRARED)):
        a = transform_image(image, kind, modality, 3, "cam1/0001/0001.jpg", params)
        if kind == "color" and modality == Modality.INFRARED:
            assert a is None  # the colour domain leaves infrared images as they are
            continue
        b = transform_image(image, kind, modality, 3, "cam1/0001/0001.jpg", params)
        c = transform_image(image, kind, modality, 4, "cam1/0001/0001.jpg", params)
        d = transform_image(image, kind, modality, 3, "cam1/0001/0002.jpg", params)
        assert a.size == image.size and a.mode == image.mode
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(c))
        assert not np.array_equal(np.asarray(a), np.asarray(d))
        assert not np.array_equal(np.asarray(a), np.asarray(image))


def test_image_rng_depends_on_seed_kind_and_relpath_only() -> None:
    draw = lambda *key: image_rng(*key).integers(0, 2**32, 4).tolist()  # noqa: E731
    assert draw(1, "noise", "a/b.jpg") == draw(1, "noise", "a/b.jpg")
    assert len({str(draw(*k)) for k in [(1, "noise", "a/b.jpg"), (2, "noise", "a/b.jpg"),
                                         (1, "lighting", "a/b.jpg"), (1, "noise", "a/c.jpg")]}) == 4


def test_noise_is_gaussian_clipped_and_shared_across_channels_for_infrared() -> None:
    x = np.full((200, 100, 3), 0.5)
    y = add_noise(x, np.random.default_rng(0), std=0.1)
    assert abs(float((y - x).std()) - 0.1) < 0.005 and abs(float((y - x).mean())) < 0.005
    grey = add_noise(x, np.random.default_rng(0), std=0.1, grey=True)
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert add_noise(np.ones((4, 4, 1)), np.random.default_rng(0), std=1.0).max() <= 1.0


def test_lighting_is_blur_then_v_to_the_gamma_keeping_hue_and_saturation() -> None:
    rng_x = np.random.default_rng(5)
    x = rng_x.uniform(0.1, 0.9, size=(8, 6, 3))
    gamma = np.random.default_rng(9).uniform(1.5, 3.0)
    y = change_lighting(x, np.random.default_rng(9), sigma=0.0)
    hx, hy = rgb_to_hsv(x), rgb_to_hsv(y)
    np.testing.assert_allclose(hy[..., :2], hx[..., :2], atol=1e-9)  # hue and saturation kept
    np.testing.assert_allclose(hy[..., 2], hx[..., 2] ** gamma, rtol=1e-9)  # V' = V^gamma
    grey = rng_x.uniform(0.0, 1.0, size=(8, 6, 1))
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(grey[..., 0], sigma=1.0)
    np.testing.assert_allclose(change_lighting(grey, np.random.default_rng(9))[..., 0], blurred ** gamma, rtol=1e-9)


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c  # orthonormal DCT-II: X = C x


def test_color_change_matches_an_explicit_dct_matrix_reference() -> None:
    h, w = 10, 6
    x = np.random.default_rng(1).uniform(0.3, 0.7, size=(h, w, 3))
    colour = np.array([0.2, 0.5, 0.45])
    ch, cw = _dct_matrix(h), _dct_matrix(w)
    hp = 1 - np.exp(-(np.arange(h)[:, None] ** 2 + np.arange(w)[None, :] ** 2) / (2 * 2.0 ** 2))
    np.testing.assert_allclose(highpass(h, w, 2.0), hp)
    expected = np.empty_like(x)
    for c in range(3):
        spec = ch @ x[..., c] @ cw.T
        m = (1 - hp) * (ch @ np.full((h, w), colour[c]) @ cw.T)
        expected[..., c] = ch.T @ (0.8 * spec * hp + m) @ cw
    got = change_color(x, np.random.default_rng(0), radius=2.0, w1=0.8, colour=colour)
    np.testing.assert_allclose(got, np.clip(expected, 0, 1), atol=1e-12)


def test_color_change_of_a_flat_image_is_the_new_colour_and_keeps_detail() -> None:
    flat = np.full((16, 8, 3), 0.7)
    np.testing.assert_allclose(change_color(flat, np.random.default_rng(0), colour=[0.1, 0.2, 0.3]),
                               np.broadcast_to([0.1, 0.2, 0.3], flat.shape), atol=1e-12)
    # a tiny radius passes everything but the mean: x - mean(x) + colour
    x = np.random.default_rng(2).uniform(0.4, 0.6, size=(16, 8, 3))
    got = change_color(x, np.random.default_rng(0), radius=1e-3, colour=[0.5, 0.5, 0.5])
    np.testing.assert_allclose(got, x - x.mean(axis=(0, 1)) + 0.5, atol=1e-9)


def test_occlusion_paints_one_rectangle_of_the_configured_area() -> None:
    for seed in range(20):
        x = np.zeros((40, 20, 3))
        y = occlude(x, np.random.default_rng(seed), count=1, area_min=0.05, area_max=0.25)
        changed = np.argwhere(np.any(y != x, axis=2))
        (top, left), (bottom, right) = changed.min(0), changed.max(0)
        box = (bottom - top + 1) * (right - left + 1)
        assert box == len(changed)  # a filled rectangle
        assert 0.03 * 800 <= box <= 0.3 * 800  # the area share, up to rounding and clipping to the image
    grey = occlude(np.zeros((20, 10, 3)), np.random.default_rng(0), grey=True)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert np.array_equal(occlude(x, np.random.default_rng(0), count=0), x)


def test_make_params_checks_names_and_values() -> None:
    assert make_params("noise", std=0.2).std == 0.2
    assert make_params("occlusion", count=2).count == 2
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['sigma'\]; valid: \['std'\]"):
        make_params("noise", sigma=1)
    with pytest.raises(ConfigError, match="gamma_min <= gamma_max"):
        make_params("lighting", gamma_min=3.0, gamma_max=2.0)
    with pytest.raises(ConfigError, match="count must be a whole number"):
        make_params("occlusion", count=1.5)
    with pytest.raises(ConfigError, match="unknown domain kind 'blur'"):
        make_params("blur")
