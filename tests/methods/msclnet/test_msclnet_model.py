"""MSCLNet's network: instance norm and the Mogrifier LSTM against the formulas written out here,
the output contract, and gradients reaching every parameter through the recipe's losses."""

from __future__ import annotations

from pathlib import Path

import torch

from vireid.config import load_config
from vireid.engine.build import build_losses
from vireid.methods.msclnet.model import MSCLNet, MogrifierLSTMCell, modality_pairs, stripe_features
from vireid.types import Batch


def test_instance_norm_per_sample_and_modality() -> None:
    torch.manual_seed(0)
    net = MSCLNet(4, arch="resnet18")
    for inorm in net.inorm:
        torch.nn.init.normal_(inorm.weight)
        torch.nn.init.normal_(inorm.bias)
    f = torch.randn(3, 512, 4, 2)
    modality = torch.tensor([1, 0, 1])
    got = net.instance_norm(f, modality)
    for i in range(3):
        mean = f[i].mean(dim=(1, 2), keepdim=True)
        var = ((f[i] - mean) ** 2).mean(dim=(1, 2), keepdim=True)  # biased, over H x W
        m = int(modality[i])
        want = (f[i] - mean) / torch.sqrt(var + 1e-5) * net.inorm[m].weight[:, None, None] \
            + net.inorm[m].bias[:, None, None]
        torch.testing.assert_close(got[i], want, atol=1e-5, rtol=1e-5)


def test_mogrifier_by_hand() -> None:
    torch.manual_seed(1)
    cell = MogrifierLSTMCell(3, rounds=5)
    x0, h0 = torch.randn(2, 3), torch.randn(2, 3)
    sig = torch.sigmoid
    q1, q2, q3 = (lin.weight for lin in cell.q)
    r1, r2 = (lin.weight for lin in cell.r)
    x = 2 * sig(h0 @ q1.T) * x0
    h = 2 * sig(x @ r1.T) * h0
    x = 2 * sig(h @ q2.T) * x
    h = 2 * sig(x @ r2.T) * h
    x = 2 * sig(h @ q3.T) * x
    gates = x @ cell.cell.weight_ih.T + cell.cell.bias_ih + h @ cell.cell.weight_hh.T + cell.cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=1)  # PyTorch's gate order
    c = sig(i) * torch.tanh(g)  # c_0 = 0
    want_h = sig(o) * torch.tanh(c)
    got_h, got_c = cell(x0, h0)
    torch.testing.assert_close(got_h, want_h)
    torch.testing.assert_close(got_c, c)


def test_pairs_and_stripes() -> None:
    vis, ir = modality_pairs(torch.tensor([0, 0, 0, 1, 1]))
    assert vis.tolist() == [0, 1] and ir.tolist() == [3, 4]
    fmap = torch.arange(6.0).reshape(1, 1, 6, 1).expand(1, 2, 6, 2)
    s = stripe_features(fmap, 3)
    assert s.shape == (1, 3, 2) and s[0, :, 0].tolist() == [0.5, 2.5, 4.5]


def test_contract_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(2)
    net = MSCLNet(3, arch="resnet18")
    images = torch.randn(8, 3, 32, 16)
    b = Batch(images=images, pids=torch.tensor([0, 0, 2, 2, 0, 0, 2, 2]), camids=torch.tensor([1, 2, 1, 2, 3, 3, 6, 6]),
              modality=torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), index=torch.arange(8))
    out = net(images, b.modality)
    assert out.logits.shape == (8, 3) and out.extras["synergy"].shape == (4, 512)
    assert out.extras["synergy_parts"].shape == (4, 6, 512)
    cfg = load_config(Path(__file__).resolve().parents[3] / "configs" / "msclnet_synthetic.yaml")
    total = sum(loss.weight * loss.fn(out, b) for loss in build_losses(cfg.losses))
    total.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert missing == []
    net.eval()
    ev = net(images, b.modality)
    assert ev.bn_features.shape == (8, 512) and ev.extras == {}
