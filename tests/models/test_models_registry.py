"""Every registered model on tiny inputs: output contract, gradients, routing, channels_last, bf16."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

from vireid.types import Batch
from vireid.errors import ConfigError
from vireid.losses import build_loss
from vireid.methods.agw import AGW
from vireid.models import ModelOutput, NonLocalBlock, create_model, get_model_constructor, list_models

NUM_CLASSES = 5
TINY: dict[str, Any] = {"num_classes": NUM_CLASSES, "arch": "resnet18"}
H, W = 64, 32
# model name -> tiny kwargs replacing TINY's (models that are not two-stream ResNets): tests/conftest.py
TINY_PER_MODEL: dict[str, dict[str, Any]] = {}


@pytest.fixture(autouse=True)
def _per_model_kwargs(tiny_model_kwargs: dict[str, dict[str, Any]]) -> None:
    TINY_PER_MODEL.update(tiny_model_kwargs)


def _tiny_model(name: str, **overrides: Any) -> nn.Module:
    """Build ``name`` with the tiny kwargs it accepts (models added later may take fewer)."""
    params = inspect.signature(get_model_constructor(name)).parameters
    tiny = {**TINY, **TINY_PER_MODEL.get(name, {})}
    kwargs = {k: v for k, v in {**tiny, **overrides}.items() if k in params}
    torch.manual_seed(0)
    return create_model(name, **kwargs)


def _batch() -> Batch:
    torch.manual_seed(1)
    return Batch(
        images=torch.randn(4, 3, H, W),
        pids=torch.tensor([0, 3, 0, 3]),
        camids=torch.tensor([0, 2, 1, 3]),
        modality=torch.tensor([0, 1, 1, 0]),  # mixed, not sorted by modality
        index=torch.arange(4),
    )


def _check_output(out: ModelOutput, dim: int, num_classes: int) -> None:
    assert isinstance(out, ModelOutput)
    assert out.features.shape == (4, dim) and out.bn_features.shape == (4, dim)
    assert out.logits is not None and out.logits.shape == (4, num_classes)
    for t in (out.features, out.bn_features, out.logits, *out.extras.values()):
        assert bool(torch.isfinite(t).all())


def test_registry_lists_the_baseline_models() -> None:
    assert {"agw", "baseline"} <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_output_contract_in_train_and_eval(name: str) -> None:
    model = _tiny_model(name)
    batch = _batch()
    model.train()
    _check_output(model(batch.images, batch.modality), model.out_dim, NUM_CLASSES)
    model.eval()
    with torch.no_grad():
        _check_output(model(batch.images, batch.modality), model.out_dim, NUM_CLASSES)


@pytest.mark.parametrize("name", list_models())
def test_gradients_reach_every_learnable_parameter(name: str) -> None:
    model = _tiny_model(name).train()
    with torch.no_grad():  # non-local blocks start as the identity (BN weight 0), which blocks
        for m in model.modules():  # gradients to their convs; give them the weight training would
            if isinstance(m, NonLocalBlock):
                m.bn.weight.fill_(1.0)
    batch = _batch()
    out = model(batch.images, batch.modality)
    loss = build_loss("cross_entropy")(out, batch) + build_loss("wrt")(out, batch)
    loss = loss + sum(t.float().mean() for t in out.extras.values())
    loss.backward()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(n.endswith("bnneck.bias") for n in frozen), frozen
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{n}: no gradient"
            assert bool(torch.isfinite(p.grad).all()), f"{n}: non-finite gradient"
            assert bool(p.grad.abs().sum() > 0), f"{n}: zero gradient"


@pytest.mark.parametrize("name", list_models())
def test_eval_output_of_a_sample_is_independent_of_the_batch(name: str) -> None:
    model = _tiny_model(name)
    with torch.no_grad():  # make the two streams differ, and the non-local blocks active
        # two-stream CNNs; a ViT's modality embedding; none for a model without a backbone (Hi-CMD)
        specific = getattr(getattr(model, "backbone", None), "specific", None)
        routed = specific["infrared"].parameters() if specific is not None else [
            p for n, p in model.named_parameters() if n.endswith("modality_embed")]
        for p in routed:
            p.add_(0.05 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, NonLocalBlock):
                m.bn.weight.fill_(1.0)
    batch = _batch()
    with torch.no_grad():  # calibrate the BN statistics once (random-init ones let activations explode)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 1.0
        model.train()(batch.images, batch.modality)
        model.eval()
        mixed = model(batch.images, batch.modality)
        alone = [model(batch.images[i:i + 1], batch.modality[i:i + 1]) for i in range(4)]
    for field in ("features", "bn_features", "logits"):
        torch.testing.assert_close(getattr(mixed, field), torch.cat([getattr(o, field) for o in alone]),
                                   rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", list_models())
def test_channels_last_matches_contiguous(name: str) -> None:
    model = _tiny_model(name).eval()
    batch = _batch()
    with torch.no_grad():
        ref = model(batch.images, batch.modality)
        model = model.to(memory_format=torch.channels_last)
        out = model(batch.images.contiguous(memory_format=torch.channels_last), batch.modality)
    torch.testing.assert_close(out.bn_features, ref.bn_features, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", list_models())
def test_bf16_autocast_step_is_finite(name: str) -> None:
    model = _tiny_model(name).train()
    batch = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch.images, batch.modality)
    assert out.features.dtype == torch.float32  # pooling runs in float32
    loss = build_loss("cross_entropy")(out, batch) + build_loss("triplet_hard")(out, batch)
    loss = loss + build_loss("wrt")(out, batch)
    loss.backward()
    assert bool(torch.isfinite(loss))
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list_models())
def test_num_classes_zero_gives_no_logits(name: str) -> None:
    model = _tiny_model(name, num_classes=0).eval()
    batch = _batch()
    with torch.no_grad():
        out = model(batch.images, batch.modality)
    assert out.logits is None and out.bn_features.shape == (4, model.out_dim)


def test_agw_structure() -> None:
    model = AGW(7, arch="resnet18")
    nl = [sum(isinstance(m, NonLocalBlock) for m in stage) for stage in model.backbone.shared]
    assert nl == [0, 2, 2, 0]  # AGW's (0, 2, 3, 0) capped at resnet18's 2 blocks per layer
    assert float(model.head.pool.p) == 3.0 and not model.head.pool.learnable
    assert model.head.classifier is not None and model.head.classifier.bias is None
    assert len(model.backbone.specific["visible"]) == 1 and model.backbone.shared[3][0].conv1.stride == (1, 1)
    plain = AGW(7, arch="resnet18", non_local=False, gem_learnable=True)
    assert not any(isinstance(m, NonLocalBlock) for m in plain.modules())
    assert isinstance(plain.head.pool.p, nn.Parameter)
    model.reset_classifier(3)
    assert model.head.classifier.out_features == 3


def test_unknown_model_and_unknown_argument() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'agw2'; valid: agw, baseline, "):
        create_model("agw2", num_classes=3)
    with pytest.raises(ConfigError, match=r"unknown config key model 'agw'\.gem_pp; valid keys: num_classes, arch"):
        create_model("agw", num_classes=3, gem_pp=4.0)
