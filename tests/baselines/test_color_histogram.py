"""Colour-histogram baseline: hand-worked histograms, input forms, and the distances."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from vireid.baselines.color_histogram import (
    color_histogram_features,
    hellinger_embedding,
    histogram_distances,
    rgb_to_hsv,
)

# black, red / green, white
TINY = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [255, 255, 255]]], dtype=np.uint8)


def test_hand_worked_rgb_histogram() -> None:
    # 2 bins per channel: R = 0, 255, 0, 255 -> [2, 2]; G = 0, 0, 255, 255 -> [2, 2]; B = 0, 0, 0, 255 -> [3, 1]
    feats = color_histogram_features(TINY[None], bins=2, space="rgb")
    np.testing.assert_allclose(feats, np.array([[2, 2, 2, 2, 3, 1]]) / 12.0, atol=1e-7)


def test_hand_worked_hsv_histogram() -> None:
    # black (h 0, s 0, v 0), red (0, 1, 1), green (1/3, 1, 1), white (0, 0, 1); 2 bins per channel:
    # H -> [4, 0], S -> [2, 2], V -> [1, 3]
    feats = color_histogram_features(TINY[None], bins=2, space="hsv")
    np.testing.assert_allclose(feats, np.array([[4, 0, 2, 2, 1, 3]]) / 12.0, atol=1e-7)


def test_rgb_to_hsv_matches_colorsys() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (200, 3)).astype(np.uint8)
    rgb[:5] = [[0, 0, 0], [255, 255, 255], [7, 7, 7], [255, 0, 255], [0, 0, 255]]
    ours = rgb_to_hsv(rgb)
    ref = np.array([colorsys.rgb_to_hsv(*(c / 255.0)) for c in rgb.astype(np.float64)])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_shape_dtype_and_normalisation() -> None:
    imgs = np.random.default_rng(1).integers(0, 256, (5, 12, 6, 3)).astype(np.uint8)
    for space in ("hsv", "rgb"):
        feats = color_histogram_features(imgs, bins=8, space=space)
        assert feats.shape == (5, 24) and feats.dtype == np.float32
        np.testing.assert_allclose(feats.sum(1), 1.0, atol=1e-6)
        np.testing.assert_allclose(feats.reshape(5, 3, 8).sum(2), 1.0 / 3.0, atol=1e-6)  # each channel 1/3
    assert color_histogram_features(imgs[:0]).shape == (0, 48)


def test_grayscale_inputs_are_replicated_to_rgb() -> None:
    gray = np.random.default_rng(2).integers(0, 256, (3, 8, 4)).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    expected = color_histogram_features(rgb)
    np.testing.assert_array_equal(color_histogram_features(gray), expected)
    np.testing.assert_array_equal(color_histogram_features(gray[..., None]), expected)
    np.testing.assert_array_equal(color_histogram_features([Image.fromarray(g, mode="L") for g in gray]), expected)
    np.testing.assert_array_equal(color_histogram_features(list(gray)), expected)
    np.testing.assert_array_equal(color_histogram_features(rgb.astype(np.float32) / 255.0), expected)
    # in HSV an infrared image has hue 0 and saturation 0 everywhere
    h, s = expected[:, :16], expected[:, 16:32]
    np.testing.assert_allclose(h[:, 0], 1 / 3)
    np.testing.assert_allclose(s[:, 0], 1 / 3)


def test_ragged_list_of_pil_images() -> None:
    imgs = [Image.fromarray(TINY), Image.fromarray(np.zeros((5, 3, 3), dtype=np.uint8))]
    feats = color_histogram_features(imgs, bins=2, space="rgb")
    np.testing.assert_allclose(feats[1], [1 / 3, 0, 1 / 3, 0, 1 / 3, 0])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="space"):
        color_histogram_features(TINY[None], space="lab")
    with pytest.raises(ValueError, match="bins"):
        color_histogram_features(TINY[None], bins=0)
    with pytest.raises(ValueError, match="shape"):
        color_histogram_features(np.zeros((2, 4, 4, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        color_histogram_features(np.zeros((2, 4, 4, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="metric"):
        histogram_distances(np.ones((1, 2)) / 2, np.ones((1, 2)) / 2, "emd")


def test_distances_against_direct_formulas() -> None:
    rng = np.random.default_rng(3)
    q = rng.random((4, 6))
    q /= q.sum(1, keepdims=True)
    g = rng.random((5, 6))
    g /= g.sum(1, keepdims=True)
    g[0, :3] = 0.0
    g[0] /= g[0].sum()
    q[1] = g[0]
    for metric in ("hellinger", "chi2", "l1"):
        got = histogram_distances(q, g, metric)
        assert got.shape == (4, 5)
        for i in range(4):
            for j in range(5):
                p, r = q[i], g[j]
                if metric == "hellinger":
                    ref = np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(r)) ** 2))
                elif metric == "l1":
                    ref = np.sum(np.abs(p - r))
                else:
                    ref = 0.5 * sum((a - b) ** 2 / (a + b) for a, b in zip(p, r) if a + b > 0)
                assert got[i, j] == pytest.approx(ref, abs=1e-7), (metric, i, j)
        assert got[1, 0] == pytest.approx(0.0, abs=1e-7)


def test_euclidean_between_embeddings_is_sqrt2_hellinger() -> None:
    feats = color_histogram_features(np.random.default_rng(4).integers(0, 256, (6, 10, 5, 3)).astype(np.uint8))
    emb = hellinger_embedding(feats)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    euclid = np.linalg.norm(emb[:3, None] - emb[None, 3:], axis=-1)
    np.testing.assert_allclose(euclid, np.sqrt(2.0) * histogram_distances(feats[:3], feats[3:]), atol=1e-6)
