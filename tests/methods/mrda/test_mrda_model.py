"""MRDA (seeds/003): the min-max mask (Eq. 1-4), the batch-axis feeding (Eq. 5-6) and the output contract."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.types import Batch
from vireid.losses import build_loss
from vireid.models import create_model
from vireid.methods.mrda.attention import ATTENTIONS, DynamicAttention
from vireid.methods.mrda.model import MRDA, human_mask, mask_pair, mask_reconstruct

H, W = 64, 32
MEAN = torch.tensor(IMAGENET_MEAN)
STD = torch.tensor(IMAGENET_STD)


def _tiny(**kw) -> MRDA:
    torch.manual_seed(0)
    params = dict(arch="resnet18", dam_k=2, dam_qk_channels=16, attention_reduction=8)
    params.update(kw)
    return MRDA(5, **params)


def _batch() -> Batch:
    torch.manual_seed(1)
    return Batch(images=torch.randn(4, 3, H, W), pids=torch.tensor([0, 3, 0, 3]), camids=torch.tensor([0, 1, 2, 3]),
                 modality=torch.tensor([0, 0, 1, 1]), index=torch.arange(4))


# ----------------------------------------------------------------------------- the mask


def test_mask_by_hand() -> None:
    # a 2x2 image: pixels (0.2,0.2,0.2), (0.6,0.6,0.6), (1.0,0.2,0.6), (0.2,1.0,0.2); min 0.2, max 1.0
    img = torch.tensor([[[0.2, 0.6], [1.0, 0.2]],
                        [[0.2, 0.6], [0.2, 1.0]],
                        [[0.2, 0.6], [0.6, 0.2]]]).unsqueeze(0)  # (1, 3, 2, 2)
    # scaled (x - 0.2) / 0.8: (0,0,0), (.5,.5,.5), (1,0,.5), (0,1,0); M+ = ||.||_2 / sqrt(3)
    expected = torch.tensor([[0.0, math.sqrt(0.75) / math.sqrt(3)],
                             [math.sqrt(1.25) / math.sqrt(3), 1 / math.sqrt(3)]])
    m_plus, m_minus = mask_pair(img)
    assert m_plus.shape == (1, 1, 2, 2)
    torch.testing.assert_close(m_plus[0, 0], expected)
    torch.testing.assert_close(m_minus, 1 - m_plus)
    assert math.isclose(float(m_plus[0, 0, 0, 1]), 0.5, rel_tol=1e-6)


def test_mask_range_and_complement_on_random_and_constant_images() -> None:
    torch.manual_seed(0)
    imgs = torch.cat([torch.rand(5, 3, 16, 8), torch.full((1, 3, 16, 8), 0.7), torch.ones(1, 3, 16, 8)])
    m_plus, m_minus = mask_pair(imgs)
    assert m_plus.shape == (7, 1, 16, 8)
    assert float(m_plus.min()) >= 0.0 and float(m_plus.max()) <= 1.0
    assert float(m_minus.min()) >= 0.0
    torch.testing.assert_close(m_plus + m_minus, torch.ones_like(m_plus))
    assert float(m_plus[5:].abs().max()) == 0.0  # constant images: nothing stands out
    # per-image min-max: the brightest pixel of a white-on-black image gets 1, the black ones 0
    img = torch.zeros(1, 3, 4, 4)
    img[..., 1, 2] = 0.5
    torch.testing.assert_close(human_mask(img)[0, 0, 1, 2], torch.tensor(1.0))
    assert float(human_mask(img).sum()) == 1.0


def test_mask_reconstruct_unnormalises_masks_and_renormalises_without_gradient() -> None:
    torch.manual_seed(0)
    pixels = torch.rand(3, 3, 8, 4)
    images = ((pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)).requires_grad_(True)
    masked, m_plus = mask_reconstruct(images, MEAN, STD)
    assert not masked.requires_grad and not m_plus.requires_grad
    expected_pixels = human_mask(pixels) * pixels  # Eq. 3 on the raw pixels
    torch.testing.assert_close(masked * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1), expected_pixels,
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m_plus, human_mask(pixels), rtol=1e-5, atol=1e-6)
    assert masked.dtype == images.dtype


# ----------------------------------------------------------------------------- the model


def test_train_output_holds_the_masked_copies_and_eval_holds_nothing() -> None:
    model = _tiny().train()
    batch = _batch()
    out = model(batch.images, batch.modality)
    assert out.features.shape == (4, 512) and out.bn_features.shape == (4, 512) and out.logits.shape == (4, 5)
    ex = out.extras
    assert ex["stage_map"].shape == ex["masked_stage_map"].shape == (4, 64, H // 4, W // 4)  # stage 1 = layer1
    assert ex["masked_features"].shape == ex["masked_bn_features"].shape == (4, 512)
    assert ex["masked_logits"].shape == (4, 5) and ex["mask"].shape == (4, 1, H, W)
    model.eval()
    with torch.no_grad():
        out = model(batch.images, batch.modality)
    assert out.extras == {} and out.features.shape == (4, 512)
    plain = _tiny(use_mrm=False).train()
    assert plain(batch.images, batch.modality).extras == {}


def test_masked_copies_are_the_second_half_of_one_batch_axis_forward() -> None:
    """Eq. 5-6: cat(x, x_M+) along the batch runs as one batch (shared BatchNorm statistics)."""
    model = _tiny(attention="none").train()
    reference = _tiny(attention="none", use_mrm=False)
    reference.load_state_dict(model.state_dict())
    reference.train()
    batch = _batch()
    out = model(batch.images, batch.modality)
    masked, _ = mask_reconstruct(batch.images, MEAN, STD)
    ref = reference(torch.cat([batch.images, masked]), torch.cat([batch.modality, batch.modality]))
    torch.testing.assert_close(out.features, ref.features[:4], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.extras["masked_features"], ref.features[4:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.extras["masked_logits"], ref.logits[4:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stage, shape", [(0, (64, H // 4, W // 4)), (2, (128, H // 8, W // 8)),
                                          (4, (512, H // 16, W // 16))])
def test_region_centre_stage_is_configurable(stage: int, shape: tuple[int, int, int]) -> None:
    out = _tiny(ac_stage=stage, attention="none").train()(_batch().images, _batch().modality)
    assert out.extras["stage_map"].shape == (4, *shape)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_all_mrda_losses_reach_every_parameter(attention: str) -> None:
    model = _tiny(attention=attention).train()
    batch = _batch()
    out = model(batch.images, batch.modality)
    total = sum(build_loss(name)(out, batch) for name in
                ("mrda_id", "hetero_centre_triplet", "correlation_consistency", "region_centre"))
    total.backward()
    assert bool(torch.isfinite(total))
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
    assert float(model.backbone.specific["infrared"][1][0].conv1.weight.grad.abs().sum()) > 0  # specific layer1


def test_structure_follows_eq_8_and_the_options() -> None:
    model = _tiny()
    assert len(model.backbone.specific["visible"]) == 2 and len(model.backbone.shared) == 3  # stages 0-1 | 2-4
    assert isinstance(model.head.pool, DynamicAttention) and model.head.pool.k == 2
    assert model.head.pool.mode == "select_q"
    assert _tiny(dam_mode="route_kv").head.pool.mode == "route_kv"
    assert "mean" not in model.state_dict()  # the normalisation is an argument, not a weight
    assert isinstance(create_model("mrda", num_classes=3, arch="resnet18"), MRDA)
    with pytest.raises(ValueError, match="unknown attention 'se'"):
        _tiny(attention="se")
    with pytest.raises(ValueError, match="ac_stage must be in 0..4"):
        _tiny(ac_stage=5)
    with pytest.raises(ValueError, match="dam_mode must be one of"):
        _tiny(dam_mode="rows")


def test_bf16_autocast_training_step_is_finite() -> None:
    model = _tiny().train()
    batch = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch.images, batch.modality)
    total = sum(build_loss(name)(out, batch) for name in
                ("mrda_id", "hetero_centre_triplet", "correlation_consistency", "region_centre"))
    total.backward()
    assert out.features.dtype == torch.float32 and bool(torch.isfinite(total))
