"""CMTR's model: modality embeddings on every token, the removal f - phi_m(e^m), the test-time option."""

from __future__ import annotations

import torch

from vireid.losses import build_loss
from vireid.methods.cmtr import CMTR
from vireid.types import Batch

TINY = {"arch": "vit_cpu", "img_size": (64, 32), "patch_size": 8, "stride": 6, "depth": 2}


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 1, 0])


def test_removed_features_subtract_phi_of_the_modality_embedding() -> None:
    torch.manual_seed(0)
    model = CMTR(5, **TINY).eval()
    images, modality = _inputs()
    with torch.no_grad():
        out = model(images, modality)
        e = model.backbone.modality_embed  # (2, D)
        shifts = torch.stack([model.phi[0](e[0]), model.phi[1](e[1])])  # phi_vis(e^vis), phi_ir(e^ir)
        torch.testing.assert_close(out.extras["modality_shift"], shifts[modality])
        torch.testing.assert_close(out.extras["removed_features"], out.bn_features - shifts[modality])
        torch.testing.assert_close(out.extras["removed_logits"], model.head.classifier(out.extras["removed_features"]))
        torch.testing.assert_close(out.logits, model.head.classifier(out.bn_features))  # the same FC_id


def test_subtraction_at_test_changes_the_eval_embedding_only() -> None:
    torch.manual_seed(0)
    plain = CMTR(5, **TINY)
    torch.manual_seed(0)
    sub = CMTR(5, subtract_at_test=True, **TINY)
    images, modality = _inputs()
    with torch.no_grad():
        e_plain, e_sub = plain.eval()(images, modality), sub.eval()(images, modality)
        torch.testing.assert_close(e_sub.bn_features, e_plain.extras["removed_features"])
        torch.testing.assert_close(e_sub.features, e_plain.features)
        torch.manual_seed(2)
        t_plain = plain.train()(images, modality).bn_features
        torch.manual_seed(2)
        t_sub = sub.train()(images, modality).bn_features
    torch.testing.assert_close(t_sub, t_plain)  # training unaffected


def test_mae_losses_reach_the_modality_embeddings_and_phi() -> None:
    torch.manual_seed(0)
    model = CMTR(5, **TINY).train()
    images, modality = _inputs()
    batch = Batch(images=images, pids=torch.tensor([0, 0, 1, 1]), camids=torch.zeros(4, dtype=torch.long),
                  modality=modality, index=torch.arange(4))
    out = model(images, modality)
    loss = build_loss("cmtr_mac")(out, batch) + build_loss("cmtr_maid")(out, batch)
    loss.backward()
    assert bool(torch.isfinite(loss))
    for p in (model.backbone.modality_embed, model.phi[0].weight, model.phi[1].weight, model.head.classifier.weight):
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()) and float(p.grad.abs().sum()) > 0


def test_without_modality_embeddings_phi_is_a_learned_bias() -> None:
    torch.manual_seed(0)
    model = CMTR(5, modality_embed=False, **TINY).eval()
    with torch.no_grad():
        torch.testing.assert_close(model.modality_shifts(), torch.stack([model.phi[0].bias, model.phi[1].bias]))
