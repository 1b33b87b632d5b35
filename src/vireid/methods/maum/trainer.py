"""The ``maum`` trainer: tells MAUM's metric loss the epoch, for its epoch-counted CE-only warm-up.

Liu et al., CVPR 2022 (seeds/001 §5; METHODS.md §7 "Settings": 10 CE-only warm-up epochs, then the
proxies are pushed into the memories every iteration). The loop, checkpoints (the memories are the
loss's persistent buffers, saved and restored by the shared trainer) and resume are the default
trainer's; only :meth:`on_epoch_start` is added, which runs at the start of every epoch, a resumed
one included, so the loss always knows the epoch it is in.
"""

from __future__ import annotations

from typing import Any

from vireid.engine.trainer import Trainer

__all__ = ["MAUMTrainer"]


class MAUMTrainer(Trainer):
    """Default training step; each epoch starts by calling ``set_epoch`` on the losses that have it."""

    def on_epoch_start(self, epoch: int, skip: int) -> dict[str, Any]:
        extra = super().on_epoch_start(epoch, skip)
        for loss in self.losses:
            set_epoch = getattr(loss.fn, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
                if getattr(loss.fn, "warmup_epochs", 0):
                    extra[f"{loss.name}_warmup"] = float(epoch < loss.fn.warmup_epochs)
        return extra
