"""MRDA's dynamic attention (seeds/003 Eq. 9-17) and the Table-1 alternatives BAM, CBAM, IWPAM."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vireid.methods.mrda.attention import (
    ATTENTIONS,
    BAM,
    CBAM,
    DynamicAttention,
    IWPAttention,
    build_attention_pool,
    gather_regions,
    region_affinity,
    region_tokens,
    top_regions,
)
from vireid.models.layers import GeM

C, H, W = 16, 6, 3


def _map(b: int = 2, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(b, C, H, W) + 0.1  # positive, like post-ReLU features


def _check_pooler(module: nn.Module, b: int = 3) -> None:
    f = _map(b).requires_grad_(True)
    out = module(f)
    assert out.shape == (b, C) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    out.pow(2).sum().backward()
    assert f.grad is not None and bool(f.grad.abs().sum() > 0)
    for name, p in module.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert bool(p.grad.abs().sum() > 0), f"{name}: zero gradient"


# ----------------------------------------------------------------------------- DAM pieces


def test_region_tokens_bands_rows_in_order() -> None:
    x = torch.arange(1 * 2 * 4 * 3, dtype=torch.float32).reshape(1, 2, 4, 3)  # (B, C, H, W)
    tok = region_tokens(x, 2)  # 2 bands of 2 rows -> (1, 2, 6, 2)
    assert tok.shape == (1, 2, 6, 2)
    # band 1, token 0 = row 2, column 0; channel c is x[0, c, 2, 0]
    assert tok[0, 1, 0].tolist() == [x[0, 0, 2, 0].item(), x[0, 1, 2, 0].item()]
    assert tok[0, 0, 5].tolist() == [x[0, 0, 1, 2].item(), x[0, 1, 1, 2].item()]  # row 1, column 2
    with pytest.raises(ValueError, match="height 4 is not a multiple of num_regions=3"):
        region_tokens(x, 3)


def test_region_affinity_is_the_product_of_region_means() -> None:
    q = torch.tensor([[[[1.0, 0.0], [3.0, 0.0]], [[0.0, 2.0], [0.0, 4.0]]]])  # (1, R=2, T=2, C=2)
    k = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]]])
    # Q_avg = [(2, 0), (0, 3)], K_avg = [(1, 1), (1, 0)] -> M_aff = [[2, 2], [3, 0]]
    assert region_affinity(q, k).tolist() == [[[2.0, 2.0], [3.0, 0.0]]]


def test_top_regions_on_a_hand_built_affinity() -> None:
    aff = torch.tensor([[[1.0, 0.0, 0.0, 0.0],
                         [0.0, 5.0, 0.0, 0.0],
                         [0.0, 0.0, 2.0, 0.0],
                         [3.0, 0.0, 0.0, 0.5]]])  # row sums 1, 5, 2, 3.5
    assert top_regions(aff, 2, "select_q").tolist() == [[1, 3]]  # regions of sums 5 and 3.5, in order
    assert top_regions(aff, 3, "select_q").tolist() == [[1, 2, 3]]
    # reading B: per query row, its k most affine regions
    assert top_regions(aff, 1, "route_kv").tolist() == [[[0], [1], [2], [0]]]
    routed = torch.tensor([[[4.0, 1.0, 0.0, 2.0],
                            [0.0, 5.0, 3.0, 1.0],
                            [1.0, 0.0, 2.0, 6.0],
                            [3.0, 2.0, 1.0, 0.5]]])
    assert top_regions(routed, 2, "route_kv").tolist() == [[[0, 3], [1, 2], [2, 3], [0, 1]]]
    with pytest.raises(ValueError, match="need 1 <= k <= 4"):
        top_regions(aff, 5)
    with pytest.raises(ValueError, match="mode must be one of"):
        top_regions(aff, 1, "topk")


def test_gather_regions_picks_the_indexed_regions() -> None:
    tokens = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 4, 1, 1).repeat(1, 1, 3, 2)  # (B, R, T, C)
    picked = gather_regions(tokens, torch.tensor([[1, 3], [0, 2]]))  # (B, k, T, C)
    assert picked.shape == (2, 2, 3, 2)
    assert picked[:, :, 0, 0].tolist() == [[1.0, 3.0], [4.0, 6.0]]  # batch 1 holds values 4..7
    routed = gather_regions(tokens, torch.tensor([[[2], [0], [1], [1]], [[3], [3], [0], [0]]]))  # (B, R, 1, T, C)
    assert routed.shape == (2, 4, 1, 3, 2)
    assert routed[:, :, 0, 0, 0].tolist() == [[2.0, 0.0, 1.0, 1.0], [7.0, 7.0, 4.0, 4.0]]


def _reference_dam(module: DynamicAttention, f: torch.Tensor) -> torch.Tensor:
    """Straightforward loops over images, regions and tokens (the docstring's equations)."""
    out = []
    for x in f:  # (C, H, W)
        q = torch.einsum("oc,chw->ohw", module.query.weight[:, :, 0, 0], x) + module.query.bias[:, None, None]
        k = torch.einsum("oc,chw->ohw", module.key.weight[:, :, 0, 0], x) + module.key.bias[:, None, None]
        v = torch.einsum("oc,chw->ohw", module.value.weight[:, :, 0, 0], x) + module.value.bias[:, None, None]
        h, w = x.shape[1:]
        rows = [(r, c) for r in range(h) for c in range(w)]  # token order
        q_avg = [q[:, r, :].mean(dim=1) for r in range(h)]  # one region per row
        k_avg = [k[:, r, :].mean(dim=1) for r in range(h)]
        aff = [[float(q_avg[i] @ k_avg[j]) for j in range(h)] for i in range(h)]
        scale = 1 / math.sqrt(q.shape[0])
        kk = min(module.k, h)
        attended = []
        if module.mode == "select_q":
            score = [sum(row) for row in aff]
            chosen = sorted(sorted(range(h), key=lambda i: -score[i])[:kk])
            queries = [(r, c) for r in chosen for c in range(w)]
            keys = rows
            for (r, c) in queries:
                logits = torch.stack([q[:, r, c] @ k[:, rr, cc] * scale for (rr, cc) in keys])
                a = torch.softmax(logits, 0)
                attended.append(sum(a[t] * v[:, rr, cc] for t, (rr, cc) in enumerate(keys)))
        else:
            for r in range(h):
                chosen = sorted(sorted(range(h), key=lambda j: -aff[r][j])[:kk])
                keys = [(rr, cc) for rr in chosen for cc in range(w)]
                for c in range(w):
                    logits = torch.stack([q[:, r, c] @ k[:, rr, cc] * scale for (rr, cc) in keys])
                    a = torch.softmax(logits, 0)
                    attended.append(sum(a[t] * v[:, rr, cc] for t, (rr, cc) in enumerate(keys)))
        out.append(torch.stack(attended).mean(0))
    return GeM(3.0)(f) + torch.stack(out)


@pytest.mark.parametrize("mode", ["select_q", "route_kv"])
def test_dynamic_attention_matches_a_loop_reference(mode: str) -> None:
    torch.manual_seed(3)
    dam = DynamicAttention(C, qk_channels=8, k=2, mode=mode)
    f = _map(2, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(dam(f), _reference_dam(dam, f), rtol=1e-4, atol=1e-5)
        f_bar, index = dam.attend(f)
    if mode == "select_q":
        assert f_bar.shape == (2, 2 * W, C) and index.shape == (2, 2)
    else:
        assert f_bar.shape == (2, H, W, C) and index.shape == (2, H, 2)


@pytest.mark.parametrize("mode", ["select_q", "route_kv"])
def test_dynamic_attention_shapes_and_gradients(mode: str) -> None:
    torch.manual_seed(0)
    _check_pooler(DynamicAttention(C, qk_channels=8, k=3, mode=mode))
    _check_pooler(DynamicAttention(C, qk_channels=8, k=1, num_regions=2, mode=mode))  # bands of 3 rows


def test_dynamic_attention_k_above_the_region_count_keeps_all(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    dam = DynamicAttention(C, qk_channels=4, k=10)
    with caplog.at_level("WARNING"):
        f_bar, index = dam.attend(_map(1))
    assert index.tolist() == [list(range(H))] and f_bar.shape == (1, H * W, C)
    assert "k=10 exceeds the 6 regions" in caplog.text


def test_dynamic_attention_selects_the_regions_of_highest_affinity() -> None:
    """Q = K = the first channel of f: region affinity = product of row means, so bright rows win."""
    dam = DynamicAttention(C, qk_channels=1, k=2)
    with torch.no_grad():
        for conv in (dam.query, dam.key):
            conv.weight.zero_()
            conv.weight[0, 0] = 1.0
            conv.bias.zero_()
    f = torch.full((1, C, H, W), 0.1)
    f[0, 0, 1] = 3.0  # rows 1 and 4 have the largest means in channel 0
    f[0, 0, 4] = 2.0
    _, index = dam.attend(f)
    assert index.tolist() == [[1, 4]]


# ----------------------------------------------------------------------------- Table-1 alternatives


def test_bam_and_cbam_shapes_gradients_and_neutral_gates() -> None:
    torch.manual_seed(0)
    for refine in (BAM(C, reduction=4, dilation=1), CBAM(C, reduction=4, kernel_size=3)):
        x = _map(3).requires_grad_(True)
        y = refine.train()(x)
        assert y.shape == x.shape
        y.sum().backward()
        assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in refine.parameters())
    bam, cbam = BAM(C, reduction=4), CBAM(C, reduction=4)
    with torch.no_grad():  # zero the last layer of every branch: sigmoid(0) = 0.5 everywhere
        for layer in (bam.channel_gate[-1], bam.spatial_gate[-1], cbam.mlp[-1], cbam.spatial):
            layer.weight.zero_()
            layer.bias.zero_()
    x = _map(2)
    torch.testing.assert_close(bam.eval()(x), 1.5 * x)  # F * (1 + sigmoid(0 + 0))
    torch.testing.assert_close(cbam.eval()(x), 0.25 * x)  # 0.5 (spatial) * 0.5 (channel) * F


def test_iwpa_with_one_part_is_gem_plus_fc3_of_the_mean() -> None:
    torch.manual_seed(0)
    iwpa = IWPAttention(C, parts=1)
    f = _map(2)
    with torch.no_grad():  # one part: the attention is 1 and the gate weight 1
        expected = GeM(3.0)(f) + iwpa.fc3(f.mean(dim=(2, 3)))
        torch.testing.assert_close(iwpa(f), expected)


@pytest.mark.parametrize("name", ATTENTIONS)
def test_every_pooler_shapes_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    pool = build_attention_pool(name, C, dam_k=2, dam_qk_channels=8, reduction=4, iwpa_parts=3)
    if name == "none":
        f = _map(3).requires_grad_(True)
        assert pool(f).shape == (3, C)
        return
    _check_pooler(pool.train())


def test_build_attention_pool_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown attention 'se'; valid: dam, bam, cbam, iwpam, none"):
        build_attention_pool("se", C)
    with pytest.raises(ValueError, match="mode must be one of"):
        DynamicAttention(C, mode="rows")
