"""MAUM's proxy memory: a FIFO queue of snapshots of one modality's classifier weights.

Liu et al., "Learning Memory-Augmented Unidirectional Metrics for Cross-modality Person
Re-identification", CVPR 2022 (seeds/001 §5 "memory banks"; METHODS.md §7 "Memory"): the learned
modality-specific proxies (MS-Proxies, the rows of the RGB-only or IR-only classifier) are pushed,
detached, into a queue of ``S`` snapshots; once full, the newest snapshot enters and the oldest
leaves. Each identity therefore has up to ``S`` proxies of each modality.

The queue is a ring buffer held in *persistent buffers* (``bank``, ``num_pushed``), so it is part
of the owning loss module's ``state_dict`` and a checkpoint restores it exactly. The bank's shape
(S, C, D) is only known at the first push (the loss is built before the model's class count is
known); :meth:`ProxyQueue._load_from_state_dict` gives a fresh queue the saved shape before loading.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProxyQueue"]


class ProxyQueue(nn.Module):
    """FIFO queue of ``capacity`` detached (C, D) proxy snapshots, as persistent buffers.

    Buffers (all in ``state_dict``):
        bank: (S, C, D) float32 ring buffer (empty (0, 0, 0) before the first push);
        num_pushed: () int64, snapshots pushed so far (the next slot is ``num_pushed % S``).

    Args:
        capacity: ``S``, the number of snapshots kept (METHODS.md §7: S_RGB, S_IR; default 10).
    """

    bank: torch.Tensor
    num_pushed: torch.Tensor

    def __init__(self, capacity: int) -> None:
        super().__init__()
        if int(capacity) < 1:
            raise ValueError(f"ProxyQueue: capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.register_buffer("bank", torch.zeros(0, 0, 0))
        self.register_buffer("num_pushed", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        """Snapshots held now: ``min(num_pushed, capacity)``."""
        return min(int(self.num_pushed), self.capacity)

    @torch.no_grad()
    def push(self, proxies: torch.Tensor) -> None:
        """Enqueue a detached float32 copy of ``proxies`` (C, D), dropping the oldest when full."""
        if proxies.dim() != 2:
            raise ValueError(f"ProxyQueue.push: expected proxies (C, D), got {tuple(proxies.shape)}")
        snap = proxies.detach().to(torch.float32)  # (C, D)
        if self.bank.numel() == 0:
            self.bank = snap.new_zeros((self.capacity, *snap.shape))  # (S, C, D)
        elif tuple(self.bank.shape[1:]) != tuple(snap.shape):
            raise ValueError(f"ProxyQueue.push: proxies {tuple(snap.shape)} do not match the memory's "
                             f"{tuple(self.bank.shape[1:])} (another model or class count?)")
        slot = int(self.num_pushed) % self.capacity
        self.bank[slot].copy_(snap.to(self.bank.device))
        self.num_pushed += 1

    def snapshots(self) -> torch.Tensor:
        """The held snapshots, oldest first: (len(self), C, D)."""
        n = len(self)
        if n == 0:
            return self.bank.new_zeros((0, *self.bank.shape[1:]))
        if n < self.capacity:
            return self.bank[:n]
        start = int(self.num_pushed) % self.capacity
        order = torch.arange(start, start + n, device=self.bank.device) % self.capacity  # (S,)
        return self.bank[order]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # type: ignore[no-untyped-def]
        saved = state_dict.get(prefix + "bank")
        if isinstance(saved, torch.Tensor) and saved.shape != self.bank.shape:
            if saved.dim() != 3 or (saved.numel() and saved.shape[0] != self.capacity):
                error_msgs.append(f"{prefix}bank: saved memory has shape {tuple(saved.shape)}, this queue holds "
                                  f"{self.capacity} snapshots")
                return
            self.bank = torch.zeros(saved.shape, dtype=torch.float32, device=self.bank.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, held={len(self)}"
