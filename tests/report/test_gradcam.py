"""Grad-CAM and channel activations on toy models whose decisive region is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vireid.models import create_model, list_models
from vireid.report.gradcam import channel_activations, default_target_layer, grad_cam, similarity_score
from vireid.types import ModelOutput


class _Backbone(nn.Module):
    """A 1x1 conv (identity on channel 0, zero elsewhere): the map keeps each pixel where it was."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        return self.conv(images)  # (B, 4, H, W)


class _TopLeftModel(nn.Module):
    """Embedding = global mean of the map; a score matching channel 0 is decided where channel 0 fires."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _Backbone()

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        fmap = self.backbone(images, modality)  # (B, 4, H, W)
        emb = fmap.mean(dim=(2, 3))  # (B, 4)
        return ModelOutput(features=emb, bn_features=emb, logits=None)


def test_grad_cam_lands_on_the_decisive_region() -> None:
    """Image channel 0 (the evidence the score rewards) lies in the top-left quarter, channel 1 (a
    distractor the score penalises) in the bottom half: the map must light the top-left only."""
    model = _TopLeftModel()
    images = torch.zeros(3, 3, 16, 8)
    images[:, 0, :8, :4] = torch.rand(3, 8, 4) + 0.5  # decisive region: top-left quarter
    images[:, 1, 8:, :] = torch.rand(3, 8, 8) + 0.5  # distractor: bottom half
    reference = torch.tensor([1.0, 0.0, 0.0, 0.0])
    cam = grad_cam(model, images, torch.zeros(3, dtype=torch.long), similarity_score(reference))
    assert cam.shape == (3, 16, 8)
    assert float(cam.max()) == pytest.approx(1.0)
    inside = cam[:, 1:7, 0:3].mean()  # inside the top-left quarter (away from its upsampled edge)
    outside = torch.cat([cam[:, 10:, :].flatten(), cam[:, :7, 5:].flatten()]).max()  # bottom half, top-right
    assert float(outside) < 1e-6 and float(inside) > 0.5
    assert model.training  # the caller's mode is restored


@pytest.mark.parametrize("name", list_models())
def test_grad_cam_on_every_registered_model(name: str, tiny_model_kwargs: dict) -> None:
    torch.manual_seed(1)
    model = create_model(name, num_classes=3, **tiny_model_kwargs.get(name, {"arch": "resnet18"})).eval()
    images = torch.randn(2, 3, 64, 32)
    modality = torch.tensor([1, 0])
    with torch.no_grad():
        ref = model(images, modality).bn_features.flip(0)  # the other image's embedding
    cam = grad_cam(model, images, modality, similarity_score(ref))
    assert cam.shape == (2, 64, 32) and float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6
    assert torch.isfinite(cam).all()
    if hasattr(model.backbone, "cam_target"):  # token backbones (ViT): a layer inside, read as a patch map
        assert default_target_layer(model) is model.backbone.cam_target()
    else:
        assert default_target_layer(model) is model.backbone
    maps, idx = channel_activations(model, images, modality, top=4)
    assert maps.shape == (2, 4, 64, 32) and idx.shape == (2, 4)


def test_channel_activations_pick_the_strongest_channels() -> None:
    model = _TopLeftModel()
    images = torch.zeros(1, 3, 8, 4)
    images[0, 1] = 2.0  # channel 1 of the map: 2 everywhere
    images[0, 0, :4] = 1.0  # channel 0: 1 in the top half
    maps, idx = channel_activations(model, images, torch.zeros(1, dtype=torch.long), top=2)
    assert idx.tolist() == [[1, 0]]
    assert maps.shape == (1, 2, 8, 4)
    assert float(maps[0, 1, :3].mean()) == pytest.approx(1.0) and float(maps[0, 1, 5:].mean()) == pytest.approx(0.0)


def test_target_layer_needs_a_map() -> None:
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, images, modality):
            return ModelOutput(features=self.lin(images.mean((2, 3))), bn_features=None, logits=None)

    with pytest.raises(ValueError, match="no backbone attribute and no Conv2d"):
        default_target_layer(Flat())
