"""SAP's student: extras for the distillation, MAPR on/off, gradients of the distillation to the proxies."""

from __future__ import annotations

import torch

from vireid.losses import build_loss
from vireid.methods.sap import SAP
from vireid.types import Batch

TINY = {"arch": "vit_cpu", "img_size": (64, 32), "patch_size": 8, "stride": 6, "depth": 2}


def _batch() -> Batch:
    torch.manual_seed(1)
    parsing = torch.zeros(4, 64, 32, dtype=torch.long)
    parsing[:, 8:20, 8:24] = 2  # hair
    parsing[:, 20:40, 6:26] = 4  # upper clothes
    parsing[:, 40:60, 8:24] = 6  # pants
    return Batch(images=torch.randn(4, 3, 64, 32), pids=torch.tensor([0, 0, 1, 1]),
                 camids=torch.zeros(4, dtype=torch.long), modality=torch.zeros(4, dtype=torch.long),
                 index=torch.arange(4), aux={"parsing": parsing})


def test_extras_shapes_and_probabilities() -> None:
    torch.manual_seed(0)
    model = SAP(5, **TINY).eval()
    b = _batch()
    with torch.no_grad():
        out = model(b.images, b.modality)
    assert out.features.shape == out.bn_features.shape == (4, 8 * 128)  # [cls] + 7 parts
    assert out.extras["attention"].shape == (4, 51, 51) and out.extras["proxy_attention"].shape == (4, 7, 50)
    torch.testing.assert_close(out.extras["attention"].sum(-1), torch.ones(4, 51))
    torch.testing.assert_close(out.extras["proxy_attention"].sum(-1), torch.ones(4, 7))
    assert out.extras["patch_geometry"].tolist() == [8, 6, 10, 5]
    assert out.extras["part_logits"].shape == (4, 7, 5) and out.logits.shape == (4, 5)


def test_mapr_adds_the_patch_to_proxy_absorption() -> None:
    torch.manual_seed(0)
    with_mapr, without = SAP(5, **TINY), SAP(5, mapr=False, **TINY)
    assert with_mapr.patch_absorb is not None and without.patch_absorb is None
    n = sum(p.numel() for p in with_mapr.parameters()) - sum(p.numel() for p in without.parameters())
    assert n == sum(p.numel() for p in with_mapr.patch_absorb.parameters())


def test_distillation_reaches_the_proxies_and_the_last_block() -> None:
    torch.manual_seed(0)
    model = SAP(5, **TINY).train()
    b = _batch()
    out = model(b.images, b.modality)
    loss = build_loss("sap_distill", teacher="parsing", lam=10.0)(out, b) + build_loss("sap_part_id")(out, b)
    loss.backward()
    assert bool(torch.isfinite(loss))
    for p in (model.proxies, model.proxy_attn.k.weight, model.backbone.blocks[-1].attn.qkv.weight,
              model.heads[3].classifier.weight):
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()) and float(p.grad.abs().sum()) > 0
