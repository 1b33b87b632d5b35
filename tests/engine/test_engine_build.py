import pytest
import torch

from vireid.config import OptimConfig
from vireid.types import Modality, Sample
from vireid.engine import build
from vireid.errors import ConfigError


def test_agw_lr_schedule():
    cfg = OptimConfig(lr=0.1, warmup_epochs=10, milestones=[20, 50], gamma=0.1)
    factors = [build.lr_factor(e, cfg) for e in (0, 4, 9, 10, 19, 20, 49, 50, 59)]
    assert factors == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_optimizer_groups_backbone_lr():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Linear(2, 2)
            self.head = torch.nn.Linear(2, 2)

    opt = build.build_optimizer(M(), OptimConfig(lr=0.1, backbone_lr_mult=0.1, warmup_epochs=10))
    assert {g["name"]: g["lr"] for g in opt.param_groups} == pytest.approx({"backbone": 0.01, "head": 0.1})
    build.set_epoch_lr(opt, 0, OptimConfig(lr=0.1, warmup_epochs=10))
    assert {g["name"]: g["lr"] for g in opt.param_groups} == pytest.approx({"backbone": 0.001, "head": 0.01})
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]


def _samples(n_ids, ir_missing=()):
    out = []
    for pid in range(n_ids):
        out.append(Sample(f"v/{pid}", pid, 1, Modality.VISIBLE))
        if pid not in ir_missing:
            out.append(Sample(f"i/{pid}", pid, 3, Modality.INFRARED))
    return out


def test_split_train_val_is_seeded_disjoint_and_needs_both_modalities():
    samples = _samples(20, ir_missing={0, 1, 2})
    train, val = build.split_train_val(samples, 0.2, seed=3)
    val_ids = {s.pid for s in val}
    assert len(val_ids) == 4 and not val_ids & {s.pid for s in train} and not val_ids & {0, 1, 2}
    assert build.split_train_val(samples, 0.2, seed=3) == (train, val)
    assert build.split_train_val(samples, 0.0, seed=3) == (samples, [])
    with pytest.raises(ConfigError, match="fewer than 2 training identities"):
        build.split_train_val(_samples(3), 0.5, seed=0)


def test_finite_or_raise():
    with pytest.raises(FloatingPointError, match="loss wrt is nan"):
        build.finite_or_raise(torch.tensor(float("nan")), "loss wrt")


def test_train_transforms_from_config_carry_the_infrared_option():
    from vireid.config import DataConfig

    pipes = build.build_train_transforms(DataConfig(height=16, width=8, augment=[{"name": "infrared_adap_gray"}]))
    names = {m: [type(t).__name__ for t in pipes[m].transforms] for m in Modality}
    assert "ChannelAdapGray" in names[Modality.INFRARED] and "ChannelAdapGray" not in names[Modality.VISIBLE]


def _trained_copy(name: str, implementation: str) -> list[torch.Tensor]:
    """Five optimiser steps on a fixed two-group model with fixed gradients."""
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.backbone = torch.nn.Linear(6, 5)
    model.head = torch.nn.Linear(5, 3)
    opt = build.build_optimizer(model, OptimConfig(name=name, lr=0.1, implementation=implementation))
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_optimizer_implementation_flags_and_equal_weights(name):
    """optim.implementation picks torch's kernel (auto: torch's own choice, for-loop on CPU); foreach
    gives the for-loop's weights bit for bit, fused agrees to rounding (issue 17)."""
    assert OptimConfig().implementation == "auto"
    for impl, flags in [("auto", (None, False)), ("for-loop", (False, False)), ("foreach", (True, False)),
                        ("fused", (None, True))]:
        opt = build.build_optimizer(torch.nn.Linear(2, 2), OptimConfig(name=name, implementation=impl))
        assert (opt.defaults["foreach"], bool(opt.defaults["fused"])) == (flags[0], flags[1]), impl
    loop = _trained_copy(name, "for-loop")
    for impl in ("auto", "foreach"):
        assert all(torch.equal(a, b) for a, b in zip(loop, _trained_copy(name, impl))), impl
    for a, b in zip(loop, _trained_copy(name, "fused")):  # vectorised arithmetic: rounding differs
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
