"""NFormer model contract, gradients, and the test-time refinement (chunked re-ranker = dense,
unchunked computation written here), plus how ``--rerank nformer`` reaches the run's weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vireid.errors import ConfigError
from vireid.methods.nformer import NFormerNet, nformer_stream, refine_features
from vireid.methods.nformer import refine as refine_module
from vireid.methods.nformer.attention import landmark_factors
from vireid.rerank import build_reranker
from vireid.rerank.registry import bind_run


def dense_encoder(model: NFormerNet, z: torch.Tensor, modality: torch.Tensor, landmarks: list[torch.Tensor], k: int,
                  quota: int) -> torch.Tensor:
    """The NFormer encoder with full (N, N) matrices: A~ per head, M^k from a full sort of each row
    (top k - quota overall + top quota of the other modality), M = M^k * M^k^T with M_ii = 1, masked
    softmax, then the block's residual/LayerNorm/FF and the BNNeck; L2-normalised output."""
    enc = model.nformer
    x = enc.proj(F.normalize(z, dim=1) * math.sqrt(z.shape[1]))  # unit rows scaled by sqrt(D)
    n = x.shape[0]
    for block, lm in zip(enc.blocks, landmarks):
        q, kk, v = block.split(block.ln1(x) if block.pre_norm else x)
        heads = []
        for h in range(q.shape[0]):
            q_t, k_t = landmark_factors(q[h:h + 1], kk[h:h + 1], lm)
            a = (q_t[0] @ k_t[0].T) / math.sqrt(q.shape[-1])  # (N, N)
            order = torch.argsort(a, dim=1, descending=True)
            mk = torch.zeros(n, n, dtype=torch.bool)
            for i in range(n):
                mk[i, order[i, : k - quota]] = True
                if quota:
                    other = [j for j in order[i].tolist() if modality[j] != modality[i]][:quota]
                    mk[i, other] = True
            m = (mk & mk.T) | torch.eye(n, dtype=torch.bool)
            w = torch.softmax(a.masked_fill(~m, float("-inf")), dim=1)
            heads.append(w @ v[h])
        att = torch.cat(heads, dim=1)
        if block.pre_norm:
            hh = x + block.proj(att)
            x = hh + block.ff(block.ln2(hh))
        else:
            hh = block.ln1(x + block.proj(att))
            x = block.ln2(hh + block.ff(hh))
    return F.normalize(enc.bnneck(enc.final_norm(x)), dim=1)


@pytest.fixture(params=[False, True], ids=["post-LN", "pre-LN"])
def model(request: pytest.FixtureRequest) -> NFormerNet:
    torch.manual_seed(0)
    net = NFormerNet(6, arch="resnet18", dim=16, blocks=2, heads=2, landmarks=3, topk=4, dropout=0.0,
                     pre_norm=request.param)
    net.nformer.double()
    return net.eval()


@pytest.mark.parametrize("quota", [0, 2])
def test_chunked_refinement_equals_dense(model: NFormerNet, quota: int) -> None:
    torch.manual_seed(1)
    z = torch.randn(40, 512, dtype=torch.float64)
    modality = torch.tensor([0] * 15 + [1] * 25)
    gen = torch.Generator().manual_seed(7)
    lms = [torch.randperm(40, generator=gen)[:3] for _ in range(2)]
    with torch.no_grad():
        chunked = F.normalize(model.refine(z, modality, cross_modal_quota=quota, landmarks=lms, chunk_size=6), dim=1)
        dense = dense_encoder(model, z, modality, lms, 4, quota)
    torch.testing.assert_close(chunked, dense)
    # the public entry point draws the same landmarks from the seed
    via = refine_features(model, z, modality, cross_modal_quota=quota, seed=7, chunk_size=6)
    torch.testing.assert_close(via.double(), dense.float().double(), atol=1e-5, rtol=1e-5)


def test_stream_distances_equal_dense(model: NFormerNet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refine_module, "load_nformer", lambda run, checkpoint="best": model)
    torch.manual_seed(2)
    qf, gf = torch.randn(13, 512, dtype=torch.float64), torch.randn(21, 512, dtype=torch.float64)
    blocks = list(nformer_stream(qf.numpy(), gf.numpy(), run="x", seed=3, chunk_size=5))
    assert [b[0] for b in blocks] == [slice(0, 5), slice(5, 10), slice(10, 13)]
    got = torch.cat([b[1] for b in blocks]).double()
    gen = torch.Generator().manual_seed(3)
    lms = [torch.randperm(34, generator=gen)[:3] for _ in range(2)]
    with torch.no_grad():
        ref = dense_encoder(model, torch.cat([qf, gf]).float().double(), torch.tensor([0] * 13 + [1] * 21), lms, 4, 0)
    want = torch.cdist(ref[:13], ref[13:])
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    assert got.shape == (13, 21)


def test_model_contract_and_gradients() -> None:
    torch.manual_seed(4)
    net = NFormerNet(3, arch="resnet18", dim=32, blocks=1, heads=2, landmarks=2, topk=3, cross_modal_quota=1)
    images, modality = torch.randn(8, 3, 32, 16), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    out = net(images, modality)
    assert out.features.shape == (8, 512) and out.logits.shape == (8, 3)
    assert out.extras["refined_features"].shape == (8, 32) and out.extras["refined_logits"].shape == (8, 3)
    loss = out.logits.logsumexp(1).sum() + out.features.pow(2).sum() + out.extras["refined_logits"].logsumexp(1).sum() \
        + out.extras["refined_features"].pow(2).sum()
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert missing == []
    net.eval()
    ev = net(images, modality)
    assert ev.bn_features.shape == (8, 512) and ev.extras == {}


def test_run_binding_and_errors(tmp_path: Path) -> None:
    rr = build_reranker("nformer", topk=5)
    record = {"method": "nformer", "run": None, "checkpoint": "best", "topk": 5}
    bind_run(rr, record, "runs/x", "last")
    assert rr.params["run"] == "runs/x" and record["checkpoint"] == "last"
    bind_run(rr, record, "runs/y", "best")  # an explicit run is kept
    assert rr.params["run"] == "runs/x"
    with pytest.raises(ConfigError, match="needs the trained NFormer"):
        list(nformer_stream(np.ones((2, 4)), np.ones((3, 4))))
    with pytest.raises(ConfigError, match="not a vireid run folder"):
        list(nformer_stream(np.ones((2, 4)), np.ones((3, 4)), run=str(tmp_path)))
    with pytest.raises(ConfigError, match="cross_modal_quota must be an integer >= 0"):
        build_reranker("nformer", cross_modal_quota=-1)


def test_refined_identity_by_hand() -> None:
    from vireid.methods.nformer.losses import RefinedIdentity
    from vireid.types import Batch, ModelOutput

    b = Batch(images=torch.zeros(2, 3, 2, 2), pids=torch.tensor([0, 1]), camids=torch.zeros(2, dtype=torch.long),
              modality=torch.tensor([0, 1]), index=torch.arange(2))
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    out = ModelOutput(features=logits, bn_features=logits, extras={"refined_logits": logits})
    assert float(RefinedIdentity(epsilon=0.0)(out, b)) == pytest.approx((-math.log(0.75) + math.log(2.0)) / 2)
    with pytest.raises(ValueError, match="no extras\\['refined_logits'\\]"):
        RefinedIdentity()(ModelOutput(features=logits, bn_features=logits), b)
