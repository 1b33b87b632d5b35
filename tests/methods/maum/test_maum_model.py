"""MAUM's network on tiny inputs: output contract, the three classifiers, gradients reaching every parameter."""

from __future__ import annotations

import pytest
import torch

from vireid.methods.maum import MAUM, MAUMIdentity, MAUMUnidirectional
from vireid.types import Batch


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    return Batch(torch.randn(8, 3, 32, 16, generator=g), pids, torch.zeros(8, dtype=torch.long), modality,
                 torch.arange(8))


def test_output_contract_in_train_and_eval() -> None:
    torch.manual_seed(0)
    model = MAUM(3, arch="resnet18")
    b = _batch()
    for train in (True, False):
        model.train(train)
        out = model(b.images, b.modality)
        assert out.features.shape == out.bn_features.shape == (8, 512)
        assert out.logits is not None and out.logits.shape == (8, 3)
        assert out.extras["logits_rgb"].shape == out.extras["logits_ir"].shape == (8, 3)
        assert out.extras["proxies_rgb"] is model.classifier_rgb.weight  # the MS-Proxies, (N, C)
        assert out.extras["proxies_ir"] is model.classifier_ir.weight
        torch.testing.assert_close(out.extras["logits_rgb"], out.bn_features @ model.classifier_rgb.weight.t())
    embed = MAUM(0, arch="resnet18").eval()(b.images, b.modality)
    assert embed.logits is None and embed.extras == {}
    with pytest.raises(ValueError, match="pool must be"):
        MAUM(3, arch="resnet18", pool="max")


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = MAUM(2, arch="resnet18").train()
    b = _batch()
    metric = MAUMUnidirectional(warmup_steps=0)
    out = model(b.images, b.modality)
    loss = MAUMIdentity()(out, b) + metric(out, b)
    loss.backward()
    assert len(metric.memory_rgb) == 1 and len(metric.memory_ir) == 1
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert missing == []
    assert torch.isfinite(loss)
