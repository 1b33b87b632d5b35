"""MAUM's losses against hand-worked numbers and an explicit double-sum implementation (seeds/001 §5)."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from vireid.methods.maum.losses import MAUMIdentity, MAUMUnidirectional, maum_identity, unidirectional_metric
from vireid.types import Batch, ModelOutput


def _batch(pids: list[int], modality: list[int]) -> Batch:
    n = len(pids)
    return Batch(torch.zeros(n, 3, 4, 2), torch.tensor(pids), torch.zeros(n, dtype=torch.long),
                 torch.tensor(modality), torch.arange(n))


def _explicit_metric(x: torch.Tensor, label: int, memory: torch.Tensor, alpha: float, delta: float) -> float:
    """log[1 + sum_j sum_i exp(alpha (v_j.x - u_i.x + delta))], the seed's formula with explicit lists."""
    x = x.double() / x.double().norm()
    pos = [m[label].double() / m[label].double().norm() for m in memory]  # u_1..N
    neg = [m[k].double() / m[k].double().norm() for m in memory for k in range(m.shape[0]) if k != label]  # v_1..M
    total = sum(math.exp(alpha * (float(v @ x) - float(u @ x) + delta)) for v in neg for u in pos)
    return math.log(1.0 + total)


def test_metric_hand_worked() -> None:
    # x = (1, 0); memory of one snapshot: class 0 -> (2, 0) (normalised (1, 0)), class 1 -> (0, 3) ((0, 1)).
    # u . x = 1, v . x = 0: L = log(1 + exp(alpha (0 - 1 + delta))) = log(1 + exp(-0.5)) at alpha 1, delta 0.5.
    memory = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])  # (S=1, C=2, D=2)
    got = unidirectional_metric(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), memory, alpha=1.0, delta=0.5)
    assert got.item() == pytest.approx(math.log(1.0 + math.exp(-0.5)), abs=1e-6)  # 0.474077
    # two snapshots, the second with class 0 at (1, 1)/sqrt2: u = {1, 1/sqrt2}, v = {0, 0}:
    # L = log(1 + 2 * (exp(a(d - 1)) + exp(a(d - 1/sqrt2)))) at a = 2, d = 0.1
    memory2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, -1.0]]])
    got2 = unidirectional_metric(torch.tensor([[3.0, 0.0]]), torch.tensor([0]), memory2, alpha=2.0, delta=0.1)
    want2 = math.log(1 + 2 * (math.exp(2 * (0.1 - 1)) + math.exp(2 * (0.1 - 1 / math.sqrt(2)))))
    assert got2.item() == pytest.approx(want2, abs=1e-6)


def test_metric_equals_the_explicit_double_sum_at_alpha_16() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 8, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 1])
    memory = torch.randn(3, 4, 8, generator=g)
    got = unidirectional_metric(x, labels, memory, alpha=16.0, delta=0.1)
    want = [_explicit_metric(x[i], int(labels[i]), memory, 16.0, 0.1) for i in range(5)]
    torch.testing.assert_close(got.double(), torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-5)


def test_identity_hand_worked() -> None:
    # rows: visible pid 0, infrared pid 1; common logits 0 -> log 2 each (mean log 2);
    # RGB-only on the visible row (log 3, 0) -> -log(3/4); IR-only on the infrared row (0, 0) -> log 2.
    logits = torch.zeros(2, 2)
    logits_rgb = torch.tensor([[math.log(3.0), 0.0], [50.0, -50.0]])  # row 2 (infrared) must be ignored
    logits_ir = torch.tensor([[50.0, -50.0], [0.0, 0.0]])  # row 1 (visible) must be ignored
    got = maum_identity(logits, logits_rgb, logits_ir, torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert got.item() == pytest.approx(math.log(2) + math.log(4 / 3) + math.log(2), abs=1e-6)
    half = maum_identity(logits, logits_rgb, logits_ir, torch.tensor([0, 1]), torch.tensor([0, 1]), specific_weight=0.5)
    assert half.item() == pytest.approx(math.log(2) + 0.5 * (math.log(4 / 3) + math.log(2)), abs=1e-6)
    out = ModelOutput(torch.zeros(2, 2), torch.zeros(2, 2), logits, {"logits_rgb": logits_rgb, "logits_ir": logits_ir})
    assert MAUMIdentity()(out, _batch([0, 1], [0, 1])).item() == pytest.approx(got.item())
    with pytest.raises(ValueError, match="extras\\['logits_rgb'\\]"):
        MAUMIdentity()(ModelOutput(torch.zeros(2, 2), torch.zeros(2, 2), logits), _batch([0, 1], [0, 1]))


def _output(x: torch.Tensor, w_rgb: torch.Tensor, w_ir: torch.Tensor) -> ModelOutput:
    return ModelOutput(features=x, bn_features=x, logits=None, extras={"proxies_rgb": w_rgb, "proxies_ir": w_ir})


def test_warm_up_then_push_every_call_and_compare_with_the_other_memory() -> None:
    g = torch.Generator().manual_seed(1)
    loss = MAUMUnidirectional(alpha=4.0, delta=0.2, memory_rgb=2, memory_ir=3, warmup_steps=2)
    batch = _batch([0, 1, 0, 2], [0, 0, 1, 1])
    pushed_rgb, pushed_ir = [], []
    for call in range(6):
        x = torch.randn(4, 6, generator=g, requires_grad=True)
        w_rgb = torch.randn(3, 6, generator=g, requires_grad=True)
        w_ir = torch.randn(3, 6, generator=g, requires_grad=True)
        value = loss(_output(x, w_rgb, w_ir), batch)
        value.backward()
        if call < 2:  # warm-up: zero, nothing pushed, but a graph (backward works)
            assert value.item() == 0.0 and len(loss.memory_rgb) == 0 and len(loss.memory_ir) == 0
            continue
        pushed_rgb = (pushed_rgb + [w_rgb.detach().clone()])[-2:]
        pushed_ir = (pushed_ir + [w_ir.detach().clone()])[-3:]
        mem_rgb, mem_ir = torch.stack(pushed_rgb), torch.stack(pushed_ir)
        assert torch.equal(loss.memory_rgb.snapshots(), mem_rgb) and torch.equal(loss.memory_ir.snapshots(), mem_ir)
        r2i = sum(_explicit_metric(x[i].detach(), int(batch.pids[i]), mem_ir, 4.0, 0.2) for i in (0, 1)) / 2
        i2r = sum(_explicit_metric(x[i].detach(), int(batch.pids[i]), mem_rgb, 4.0, 0.2) for i in (2, 3)) / 2
        assert value.item() == pytest.approx(r2i + i2r, rel=1e-5)
        assert x.grad is not None and x.grad.abs().sum() > 0  # only x gets gradients
        assert w_rgb.grad is None and w_ir.grad is None


def test_resumed_loss_continues_bit_identically() -> None:
    """The memories and the call counter are persistent buffers: a saved and reloaded loss gives the
    same values as the original on the next calls (what a checkpoint of the loss's state_dict restores)."""
    g = torch.Generator().manual_seed(2)
    inputs = [(torch.randn(4, 6, generator=g), torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g))
              for _ in range(8)]
    batch = _batch([0, 1, 0, 2], [0, 0, 1, 1])
    original = MAUMUnidirectional(memory_rgb=3, memory_ir=2, warmup_steps=2)
    for x, w_rgb, w_ir in inputs[:5]:
        original(_output(x, w_rgb, w_ir), batch)
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    buf.seek(0)
    resumed = MAUMUnidirectional(memory_rgb=3, memory_ir=2, warmup_steps=2)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert set(original.state_dict()) == {"num_calls", "memory_rgb.bank", "memory_rgb.num_pushed",
                                          "memory_ir.bank", "memory_ir.num_pushed"}
    for x, w_rgb, w_ir in inputs[5:]:
        a = original(_output(x, w_rgb, w_ir), batch)
        b = resumed(_output(x, w_rgb, w_ir), batch)
        assert torch.equal(a, b)
    for key, value in original.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_bad_parameters_and_inputs() -> None:
    with pytest.raises(ValueError, match="alpha must be > 0"):
        MAUMUnidirectional(alpha=0.0)
    with pytest.raises(ValueError, match="feature must be"):
        MAUMUnidirectional(feature="logits")
    with pytest.raises(ValueError, match="at least 2 identities"):
        unidirectional_metric(torch.ones(1, 2), torch.tensor([0]), torch.ones(1, 1, 2))
    with pytest.raises(ValueError, match="extras\\['proxies_rgb'\\]"):
        MAUMUnidirectional()(ModelOutput(torch.ones(2, 2), torch.ones(2, 2)), _batch([0, 1], [0, 1]))


def test_metric_is_stable_for_far_apart_features() -> None:
    memory = F.normalize(torch.randn(2, 3, 4), dim=2) * 100.0
    x = torch.randn(6, 4, requires_grad=True)
    value = unidirectional_metric(x, torch.tensor([0, 1, 2, 0, 1, 2]), memory, alpha=64.0, delta=0.5)
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(x.grad).all()
