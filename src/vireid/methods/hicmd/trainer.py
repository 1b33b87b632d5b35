"""Alternating generator / discriminator updates for Hi-CMD (seeds/001 §9; METHODS.md §12 Settings
"alternate G and D steps"), through the shared trainer's public hooks.

:class:`HiCMDTrainer` is the ordinary :class:`~vireid.engine.trainer.Trainer` (one optimiser over
the whole Hi-CMD model: encoders, decoder and HFL; the recipe's losses; schedule, checkpoints,
validation, resume) with:

- :meth:`HiCMDTrainer.compute_losses`: one forward of the model (its generator pass included), then
  the discriminator step on that forward's generated images, detached (Adam on the discriminators
  of the ``hicmd_adv`` loss only; the model's parameters get no gradient from it), then the
  recipe's losses, ``hicmd_adv`` judging the same fakes with the just-updated, frozen
  discriminators; the shared loop then takes the generator/HFL step. So every iteration is
  D-step then G-step (the MUNIT order), and each step changes only its own parameters.
- :meth:`HiCMDTrainer.extra_state` / :meth:`load_extra_state`: the discriminators' optimiser and loss
  scaler (their weights are the ``hicmd_adv`` loss's state, which every checkpoint holds), so
  ``--resume`` continues exactly.

Single process (no ``torchrun``): the generator pass calls model methods outside ``forward``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vireid.config import TrainConfig
from vireid.engine.checkpoint import CheckpointError, unwrap
from vireid.engine.runtime import Runtime
from vireid.engine.trainer import LossTerm, Trainer, model_aux
from vireid.errors import ConfigError
from vireid.methods.hicmd.losses import HiCMDAdversarial
from vireid.types import Batch, ModelOutput

logger = logging.getLogger(__name__)

__all__ = ["HiCMDTrainer"]


class HiCMDTrainer(Trainer):
    """Trains a Hi-CMD recipe (``trainer: hicmd``); same arguments and outputs as :class:`Trainer`.

    Without a ``hicmd_adv`` loss in the recipe there is no discriminator and the steps are the
    plain trainer's.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, runtime: Runtime, *,
                 progress: Callable[[int, str], Any] | None = None,
                 on_iteration: Callable[[int, int], None] | None = None) -> None:
        if runtime.distributed:
            raise ConfigError("trainer: hicmd runs in one process (no torchrun)")
        super().__init__(cfg, run_dir, runtime, progress=progress, on_iteration=on_iteration)
        adversarial = [loss.fn for loss in self.losses if isinstance(loss.fn, HiCMDAdversarial)]
        if len(adversarial) > 1:
            raise ConfigError("losses: hicmd_adv is listed more than once")
        self.adversarial: HiCMDAdversarial | None = adversarial[0] if adversarial else None
        self.d_optimizer: torch.optim.Optimizer | None = None
        self.d_scaler = runtime.make_grad_scaler()
        if self.adversarial is not None:
            self.adversarial.attached = True
            self.d_optimizer = torch.optim.Adam(self.adversarial.discriminators.parameters(), lr=self.adversarial.lr,
                                                betas=self.adversarial.betas)

    # ------------------------------------------------------------------ state

    def extra_state(self) -> dict[str, Any]:
        if self.adversarial is None or self.d_optimizer is None:
            return {}
        # the discriminators' weights are the hicmd_adv loss's state, saved by the trainer ("losses_state")
        return {"hicmd": {"d_optimizer": self.d_optimizer.state_dict(), "d_scaler": self.d_scaler.state_dict()}}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        if self.adversarial is None or self.d_optimizer is None:
            return
        state = ckpt.get("hicmd")
        if not state:
            raise CheckpointError("the checkpoint has no Hi-CMD discriminator state (not written by trainer: hicmd)")
        try:
            self.d_optimizer.load_state_dict(state["d_optimizer"])
            self.d_scaler.load_state_dict(state["d_scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"the checkpoint's Hi-CMD discriminator state does not fit ({exc})") from None

    # ------------------------------------------------------------------ step

    def discriminator_step(self, out: ModelOutput, batch: Batch) -> float:
        """One Adam step of the discriminators on the batch's real images and ``out``'s generated
        ones (detached). Returns the discriminator loss before the step."""
        assert self.adversarial is not None and self.d_optimizer is not None
        model = unwrap(self.model)
        real = model.to_pixels(self.runtime.prepare_images(batch.images)).detach()
        fake, fake_mod = HiCMDAdversarial.fakes(out, batch)
        self.d_optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            loss = self.adversarial.discriminator_loss(real, batch.modality, fake.detach(), fake_mod)
        self.d_scaler.scale(loss).backward()
        self.d_scaler.step(self.d_optimizer)
        self.d_scaler.update()
        return float(loss.detach())

    def compute_losses(self, batch: Batch) -> tuple[list[LossTerm], dict[str, float]]:
        images = self.runtime.prepare_images(batch.images)
        with self.runtime.autocast():
            out = self.model(images, batch.modality, **model_aux(self.model, batch))
        extras: dict[str, float] = {}
        if out.logits is not None:
            extras["_correct"] = float((out.logits.detach().argmax(1) == batch.pids).sum())
        if self.adversarial is not None and "rows" in out.extras:
            extras["d_loss"] = self.discriminator_step(out, batch)
        with self.runtime.autocast():
            terms = [(loss.name, loss.weight, loss.fn(out, batch)) for loss in self.losses]
        return terms, extras
