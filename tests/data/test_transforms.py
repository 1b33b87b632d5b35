"""Transforms: pipeline numbers on constant images, infrared replication, CAJ's CA and CRE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ToRGB, build_test_transform, build_train_transform
from vireid.errors import ConfigError

RGB = (100, 150, 200)


def constant_rgb(h: int = 40, w: int = 20) -> Image.Image:
    return Image.new("RGB", (w, h), RGB)


def expected_constant() -> torch.Tensor:
    # (100/255 - 0.485)/0.229 = -0.40543, (150/255 - 0.456)/0.224 = 0.59034, (200/255 - 0.406)/0.225 = 1.68139
    return torch.tensor([(v / 255 - m) / s for v, m, s in zip(RGB, IMAGENET_MEAN, IMAGENET_STD)])


def test_test_transform_shape_dtype_and_normalisation() -> None:
    out = build_test_transform(32, 16)(constant_rgb())
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (3, 32, 16)
    torch.testing.assert_close(expected_constant(), torch.tensor([-0.40543, 0.59034, 1.68139]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out, expected_constant().view(3, 1, 1).expand(3, 32, 16), atol=1e-6, rtol=0)


def test_train_transform_constant_image_and_padding_values() -> None:
    torch.manual_seed(0)
    plain = build_train_transform(32, 16, pad=0, random_erasing=0.0)(constant_rgb())
    assert plain.shape == (3, 32, 16) and plain.dtype == torch.float32
    torch.testing.assert_close(plain, expected_constant().view(3, 1, 1).expand(3, 32, 16), atol=1e-6, rtol=0)
    # with padding 10 every pixel is the image colour or the zero padding, crop size unchanged
    padded_value = torch.tensor([(0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    seen_padding = False
    for _ in range(10):
        out = build_train_transform(32, 16, pad=10, random_erasing=0.0)(constant_rgb())
        assert out.shape == (3, 32, 16)
        pix = out.permute(1, 2, 0).reshape(-1, 3)  # (H*W, 3)
        is_img = torch.isclose(pix, expected_constant(), atol=1e-5).all(1)
        is_pad = torch.isclose(pix, padded_value, atol=1e-5).all(1)
        assert bool((is_img | is_pad).all())
        seen_padding |= bool(is_pad.any())
    assert seen_padding


@pytest.mark.parametrize("mode", ["L", "LA", "P"])
def test_infrared_replicated_to_three_identical_channels(mode: str) -> None:
    gray = Image.fromarray(np.arange(40 * 20, dtype=np.uint8).reshape(40, 20) % 251).convert(mode)
    half = (0.5, 0.5, 0.5)
    for t in (build_test_transform(40, 20, mean=half, std=half),
              build_train_transform(40, 20, pad=0, flip=False, random_erasing=0.0, mean=half, std=half)):
        out = t(gray)  # (3, 40, 20)
        assert out.shape == (3, 40, 20)
        torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)
        torch.testing.assert_close(out[0], out[2], rtol=0, atol=0)
    expected = (torch.from_numpy(np.array(gray.convert("L"))).float() / 255 - 0.5) / 0.5  # (40, 20)
    torch.testing.assert_close(build_test_transform(40, 20, mean=half, std=half)(gray)[1], expected)


def test_to_rgb_on_tensors() -> None:
    x = torch.rand(2, 1, 4, 5)
    y = ToRGB()(x)  # (2, 3, 4, 5)
    assert y.shape == (2, 3, 4, 5) and torch.equal(y[:, 0], y[:, 2]) and torch.equal(y[:, 1], x[:, 0])
    assert ToRGB()(torch.rand(4, 4, 5)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="C in 1/3/4"):
        ToRGB()(torch.rand(2, 4, 5))
