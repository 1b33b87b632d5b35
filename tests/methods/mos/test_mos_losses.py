"""The MoS Jaccard triplet loss (seeds/002 §3) against a loop over anchors."""

import pytest
import torch

from vireid.methods.mos.jaccard import soft_jaccard
from vireid.methods.mos.losses import JaccardTriplet, jaccard_triplet
from vireid.types import Batch, ModelOutput


def _loop(g: torch.Tensor, pids: list[int], margin: float, tau: float) -> float:
    terms = []
    for n in range(len(pids)):
        d = [1.0 - float(soft_jaccard(g[n], g[m], tau)) for m in range(len(pids))]
        pos = max(d[m] for m in range(len(pids)) if pids[m] == pids[n])
        neg = min(d[m] for m in range(len(pids)) if pids[m] != pids[n])
        terms.append(max(0.0, margin + pos - neg))
    return sum(terms) / len(terms)


def test_batch_hard_matches_loop():
    torch.manual_seed(0)
    g = torch.relu(torch.randn(8, 6, dtype=torch.float64))
    pids = [0, 0, 1, 1, 2, 2, 3, 3]
    got = jaccard_triplet(g, torch.tensor(pids), margin=0.3, tau=5.0)
    assert float(got) == pytest.approx(_loop(g, pids, 0.3, 5.0), rel=1e-6)


def test_module_reads_features_and_gives_finite_gradients():
    torch.manual_seed(1)
    g = torch.rand(6, 5, requires_grad=True)
    feats = torch.cat([g[:3], g[:3].detach() + 0.0 * g[3:]])  # exact ties between anchors and positives
    batch = Batch(images=torch.zeros(6, 3, 4, 2), pids=torch.tensor([0, 1, 2, 0, 1, 2]),
                  camids=torch.zeros(6, dtype=torch.long), modality=torch.zeros(6, dtype=torch.long),
                  index=torch.arange(6))
    loss = JaccardTriplet(margin=0.1, tau=10.0)(ModelOutput(features=feats, bn_features=-feats), batch)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(g.grad).all()


def test_one_identity_batch_is_zero():
    g = torch.rand(4, 3, requires_grad=True)
    out = jaccard_triplet(g, torch.zeros(4, dtype=torch.long))
    assert float(out.detach()) == 0.0 and out.requires_grad
