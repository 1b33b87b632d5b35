"""The one place that chooses device, autocast and threads."""

import pytest
import torch

from vireid.config import RuntimeConfig
from vireid.engine.runtime import resolve_device, runtime_from_config, setup_runtime
from vireid.errors import ConfigError


def test_runtime_choices():
    assert resolve_device("cpu").type == "cpu"
    rt = setup_runtime("cpu", "bf16", seed=1)
    assert rt.autocast_dtype is torch.bfloat16 and rt.is_main and not rt.distributed
    with rt.autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype is torch.bfloat16
    assert not rt.make_grad_scaler().is_enabled()
    with pytest.raises(ConfigError, match="fp16 autocast needs CUDA"):
        setup_runtime("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_runtime_from_config_applies_the_section_and_overrides_determinism():
    before = torch.get_num_threads()
    cfg = RuntimeConfig(device="cpu", precision="bf16", seed=3, deterministic=True, num_threads=1)
    with runtime_from_config(cfg, deterministic=False) as rt:
        assert rt.device.type == "cpu" and rt.autocast_dtype is torch.bfloat16 and not rt.distributed
        assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()
        first = torch.rand(3)
    with runtime_from_config(cfg) as rt:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.equal(torch.rand(3), first)  # seeded from runtime.seed both times
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(before)
