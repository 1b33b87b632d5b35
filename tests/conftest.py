"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

import vireid.methods  # noqa: F401  registers the built-in methods, as the command line does


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread per test: CI has 2 shared cores, where 2 OpenMP threads that
    spin-wait on a busy core run the tiny ResNets 5-10x slower than one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing downloads at test time: pretrained weights resolve in offline mode (VIREID_OFFLINE=1)."""
    monkeypatch.setenv("VIREID_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_sysu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset in the SYSU-MM01 layout (12 ids, 64x32, 3 images per camera at most)."""
    from vireid.data.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("tiny") / "sysu"
    generate_dataset(root, SyntheticConfig(num_ids=12, seed=5, images_per_camera=3, height=64, width=32))
    return root


# model name -> params of a small CPU variant (ResNet-18, no non-local blocks)
TINY_MODELS: dict[str, dict] = {
    "agw": {"arch": "resnet18", "non_local": False},
    "baseline": {"arch": "resnet18"},
    "mrda": {"arch": "resnet18", "dam_qk_channels": 32},
    "maum": {"arch": "resnet18"},
    "cmlsp": {"arch": "resnet18", "non_local": False, "stripes": 4, "local_dim": 16},
    "vit": {"arch": "vit_cpu", "img_size": [64, 32], "patch_size": 8, "stride": 6, "depth": 2},
    "cmtr": {"arch": "vit_cpu", "img_size": [64, 32], "patch_size": 8, "stride": 6, "depth": 2},
    "sap": {"arch": "vit_cpu", "img_size": [64, 32], "patch_size": 8, "stride": 6, "depth": 2},
}


def train_tiny_run(root: Path, out: Path, model: str, epochs: int = 1, batches: int = 2) -> Path:
    from vireid.cli import main

    cfg = {
        "name": model, "output_dir": str(out),
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": batches},
        "model": {"name": model, "params": TINY_MODELS[model]},
        "optim": {"lr": 0.01, "epochs": epochs, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {"mode": "all", "shots": 1, "sampling": "official"}},
        "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
    }
    recipe = out / f"{model}.yaml"
    out.mkdir(parents=True, exist_ok=True)
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 0
    return out / model


# The tiny ViT of the transformer models (vireid.models.vit): 2 blocks of width 128, 8x8 patches at stride 6
TINY_VIT: dict = TINY_MODELS["vit"]
# model name -> tiny constructor kwargs for the models that are not two-stream ResNets (the generic model
# tests use {"arch": "resnet18"} for the others)
TINY_PER_MODEL: dict[str, dict] = {"vit": TINY_VIT, "cmtr": TINY_VIT, "sap": TINY_VIT}
# SPOT (two-stream ResNet-18 + a small structure branch); without heatmaps it runs on its uniform fallback
TINY_PER_MODEL["spot"] = {"arch": "resnet18", "structure_channels": 16, "relation_hidden": 8, "qk_channels": 8,
                          "parts": 3, "tpi_heads": 4}


@pytest.fixture(scope="session")
def tiny_model_kwargs() -> dict[str, dict]:
    """Model name -> tiny kwargs replacing ``arch: resnet18`` for models that are not two-stream ResNets."""
    return TINY_PER_MODEL


@pytest.fixture(scope="session")
def tiny_model_params() -> dict[str, dict]:
    """Model name -> the params :func:`train_tiny_run` trains it with."""
    return TINY_MODELS


@pytest.fixture(scope="session")
def tiny_run_factory(tiny_sysu: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``factory(model_name)`` -> a run folder trained for 2 batches (cached per model)."""
    runs: dict[str, Path] = {}

    def factory(model: str) -> Path:
        if model not in runs:
            runs[model] = train_tiny_run(tiny_sysu, tmp_path_factory.mktemp(f"run-{model}"), model)
        return runs[model]

    return factory


@pytest.fixture(scope="session")
def tiny_run(tiny_run_factory: Callable[[str], Path]) -> Path:
    """The AGW (ResNet-18) tiny run the retrieval and deploy-command tests use."""
    return tiny_run_factory("agw")
