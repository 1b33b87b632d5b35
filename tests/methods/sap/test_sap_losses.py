"""SAP's distillation losses (corrected sign) and SSD against hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.losses import build_loss
from vireid.methods.sap.losses import patch_distillation, proxy_distillation, ssd_drop_mask
from vireid.methods.sap.targets import patch_affinity_target, patch_part_targets
from vireid.types import Batch, ModelOutput


def _softmax(xs: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in xs)
    return [math.exp(x) / z for x in xs]


def test_patch_distillation_by_hand() -> None:
    attention = torch.tensor([[[0.5, 0.5], [0.25, 0.75]]])  # [cls] + 1 patch
    a_patch = torch.tensor([[[1.0, 1.0], [1.0, 0.5]]])
    t1 = _softmax([1.0, 0.5])
    expected = (math.log(2) + -(t1[0] * math.log(0.25) + t1[1] * math.log(0.75))) / 2
    assert float(patch_distillation(attention, a_patch)) == pytest.approx(expected, rel=1e-6)


def test_patch_distillation_sign_is_a_cross_entropy() -> None:
    """The corrected sign: the loss is smallest when the student's attention equals softmax(A_patch)."""
    torch.manual_seed(0)
    a = torch.rand(1, 4, 4)
    target = torch.softmax(a, dim=-1)
    other = torch.softmax(torch.randn(1, 4, 4), dim=-1)
    assert float(patch_distillation(target, a)) < float(patch_distillation(other, a))
    assert float(patch_distillation(other, a)) > 0
    student = torch.randn(1, 4, 4, requires_grad=True)
    patch_distillation(torch.softmax(student, -1), a).backward()  # gradient descent moves toward the target
    with torch.no_grad():
        stepped = torch.softmax(student - 0.5 * student.grad, -1)
    assert float(patch_distillation(stepped, a)) < float(patch_distillation(torch.softmax(student.detach(), -1), a))


def test_patch_distillation_drops_the_rows_and_columns_of_dropped_patches() -> None:
    attention = torch.tensor([[[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]]])
    a = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 0.4, 0.1], [0.0, 0.1, 0.9]]])
    got = patch_distillation(attention, a, dropped=torch.tensor([[False, True]]))  # patch 2 dropped
    # kept rows 0 and 1, over columns 0 and 1; the student renormalised over them
    row0 = -sum(t * math.log(s) for t, s in zip(_softmax([1.0, 1.0]), [0.2 / 0.5, 0.3 / 0.5]))
    row1 = -sum(t * math.log(s) for t, s in zip(_softmax([1.0, 0.4]), [0.6 / 0.8, 0.2 / 0.8]))
    assert float(got) == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_proxy_distillation_by_hand() -> None:
    m_hat = torch.tensor([[[0.9, 0.1], [0.2, 0.8]]])  # 2 patches, background + 1 part
    student = torch.tensor([[[0.3, 0.7]]])  # the part proxy's attention over the 2 patches
    t = _softmax([0.1, 0.8])  # softmax over the patches of the part's column
    expected = -(t[0] * math.log(0.3) + t[1] * math.log(0.7))
    assert float(proxy_distillation(student, m_hat)) == pytest.approx(expected, rel=1e-6)
    dropped = proxy_distillation(student, m_hat, dropped=torch.tensor([[True, False]]))
    assert float(dropped) == pytest.approx(0.0, abs=1e-6)  # one patch left: target and student both 1
    with pytest.raises(ValueError, match="2 proxies need a teacher with 2 parts"):
        proxy_distillation(torch.full((1, 2, 2), 0.5), m_hat)


def test_ssd_drops_the_most_redundant_patches() -> None:
    tokens = torch.zeros(3, 4, 8)
    tokens[:, 0, 0] = tokens[:, 1, 0] = 10.0  # patches 0 and 1 alike: row sums 200, the others 0
    tokens[:, 2, 1] = tokens[:, 3, 2] = 0.1
    mask = ssd_drop_mask(tokens, drop=0.5)
    assert mask.tolist() == [[True, True, False, False]] * 3
    assert not bool(ssd_drop_mask(tokens, drop=0.0).any())
    # equal scores: the draw is uniform (4000 draws of 1 of 4 patches)
    g = torch.Generator().manual_seed(0)
    counts = ssd_drop_mask(torch.zeros(4000, 4, 2), drop=0.25, generator=g).sum(0).float() / 4000
    assert counts.sum() == pytest.approx(1.0) and bool(((counts - 0.25).abs() < 0.03).all())


def _output(n_parts: int = 2) -> ModelOutput:
    torch.manual_seed(3)
    return ModelOutput(features=torch.zeros(1, 4), bn_features=torch.zeros(1, 4), extras={
        "attention": torch.softmax(torch.randn(1, 5, 5), -1),  # [cls] + 2x2 patches
        "proxy_attention": torch.softmax(torch.randn(1, n_parts, 4), -1),
        "patch_tokens": torch.randn(1, 4, 3), "patch_geometry": torch.tensor([2, 2, 2, 2])})


def _batch(parsing: torch.Tensor | None) -> Batch:
    return Batch(images=torch.zeros(1, 3, 4, 4), pids=torch.zeros(1, dtype=torch.long),
                 camids=torch.zeros(1, dtype=torch.long), modality=torch.zeros(1, dtype=torch.long),
                 index=torch.arange(1), aux={} if parsing is None else {"parsing": parsing})


def test_sap_distill_combines_both_terms_from_the_teachers_targets() -> None:
    out = _output(7)
    atr = torch.tensor([[[0, 0, 4, 4], [0, 0, 4, 4], [6, 6, 6, 0], [6, 6, 0, 0]]])  # bg / upper (2) / pants (3)
    loss = build_loss("sap_distill", teacher="parsing", lam=10.0, drop=0.0, patch_weight=0.5, proxy_weight=2.0)
    coarse = torch.tensor([[[0, 0, 2, 2], [0, 0, 2, 2], [3, 3, 3, 0], [3, 3, 0, 0]]])
    m_hat, m_f = patch_part_targets(coarse, 8, 2, 2, lam=10.0)
    expected = 0.5 * patch_distillation(out.extras["attention"], patch_affinity_target(m_hat, m_f)) \
        + 2.0 * proxy_distillation(out.extras["proxy_attention"], m_hat)
    torch.testing.assert_close(loss(out, _batch(atr)), expected)
    bands = build_loss("sap_distill", teacher="bands", drop=0.0)(_output(2), _batch(None))
    m_hat, m_f = patch_part_targets(torch.tensor([[[1] * 4] * 2 + [[2] * 4] * 2]), 3, 2, 2)
    out2 = _output(2)
    torch.testing.assert_close(bands, patch_distillation(out2.extras["attention"], patch_affinity_target(m_hat, m_f))
                               + proxy_distillation(out2.extras["proxy_attention"], m_hat))


def test_sap_distill_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"needs batch.aux\['parsing'\]: set data.aux.parsing to the folder"):
        build_loss("sap_distill")(_output(7), _batch(None))
    with pytest.raises(ValueError, match="has no extras"):
        build_loss("sap_distill")(ModelOutput(features=torch.zeros(1, 2), bn_features=torch.zeros(1, 2)), _batch(None))
