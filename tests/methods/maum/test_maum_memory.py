"""MAUM's FIFO proxy memory against a plain Python queue, and its exact state_dict round trip."""

from __future__ import annotations

import collections
import io

import pytest
import torch

from vireid.methods.maum.memory import ProxyQueue


@pytest.mark.parametrize("capacity", [1, 3, 5])
def test_memory_matches_a_plain_queue(capacity: int) -> None:
    g = torch.Generator().manual_seed(capacity)
    queue = ProxyQueue(capacity)
    plain: collections.deque[torch.Tensor] = collections.deque(maxlen=capacity)
    assert len(queue) == 0 and queue.snapshots().shape[0] == 0
    for step in range(2 * capacity + 2):
        proxies = torch.randn(4, 3, generator=g, requires_grad=True)  # (C, D)
        queue.push(proxies)
        plain.append(proxies.detach().clone())
        assert len(queue) == len(plain) == min(step + 1, capacity)
        assert torch.equal(queue.snapshots(), torch.stack(list(plain)))  # oldest first
        assert not queue.snapshots().requires_grad


def test_memory_holds_a_copy_not_the_live_weights() -> None:
    queue = ProxyQueue(2)
    w = torch.zeros(2, 2)
    queue.push(w)
    w += 1.0
    assert torch.equal(queue.snapshots()[0], torch.zeros(2, 2))


def test_memory_rejects_another_shape() -> None:
    queue = ProxyQueue(2)
    queue.push(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\(3, 5\) do not match the memory's \(3, 4\)"):
        queue.push(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        ProxyQueue(0)


@pytest.mark.parametrize("pushes", [2, 4, 7])
def test_state_dict_round_trip_restores_the_queue_exactly(pushes: int) -> None:
    """A fresh (empty, shapeless) queue loading a saved state continues exactly like the original."""
    g = torch.Generator().manual_seed(pushes)
    queue = ProxyQueue(4)
    for _ in range(pushes):
        queue.push(torch.randn(5, 3, generator=g))
    buf = io.BytesIO()
    torch.save(queue.state_dict(), buf)
    buf.seek(0)
    restored = ProxyQueue(4)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(restored.bank, queue.bank) and int(restored.num_pushed) == pushes
    for _ in range(3):
        p = torch.randn(5, 3, generator=g)
        queue.push(p)
        restored.push(p)
        assert torch.equal(restored.snapshots(), queue.snapshots())


def test_loading_a_memory_of_another_size_is_an_error() -> None:
    queue = ProxyQueue(3)
    queue.push(torch.zeros(2, 2))
    with pytest.raises(RuntimeError, match="saved memory has shape \\(3, 2, 2\\), this queue holds 4 snapshots"):
        ProxyQueue(4).load_state_dict(queue.state_dict())
