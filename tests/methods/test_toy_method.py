"""Adding a method = one package + one recipe, nothing in vireid edited.

This module plays the part of a package outside vireid: it defines a toy method (a model, a loss,
an image augmentation), registers it with one ``register_method`` call, and trains it with an
ordinary recipe through the public trainer and the command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from vireid.cli import main
from vireid.data.augment import ImageAugment
from vireid.methods import METHODS, Method, describe_methods, register_method, unregister_method
from vireid.types import Batch, Modality, ModelOutput


class ToyModel(nn.Module):
    """Global average colour -> linear embedding -> classifier; honours the model contract."""

    def __init__(self, num_classes: int, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.modality_bias = nn.Embedding(2, dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> ModelOutput:
        feats = self.embed(images.mean(dim=(2, 3))) + self.modality_bias(modality)  # (B, dim)
        return ModelOutput(features=feats, bn_features=feats, logits=self.classifier(feats))


class ToyCentreLoss(nn.Module):
    """Mean squared distance of each feature to its identity's batch mean (times ``scale``)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        f, pids = output.features, batch.pids
        same = (pids[:, None] == pids[None, :]).float()  # (B, B)
        centres = same @ f / same.sum(1, keepdim=True)  # (B, D)
        return self.scale * ((f - centres) ** 2).sum(1).mean()


def invert_infrared(p: float = 1.0) -> ImageAugment:
    return ImageAugment(lambda x: 1.0 - x if torch.rand(()) < p else x, "image", frozenset({Modality.INFRARED}))


def toy_stream(qf, gf, *, scale: float = 1.0):
    """A test-time re-ranker: plain Euclidean distances times ``scale``, one block."""
    d = torch.cdist(torch.as_tensor(qf, dtype=torch.float32), torch.as_tensor(gf, dtype=torch.float32))
    yield slice(0, d.shape[0]), scale * d


@pytest.fixture
def toy() -> Iterator[Method]:
    method = register_method(Method(
        name="toy", paper="A toy paper (tests only)", seed="none", recipes=("toy.yaml",), status="test fixture",
        models={"toy_model": ToyModel}, losses={"toy_centre": ToyCentreLoss},
        augmentations={"invert_infrared": invert_infrared}, rerankers={"toy_rerank": (toy_stream, ("scale",))}))
    yield method
    unregister_method("toy")


RECIPE = """
name: toy
data: {{dataset: sysu-mm01, root: {root}, height: 16, width: 8, num_ids: 2, num_instances: 2, num_workers: 0,
        batches_per_epoch: 2, val_fraction: 0.0, in_memory: true,
        augment: [{{name: invert_infrared, params: {{p: 0.5}}}}]}}
model: {{name: toy_model, params: {{dim: 4}}}}
losses:
  - {{name: cross_entropy, params: {{epsilon: 0.1}}}}
  - {{name: toy_centre, weight: 0.5, params: {{scale: 2.0}}}}
optim: {{name: adamw, lr: 1e-2, epochs: 2, warmup_epochs: 0, milestones: []}}
eval: {{every: 1, protocol: {{mode: all, shots: 1, trials: 2}}}}
runtime: {{device: cpu, seed: 0, deterministic: true}}
"""


def test_a_method_registered_from_outside_trains_and_is_listed(toy: Method, tiny_sysu: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    assert "toy" in METHODS and [m for m in describe_methods() if m["name"] == "toy"][0]["parts"] == {
        "models": ["toy_model"], "losses": ["toy_centre"], "image augmentations": ["invert_infrared"],
        "re-rankers": ["toy_rerank"]}
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(RECIPE.format(root=tiny_sysu))
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    records = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"toy_centre"' in records  # the toy loss is one of the logged, weighted terms
    capsys.readouterr()
    assert main(["test", "--run", str(tmp_path / "run"), "--rerank", "toy_rerank", "--json"]) == 0
    assert '"method": "toy_rerank"' in capsys.readouterr().out  # the method's re-ranker is a --rerank choice
    assert main(["methods"]) == 0
    assert "toy: A toy paper (tests only)" in capsys.readouterr().out
    # the config knows the toy parts' parameters once registered: a typo is caught at load
    recipe.write_text(RECIPE.format(root=tiny_sysu).replace("scale: 2.0", "scael: 2.0"))
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp_path / "run2")]) == 2
    assert "unknown config key losses[1].params.scael; valid keys: scale" in capsys.readouterr().err


def test_unregistered_parts_are_unknown_again(tiny_sysu: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(RECIPE.format(root=tiny_sysu))
    assert main(["train", "--config", str(recipe), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.name: unknown model 'toy_model'" in err and "data.augment[0].name: unknown image augmentation" in err
