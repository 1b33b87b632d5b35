"""CM-LSP + BN-GE's network on tiny inputs: output contract, stripes, gradients reaching every parameter."""

from __future__ import annotations

import pytest
import torch

from vireid.models.layers import NonLocalBlock
from vireid.methods.cmlsp import CMLSP, CMLSPCentreTriplet, CMLSPIdentity, CMLSPLocal
from vireid.types import Batch


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    return Batch(torch.randn(8, 3, 64, 32, generator=g), pids, torch.zeros(8, dtype=torch.long), modality,
                 torch.arange(8))


def test_output_contract_and_stripes() -> None:
    torch.manual_seed(0)
    model = CMLSP(3, arch="resnet18", stripes=4, local_dim=16, enhanced_dim=32, test_feature="global+enhanced")
    b = _batch()
    for train in (True, False):
        model.train(train)
        out = model(b.images, b.modality)
        assert out.features.shape == (8, 512) and out.logits.shape == (8, 3)
        assert out.extras["enhanced"].shape == (8, 32) and out.extras["enhanced_logits"].shape == (8, 3)
        assert out.extras["local"].shape == (8, 4, 16) and out.extras["local_logits"].shape == (8, 4, 3)
        assert out.bn_features.shape == (8, 512 + 32)  # global+enhanced, each L2-normalised
        torch.testing.assert_close(out.bn_features[:, :512].norm(dim=1), torch.ones(8))
    model.eval()
    out = model(b.images, b.modality)
    # f^eg = FC(BN(f^g)) and stripe j's classifier reads stripe j
    torch.testing.assert_close(out.extras["enhanced"], model.ge_fc(model.ge_bn(out.features)))
    torch.testing.assert_close(out.extras["local_logits"][:, 2], model.classifier_local[2](out.extras["local"][:, 2]))
    # the stripes are the row bands of the final map: stripe 1 only sees the top rows
    fmap = model.backbone(b.images, b.modality)  # (8, 512, 4, 2) at 64x32, last stride 1: one row per stripe
    assert fmap.shape[2] == 4
    top = model.local_reduce(fmap[:, :, :1].mean(dim=(2, 3)).unsqueeze(2)).squeeze(2)
    torch.testing.assert_close(out.extras["local"][:, 0], top, rtol=1e-4, atol=1e-5)
    for feature, dim in (("global", 512), ("enhanced", 32), ("global+enhanced", 544)):
        m = CMLSP(3, arch="resnet18", stripes=4, local_dim=16, enhanced_dim=32, test_feature=feature).eval()
        assert m(b.images, b.modality).bn_features.shape == (8, dim)
    assert CMLSP(0, arch="resnet18").eval()(b.images, b.modality).logits is None
    with pytest.raises(ValueError, match="test_feature must be one of"):
        CMLSP(3, arch="resnet18", test_feature="local")


@pytest.mark.parametrize("mode", ["shortest_path", "stripewise"])
def test_gradients_reach_every_parameter(mode: str) -> None:
    torch.manual_seed(0)
    model = CMLSP(2, arch="resnet18", stripes=4, local_dim=16).train()
    with torch.no_grad():  # non-local blocks start as the identity (BN weight 0), which blocks
        for m in model.modules():  # gradients to their convs; give them the weight training would
            if isinstance(m, NonLocalBlock):
                m.bn.weight.fill_(1.0)
    b = _batch()
    out = model(b.images, b.modality)
    loss = CMLSPIdentity()(out, b) + CMLSPCentreTriplet(margin=5.0)(out, b) + CMLSPLocal(margin=50.0, mode=mode)(out, b)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert missing == [] and torch.isfinite(loss)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["head.bnneck.bias"]


def test_local_loss_alone_reaches_the_stripe_branch() -> None:
    torch.manual_seed(1)
    model = CMLSP(2, arch="resnet18", stripes=3, local_dim=8).train()
    b = _batch()
    CMLSPLocal(margin=50.0)(model(b.images, b.modality), b).backward()
    assert model.local_reduce[0].weight.grad.abs().sum() > 0
    assert model.backbone.shared[0][0].conv1.weight.grad.abs().sum() > 0
    assert model.ge_fc.weight.grad is None and model.classifier_local[0].weight.grad is None
