"""The MoS network: non-negative retrieval embedding g, one output type, gradients everywhere."""

import torch
import torch.nn.functional as F

from vireid.methods.mos import MoSNet, SetOutput, jaccard_triplet
from vireid.methods.registry import METHODS


def test_outputs_gradients_and_registration():
    torch.manual_seed(0)
    model = MoSNet(5, arch="resnet18", num_specific_stages=0)
    images, modality = torch.randn(8, 3, 32, 16), torch.zeros(8, dtype=torch.long)
    out = model(images, modality)
    assert isinstance(out, SetOutput) and out.features.shape == (8, 512) and out.logits.shape == (8, 5)
    assert bool((out.features >= 0).all()) and out.embedding is out.features  # retrieval reads g, not BN(g)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    (F.cross_entropy(out.logits, pids) + jaccard_triplet(out.features, pids)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        ev = model(images, modality)
    assert isinstance(ev, SetOutput) and bool((ev.embedding >= 0).all())
    method = METHODS.get("mos")
    assert method.parts() == {"models": ["mos"], "losses": ["jaccard_triplet"]}
