"""CAJ's channel augmentations (seeds/001 §8): per-image operations and their place in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.augment import AUGMENTATIONS
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_train_transform, build_train_transforms
from vireid.errors import ConfigError
from vireid.methods.caj.augment import GRAY_WEIGHTS, ChannelAdapGray, ChannelExchange, ChannelRandomErasing
from vireid.types import Modality


def augments(*entries: tuple[str, dict]) -> list:
    return [AUGMENTATIONS.build(name, **params) for name, params in entries]


def test_train_transform_reproducible_through_global_rng() -> None:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 20, 3), dtype=np.uint8))
    t = build_train_transform(32, 16, random_erasing=0.5, augments=augments(("channel_random_erasing", {"p": 0.5}), ("channel_exchange", {"p": 0.5})))
    torch.manual_seed(3)
    a = [t(img) for _ in range(5)]
    torch.manual_seed(3)
    b = [t(img) for _ in range(5)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert any(not torch.equal(a[0], x) for x in a[1:])


def _outcome(out: torch.Tensor, x: torch.Tensor) -> int:
    """Which channel (0-2) or gray (3) the exchanged image ``out`` (3, H, W) repeats."""
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    gray = GRAY_WEIGHTS[0] * x[0] + GRAY_WEIGHTS[1] * x[1] + GRAY_WEIGHTS[2] * x[2]
    for k, cand in enumerate([x[0], x[1], x[2], gray]):
        if torch.allclose(out[0], cand, atol=1e-6):
            return k
    raise AssertionError("output is neither an input channel nor the gray formula")


@pytest.mark.parametrize("include_gray,outcomes", [(True, {0, 1, 2, 3}), (False, {0, 1, 2})])
def test_channel_exchange_repeats_one_channel_or_gray(include_gray: bool, outcomes: set[int]) -> None:
    g = torch.Generator().manual_seed(0)
    ce = ChannelExchange(p=1.0, include_gray=include_gray, generator=g)
    x = torch.rand(3, 6, 4)
    before = x.clone()
    seen = {_outcome(ce(x), x) for _ in range(60)}
    assert seen == outcomes
    assert torch.equal(x, before)  # input untouched


def test_channel_exchange_batch_probability_and_normalised_input() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 5, 4)
    out = ChannelExchange(p=0.5, generator=g)(x)  # (64, 3, 5, 4)
    unchanged = [i for i in range(64) if torch.equal(out[i], x[i])]
    assert 16 < len(unchanged) < 48  # about half kept
    kinds = {_outcome(out[i], x[i]) for i in range(64) if i not in unchanged}
    assert len(kinds) >= 3  # independent draws per image
    assert torch.equal(ChannelExchange(p=0.0)(x), x)
    # on a normalised tensor with mean/std: exchange happens in image space
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    img = torch.rand(3, 5, 4)
    normed = (img - mean) / std  # (3, 5, 4)
    for seed in range(6):
        res = ChannelExchange(p=1.0, include_gray=False, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                              generator=torch.Generator().manual_seed(seed))(normed) * std + mean  # (3, 5, 4)
        assert any(torch.allclose(res, img[[c, c, c]], atol=1e-6) for c in range(3))


def test_channel_exchange_in_train_pipeline_on_visible() -> None:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 16, 3), dtype=np.uint8))
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    t = build_train_transform(32, 16, pad=0, flip=False, random_erasing=0.0, augments=augments(("channel_exchange", {"p": 1.0})))
    for _ in range(5):
        raw = t(img) * std + mean  # (3, 32, 16) back in [0, 1]
        torch.testing.assert_close(raw[0], raw[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(raw[0], raw[2], atol=1e-5, rtol=0)


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def test_channel_random_erasing_fills_channel_mean_rectangle_rest_untouched() -> None:
    g = torch.Generator().manual_seed(0)
    cre = ChannelRandomErasing(p=1.0, per_channel=True, generator=g)
    rects = set()
    for _ in range(5):
        x = torch.rand(3, 40, 20) + torch.arange(3.0).view(3, 1, 1)  # distinct channel means
        before = x.clone()
        out = cre(x)
        assert torch.equal(x, before)  # not in place
        for c in range(3):
            changed = out[c] != x[c]  # (40, 20)
            assert changed.any()
            r0, r1, c0, c1 = _bbox(changed)
            filled = out[c, r0:r1, c0:c1]
            torch.testing.assert_close(filled, torch.full_like(filled, float(x[c].mean())), rtol=0, atol=0)
            outside = torch.ones(40, 20, dtype=torch.bool)
            outside[r0:r1, c0:c1] = False
            assert torch.equal(out[c][outside], x[c][outside])
            area = (r1 - r0) * (c1 - c0) / (40 * 20)
            assert 0.01 <= area <= 0.45  # area 0.02-0.4 up to rounding of h and w
            rects.add((c, r0, r1, c0, c1))
    assert len({r[1:] for r in rects}) > 3  # rectangles drawn per channel and per call


def test_channel_random_erasing_shared_rectangle_and_probability() -> None:
    x = torch.rand(2, 3, 30, 30)
    out = ChannelRandomErasing(p=1.0, per_channel=False, generator=torch.Generator().manual_seed(4))(x)
    for i in range(2):
        boxes = {_bbox(out[i, c] != x[i, c]) for c in range(3)}
        assert len(boxes) == 1  # one rectangle for all channels
        r0, r1, c0, c1 = boxes.pop()
        for c in range(3):
            assert torch.all(out[i, c, r0:r1, c0:c1] == x[i, c].mean())
    assert torch.equal(ChannelRandomErasing(p=0.0)(x), x)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(100, 3, 8, 8)
    half = ChannelRandomErasing(p=0.5, generator=g)(x)  # (100, 3, 8, 8)
    kept = sum(bool(torch.equal(half[i], x[i])) for i in range(100))
    assert 30 < kept < 70


def test_registered_augments_modalities_stages_and_errors() -> None:
    ca, cre, gray = augments(("channel_exchange", {}), ("channel_random_erasing", {}), ("infrared_adap_gray", {}))
    assert ca.modalities == {Modality.VISIBLE} and ca.stage == "image" and not ca.replaces_random_erasing
    assert cre.modalities == {Modality.VISIBLE, Modality.INFRARED} and cre.stage == "image"
    assert cre.replaces_random_erasing
    assert gray.modalities == {Modality.INFRARED} and gray.stage == "normalized"
    with pytest.raises(ConfigError, match=r"unknown image augmentation 'gray'; valid: channel_exchange, "
                                          r"channel_random_erasing, infrared_adap_gray"):
        AUGMENTATIONS.get("gray")
    with pytest.raises(ConfigError, match="random_erasing"):
        build_train_transform(32, 16, random_erasing=2.0)
    with pytest.raises(TypeError, match="float tensor"):
        ChannelExchange()(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="area"):
        ChannelRandomErasing(area=(0.5, 0.1))


def test_pipeline_order_cre_then_ca_before_normalising_and_erasing_replaced() -> None:
    pipes = build_train_transforms(16, 8, random_erasing=0.5, augments=augments(
        ("channel_random_erasing", {"p": 0.5}), ("channel_exchange", {"p": 0.5}), ("infrared_adap_gray", {})))
    names = {m: [type(t).__name__ for t in pipes[m].transforms] for m in Modality}
    assert names[Modality.VISIBLE][-3:] == ["ChannelRandomErasing", "ChannelExchange", "Normalize"]
    assert names[Modality.INFRARED][-3:] == ["ChannelRandomErasing", "Normalize", "ChannelAdapGray"]
    assert "RandomErasing" not in names[Modality.VISIBLE] + names[Modality.INFRARED]
    plain = [type(t).__name__ for t in build_train_transform(16, 8, random_erasing=0.5).transforms]
    assert plain[-2:] == ["Normalize", "RandomErasing"]


def test_legacy_channel_augment_keys_read_as_augment_entries() -> None:
    """Older recipes and run folders spell CAJ's augmentations as data.channel_augment & co."""
    from vireid.config import DataConfig, config_from_dict

    cfg = DataConfig.model_validate({"channel_augment": "ca+cre", "channel_exchange_p": 0.5, "random_erasing": 0.3,
                                     "infrared_adap_gray": True})
    assert [(a.name, a.params) for a in cfg.augment] == [
        ("channel_random_erasing", {"p": 0.3}), ("channel_exchange", {"p": 0.5}), ("infrared_adap_gray", {"p": 0.5})]
    assert DataConfig.model_validate({"channel_augment": "cre", "random_erasing": 0.0}).augment == []
    with pytest.raises(ConfigError, match=r"data: channel_augment 'gray' is not one of none, ca, cre"):
        config_from_dict({"data": {"channel_augment": "gray"}})


def test_channel_adap_gray_outcomes_match_a_per_image_loop() -> None:
    """CAJ code's ChannelAdapGray: randint(0, 3) picks R, G, B copy or (gray with p, else identity)."""

    x = torch.randn(400, 3, 4, 2)  # normalised tensors: the three channels differ
    out = ChannelAdapGray(0.5, generator=torch.Generator().manual_seed(7))(x)
    g = torch.Generator().manual_seed(7)  # the same draws, in the same order
    choice, u = torch.randint(4, (400,), generator=g), torch.rand(400, generator=g)
    counts = {"copy": 0, "gray": 0, "same": 0}
    for i in range(400):
        c = int(choice[i])
        if c < 3:
            expected, kind = x[i, c].expand(3, 4, 2), "copy"
        elif u[i] < 0.5:
            gray = sum(w * x[i, k] for k, w in enumerate(GRAY_WEIGHTS))
            expected, kind = gray.expand(3, 4, 2), "gray"
        else:
            expected, kind = x[i], "same"
        torch.testing.assert_close(out[i], expected)
        counts[kind] += 1
    assert 250 < counts["copy"] < 350 and counts["gray"] > 20 and counts["same"] > 20  # 3/4, 1/8, 1/8
    assert torch.equal(ChannelAdapGray(0.0, generator=torch.Generator().manual_seed(7))(x)[choice == 3], x[choice == 3])
    with pytest.raises(ValueError, match="p must be in"):
        ChannelAdapGray(1.5)
    with pytest.raises(TypeError, match="expects a float tensor"):
        ChannelAdapGray()(torch.zeros(1, 4, 4))


def test_infrared_adap_gray_only_in_the_infrared_pipeline() -> None:
    pipes = build_train_transforms(16, 8, augments=augments(("channel_exchange", {}), ("infrared_adap_gray", {})))
    kinds = {m: [type(t).__name__ for t in pipes[m].transforms] for m in Modality}
    assert kinds[Modality.INFRARED][-1] == "ChannelAdapGray" and "ChannelAdapGray" not in kinds[Modality.VISIBLE]
    assert "ChannelExchange" in kinds[Modality.VISIBLE] and "ChannelExchange" not in kinds[Modality.INFRARED]
    # an infrared image stays a 3-channel tensor of the right size; off by default
    img = Image.fromarray(np.full((32, 16), 120, dtype=np.uint8), mode="L")
    assert pipes[Modality.INFRARED](img).shape == (3, 16, 8)
    assert not any(isinstance(t, ChannelAdapGray)
                   for t in build_train_transforms(16, 8)[Modality.INFRARED].transforms)
