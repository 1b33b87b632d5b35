"""TwoStreamResNet: stage layout, modality routing, stage outputs, non-local placement."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vireid.models.backbones import TwoStreamResNet
from vireid.models.layers import NonLocalBlock

H, W = 64, 32


def _perturb_infrared(net: TwoStreamResNet) -> None:
    """Make the infrared copies differ from the visible ones (they start equal)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.specific["infrared"].parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


def _manual_forward(net: TwoStreamResNet, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """Independent reference: run each modality's rows through its own stages, put them back, then shared."""
    rows: list[torch.Tensor | None] = [None] * images.shape[0]
    for m, key in enumerate(("visible", "infrared")):
        idx = [i for i in range(images.shape[0]) if int(modality[i]) == m]
        if not idx:
            continue
        x = images[idx]
        for stage in net.specific[key]:
            x = stage(x)
        for j, i in enumerate(idx):
            rows[i] = x[j]
    x = torch.stack(rows)  # type: ignore[arg-type]
    for stage in net.shared:
        x = stage(x)
    return x


@pytest.fixture(scope="module")
def resnet50_agw() -> TwoStreamResNet:
    return TwoStreamResNet("resnet50", non_local=(0, 2, 3, 0))


def test_resnet50_layout_and_agw_non_local_placement(resnet50_agw: TwoStreamResNet) -> None:
    net = resnet50_agw
    assert net.out_channels == 2048 and net.stage_channels == (64, 256, 512, 1024, 2048)
    assert len(net.specific["visible"]) == 1 and len(net.shared) == 4  # stem specific, layer1-4 shared
    kinds = [["NL" if isinstance(m, NonLocalBlock) else "B" for m in stage] for stage in net.shared]
    # public AGW code: non-local after the last 2 bottlenecks of layer2 and the last 3 of layer3
    assert kinds[0] == ["B"] * 3
    assert kinds[1] == ["B", "B", "B", "NL", "B", "NL"]
    assert kinds[2] == ["B", "B", "B", "B", "NL", "B", "NL", "B", "NL"]
    assert kinds[3] == ["B"] * 3
    assert [m.in_ch for m in net.shared[2] if isinstance(m, NonLocalBlock)] == [1024] * 3
    # last stride 1: layer4's first bottleneck does not downsample
    assert net.shared[3][0].conv2.stride == (1, 1) and net.shared[3][0].downsample[0].stride == (1, 1)


def test_modality_copies_are_distinct_parameters_initialised_equal() -> None:
    net = TwoStreamResNet("resnet18", num_specific_stages=2)
    vis = dict(net.specific["visible"].named_parameters())
    ir = dict(net.specific["infrared"].named_parameters())
    assert vis.keys() == ir.keys() and len(vis) > 0
    for name in vis:
        assert vis[name] is not ir[name] and vis[name].data_ptr() != ir[name].data_ptr()
        assert torch.equal(vis[name], ir[name]), name
    for (n1, b1), (n2, b2) in zip(net.specific["visible"].named_buffers(), net.specific["infrared"].named_buffers()):
        assert n1 == n2 and torch.equal(b1, b2) and b1.data_ptr() != b2.data_ptr()
    with torch.no_grad():
        next(iter(vis.values())).add_(1.0)
    assert not torch.equal(next(iter(vis.values())), next(iter(ir.values())))


@pytest.mark.parametrize("last_stride, expected", [(1, (3, 512, 4, 2)), (2, (3, 512, 2, 1))])
def test_output_shape_and_last_stride(last_stride: int, expected: tuple[int, ...]) -> None:
    net = TwoStreamResNet("resnet18", last_stride=last_stride)
    out = net(torch.randn(3, 3, H, W), torch.tensor([1, 0, 1]))
    assert out.shape == expected and net.out_channels == 512


@pytest.mark.parametrize("num_specific", [1, 2])
def test_eval_routing_sample_independent_of_other_samples(num_specific: int) -> None:
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18", num_specific_stages=num_specific, non_local=(0, 1, 1, 0)).eval()
    _perturb_infrared(net)
    images = torch.randn(4, 3, H, W)
    modality = torch.tensor([1, 0, 0, 1])
    with torch.no_grad():
        mixed = net(images, modality)
        alone = torch.cat([net(images[i:i + 1], modality[i:i + 1]) for i in range(4)])
        swapped = net(images, 1 - modality)
        reference = _manual_forward(net, images, modality)
    torch.testing.assert_close(mixed, alone, rtol=1e-3, atol=1e-4)  # batch-size dependent conv kernels
    torch.testing.assert_close(mixed, reference, rtol=1e-3, atol=1e-4)
    # the label picks the stream: a different label gives a different output
    assert (mixed - swapped).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_train_mode_matches_manual_split_and_scatter() -> None:
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18").train()
    _perturb_infrared(net)
    images = torch.randn(5, 3, H, W)
    modality = torch.tensor([0, 1, 1, 0, 1])
    out = net(images, modality)
    ref = _manual_forward(net, images, modality)  # per-modality batch statistics in the stem, as in AGW
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_single_modality_batch_uses_its_stream() -> None:
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18").eval()
    _perturb_infrared(net)
    images = torch.randn(2, 3, H, W)
    with torch.no_grad():
        for m in (0, 1):
            modality = torch.full((2,), m)
            torch.testing.assert_close(net(images, modality), _manual_forward(net, images, modality))


def test_forward_stages_returns_maps_in_batch_order() -> None:
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18", num_specific_stages=2).eval()
    _perturb_infrared(net)
    images = torch.randn(3, 3, H, W)
    modality = torch.tensor([1, 0, 1])
    with torch.no_grad():
        out, maps = net.forward_stages(images, modality, [0, 1, 2, 4])
        singles = [net.forward_stages(images[i:i + 1], modality[i:i + 1], [1])[1][1] for i in range(3)]
    assert sorted(maps) == [0, 1, 2, 4]
    assert maps[0].shape == (3, 64, 16, 8) and maps[1].shape == (3, 64, 16, 8) and maps[2].shape == (3, 128, 8, 4)
    torch.testing.assert_close(maps[4], out)
    torch.testing.assert_close(maps[1], torch.cat(singles), rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="stages must be in 0..4"):
        net.forward_stages(images, modality, [5])


@pytest.mark.parametrize("num_specific", [0, 5])
def test_fully_shared_and_fully_separate(num_specific: int) -> None:
    net = TwoStreamResNet("resnet18", num_specific_stages=num_specific)
    assert len(net.specific["visible"]) == num_specific and len(net.shared) == 5 - num_specific
    out = net(torch.randn(2, 3, H, W), torch.tensor([0, 1]))
    assert out.shape == (2, 512, 4, 2)


def test_gradients_reach_both_streams() -> None:
    net = TwoStreamResNet("resnet18")
    net(torch.randn(4, 3, H, W), torch.tensor([0, 1, 1, 0])).pow(2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_channels_last_mixed_batch() -> None:
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18", non_local=(0, 1, 1, 0)).eval()
    images = torch.randn(3, 3, H, W)
    modality = torch.tensor([1, 0, 1])
    with torch.no_grad():
        ref = net(images, modality)
        net = net.to(memory_format=torch.channels_last)
        out = net(images.contiguous(memory_format=torch.channels_last), modality)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="unknown arch 'resnet101'"):
        TwoStreamResNet("resnet101")
    with pytest.raises(ValueError, match=r"resnet18 has \(2, 2, 2, 2\) blocks, got \(0, 2, 3, 0\)"):
        TwoStreamResNet("resnet18", non_local=(0, 2, 3, 0))
    with pytest.raises(ValueError, match="num_specific_stages must be in 0..5"):
        TwoStreamResNet("resnet18", num_specific_stages=6)
    with pytest.raises(ValueError, match="last_stride must be 1 or 2"):
        TwoStreamResNet("resnet18", last_stride=3)
    net = TwoStreamResNet("resnet18")
    with pytest.raises(ValueError, match=r"modality labels must be in \[0, 1\], got \[2\]"):
        net(torch.randn(2, 3, H, W), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\) and modality \(B,\)"):
        net(torch.randn(2, 3, H, W), torch.tensor([0, 1, 1]))
    assert isinstance(net.shared, nn.ModuleList)


def _split_by_nonzero(self: TwoStreamResNet, images: torch.Tensor, modality: torch.Tensor,
                      saved: dict[int, torch.Tensor], wanted: set[int]) -> torch.Tensor:
    """The split as it was before issue 17: one nonzero (and one count) per modality, gathered apart."""
    kept_ids = [i for i in range(self.num_specific_stages) if i in wanted]
    parts, part_kept, order = [], [], []
    for m, key in enumerate(("visible", "infrared")):
        idx = (modality == m).nonzero().squeeze(1)
        if idx.numel():
            x, kept = self._run_specific(images[idx], key, wanted)
            parts.append(x)
            part_kept.append(kept)
            order.append(idx)
    inverse = torch.empty_like(modality)
    inverse[torch.cat(order)] = torch.arange(modality.numel())
    for j, stage_id in enumerate(kept_ids):
        saved[stage_id] = torch.cat([k[j] for k in part_kept])[inverse]
    return torch.cat(parts)[inverse]


@pytest.mark.parametrize("channels_last,bf16", [(False, False), (True, True)])
def test_grouped_split_is_bit_identical_to_per_modality_nonzero(channels_last: bool, bf16: bool) -> None:
    """One argsort + split (one host sync) gives exactly the outputs, gradients and BN statistics of
    the per-modality nonzero split it replaced, in float32 and in bf16 + channels_last."""
    import copy
    import types

    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18", num_specific_stages=2, non_local=(0, 1, 0, 0)).train()
    _perturb_infrared(net)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    ref = copy.deepcopy(net)
    ref._forward_specific = types.MethodType(_split_by_nonzero, ref)
    images = torch.randn(6, 3, H, W).contiguous(memory_format=fmt)
    modality = torch.tensor([1, 0, 0, 1, 1, 0])
    results = []
    for model in (net, ref):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out, maps = model.forward_stages(images, modality, [0, 1])
        (out.float().square().mean() + maps[1].float().mean()).backward()
        results.append((out, maps, {k: v.grad for k, v in model.named_parameters()}, model.state_dict()))
    (out, maps, grads, state), (r_out, r_maps, r_grads, r_state) = results
    assert torch.equal(out, r_out) and all(torch.equal(maps[k], r_maps[k]) for k in (0, 1))
    assert out.stride() == r_out.stride() and maps[0].stride() == r_maps[0].stride()  # same memory layout
    for name in grads:
        assert torch.equal(grads[name], r_grads[name]), name
    for name in state:  # BatchNorm running statistics of both streams
        assert torch.equal(state[name], r_state[name]), name
