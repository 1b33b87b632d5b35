"""Label-smoothed identity loss (seeds/003 Eq. 18) against hand-worked numbers and a direct formula."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vireid.types import Batch
from vireid.losses import CrossEntropyLabelSmooth, cross_entropy_label_smooth
from vireid.types import ModelOutput


def _direct(logits: torch.Tensor, targets: torch.Tensor, eps: float) -> float:
    """sum_c -q_c log p_c with the seed's q_y = 1 - (N-1)/N * eps, q_c = eps/N, averaged over rows."""
    b, n = logits.shape
    total = 0.0
    for i in range(b):
        row = [float(v) for v in logits[i]]
        log_z = math.log(sum(math.exp(v) for v in row))
        for c in range(n):
            q = 1 - (n - 1) / n * eps if c == int(targets[i]) else eps / n
            total -= q * (row[c] - log_z)
    return total / b


def test_hand_worked_values() -> None:
    # row 0: logits (0, ln 2, 0) -> p = (1/4, 1/2, 1/4); target 1, eps 0.1, N 3:
    #   q = (1/30, 28/30, 1/30); loss = 2 * (1/30) ln 4 + (28/30) ln 2 = (32/30) ln 2
    # row 1: logits (0, 0, 0) -> p uniform; any q summing to 1 gives ln 3
    logits = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([1, 2])
    expected = ((32 / 30) * math.log(2) + math.log(3)) / 2
    assert cross_entropy_label_smooth(logits, targets, 0.1).item() == pytest.approx(expected, rel=1e-6)


def test_seed_form_equals_smoothing_form() -> None:
    # the seed's 1 - (N-1)/N * xi equals 1 - xi + xi/N
    for n, xi in ((3, 0.1), (395, 0.1), (10, 0.3)):
        assert 1 - (n - 1) / n * xi == pytest.approx(1 - xi + xi / n)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_against_direct_formula_and_torch(eps: float) -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 7) * 3
    targets = torch.tensor([0, 6, 3, 3, 1, 5])
    got = cross_entropy_label_smooth(logits, targets, eps)
    assert got.item() == pytest.approx(_direct(logits, targets, eps), rel=1e-5)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets, label_smoothing=eps))


def test_gradient_is_softmax_minus_target_over_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 5, requires_grad=True)
    targets = torch.tensor([4, 0, 2, 2])
    cross_entropy_label_smooth(logits, targets, 0.1).backward()
    q = torch.full((4, 5), 0.1 / 5)
    q[torch.arange(4), targets] = 1 - 0.1 + 0.1 / 5
    torch.testing.assert_close(logits.grad, (logits.detach().softmax(1) - q) / 4)


def test_bf16_logits_computed_in_float32() -> None:
    torch.manual_seed(0)
    logits = (torch.randn(4, 9) * 5).bfloat16()
    targets = torch.tensor([1, 2, 3, 4])
    got = cross_entropy_label_smooth(logits, targets)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_direct(logits.float(), targets, 0.1), rel=1e-5)


def test_module_reads_logits_and_pids() -> None:
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]])
    batch = Batch(torch.zeros(1, 3, 4, 4), torch.tensor([1]), torch.tensor([0]), torch.tensor([1]), torch.tensor([0]))
    out = ModelOutput(features=torch.zeros(1, 2), bn_features=torch.zeros(1, 2), logits=logits)
    assert CrossEntropyLabelSmooth(0.1)(out, batch).item() == pytest.approx((32 / 30) * math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="no logits"):
        CrossEntropyLabelSmooth()(ModelOutput(torch.zeros(1, 2), torch.zeros(1, 2)), batch)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\); got \[3, -1\]"):
        cross_entropy_label_smooth(torch.zeros(3, 3), torch.tensor([0, 3, -1]))
    with pytest.raises(ValueError, match=r"expected logits \(B, N\) and targets \(B,\)"):
        cross_entropy_label_smooth(torch.zeros(3, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\)"):
        CrossEntropyLabelSmooth(1.0)
