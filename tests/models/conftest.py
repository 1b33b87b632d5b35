"""One intra-op thread per test: the CI box has 2 shared cores, where 2 OpenMP threads that
spin-wait on a busy core run the tiny ResNets 5-10x slower than one thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
