"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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
