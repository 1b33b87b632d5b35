"""The SPOT network at tiny size: shapes, gradients to every parameter, no NaN, the heatmap paths
(ground truth, resized, uniform fallback with its warning), the output contract in eval mode."""

from __future__ import annotations

import logging

import pytest
import torch

from vireid.methods.spot import SPOT, SPOTBaseLoss, SPOTFusedLoss, SPOTPartLoss, SPOTStructureLoss
from vireid.methods.spot.model import SPOT_EXTRAS
from vireid.types import Batch

TINY = dict(arch="resnet18", structure_channels=16, relation_hidden=8, qk_channels=8, parts=3, tpi_heads=4)


def _batch(b: int = 8, classes: int = 4) -> Batch:
    g = torch.Generator().manual_seed(0)
    pids = torch.arange(b) % classes
    return Batch(torch.randn(b, 3, 64, 32, generator=g), pids, torch.zeros(b, dtype=torch.long),
                 (torch.arange(b) >= b // 2).long(), torch.arange(b),
                 {"heatmaps": torch.rand(b, 17, 16, 8, generator=g)})


def _total(out, batch: Batch) -> torch.Tensor:
    losses = (SPOTBaseLoss(), SPOTStructureLoss(), SPOTPartLoss(), SPOTFusedLoss())
    return sum(loss(out, batch) for loss in losses)


def test_shapes_and_extras_in_train_and_eval() -> None:
    torch.manual_seed(0)
    model = SPOT(4, **TINY)
    batch = _batch()
    for train in (True, False):
        model.train(train)
        out = model(batch.images, batch.modality, aux=batch.aux)
        assert out.features.shape == out.bn_features.shape == (8, 512)
        assert out.logits is not None and out.logits.shape == (8, 4)
        assert set(out.extras) == set(SPOT_EXTRAS)
        assert out.extras["part_masks"].shape == (8, 3, 4, 2)
        assert not bool(out.extras["uniform_structure"].any())
        for v in (out.features, out.bn_features, out.logits, *out.extras.values()):
            assert bool(torch.isfinite(v.float()).all())


def test_gradients_reach_every_parameter_and_are_finite() -> None:
    torch.manual_seed(0)
    model = SPOT(4, **TINY).train()
    batch = _batch()
    _total(model(batch.images, batch.modality, aux=batch.aux), batch).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, missing
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


def test_heatmaps_change_the_output_and_other_sizes_are_resized() -> None:
    torch.manual_seed(0)
    model = SPOT(0, **TINY).eval()
    batch = _batch()
    a = model(batch.images, batch.modality, aux=batch.aux).bn_features
    b = model(batch.images, batch.modality, aux={"heatmaps": batch.aux["heatmaps"].flip(2)}).bn_features
    assert not torch.allclose(a, b, atol=1e-4)
    big = torch.nn.functional.interpolate(batch.aux["heatmaps"], size=(32, 16), mode="nearest")  # stride 2
    c = model(batch.images, batch.modality, aux={"heatmaps": big}).bn_features
    torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-5)  # 2x2 area average of a nearest 2x upsample
    with pytest.raises(ValueError, match=r"aux\['heatmaps'\] must be \(B=8, K_S=17"):
        model(batch.images, batch.modality, aux={"heatmaps": torch.rand(8, 18, 16, 8)})


def test_fallback_without_heatmaps_warns_once_and_trains(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = SPOT(4, **TINY).train()
    batch = _batch()
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        out = model(batch.images, batch.modality)
        model(batch.images, batch.modality, aux={})
    warnings = [r for r in caplog.records if "uniform keypoint heatmaps" in r.getMessage()]
    assert len(warnings) == 1 and "no aux['heatmaps']" in warnings[0].getMessage()
    assert model.fallback_batches == 2 and bool(out.extras["uniform_structure"].all())
    loss = _total(out, batch)
    assert torch.isfinite(loss)
    loss.backward()
    # with uniform heatmaps the structure input is the same for every image: F_S is a constant of the batch
    model.eval()
    s = model.relation(torch.full((2, 17, 16, 8), 1.0 / 128))
    torch.testing.assert_close(s[0], s[1])


def test_structure_uniform_ignores_given_heatmaps(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = SPOT(0, structure="uniform", **TINY).eval()
    batch = _batch()
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        a = model(batch.images, batch.modality, aux=batch.aux)
    b = model(batch.images, batch.modality)
    torch.testing.assert_close(a.bn_features, b.bn_features)
    assert "structure='uniform'" in caplog.text and a.logits is None


def test_bf16_autocast_channels_last_runs_without_nan() -> None:
    torch.manual_seed(0)
    model = SPOT(4, **TINY).train().to(memory_format=torch.channels_last)
    batch = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch.images.contiguous(memory_format=torch.channels_last), batch.modality, aux=batch.aux)
        loss = _total(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(out.bn_features).all())


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown arch"):
        SPOT(2, arch="vgg")
    with pytest.raises(ValueError, match="structure must be one of"):
        SPOT(2, arch="resnet18", structure="parsing")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tpi_heads \\(7\\) must divide"):
        SPOT(2, arch="resnet18", tpi_heads=7)


def test_images_without_a_labelled_joint_get_the_uniform_heatmaps(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = SPOT(0, **TINY).eval()
    batch = _batch()
    heatmaps = batch.aux["heatmaps"].clone()
    heatmaps[2] = 0.0  # an all-invisible skeleton (data.aux.missing: empty)
    with caplog.at_level(logging.WARNING, logger="vireid.methods.spot.model"):
        out = model(batch.images, batch.modality, aux={"heatmaps": heatmaps})
    assert out.extras["uniform_structure"].tolist() == [False, False, True] + [False] * 5
    assert model.fallback_images == 1 and "1 image(s) of a batch have no labelled keypoint" in caplog.text
    alone = model(batch.images[2:3], batch.modality[2:3]).bn_features  # the batch-level fallback, eval BN
    torch.testing.assert_close(out.bn_features[2:3], alone, rtol=1e-4, atol=1e-5)
