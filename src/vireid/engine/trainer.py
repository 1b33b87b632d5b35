"""Cross-modality training loop: named weighted losses, validation-based model selection,
atomic per-epoch checkpoints, exact resume, Ctrl-C handling and DDP through ``torchrun``.

Resume semantics: every epoch starts from RNG states that are a pure function of
``(seed, epoch, rank)`` and the sampler's plan is a pure function of ``(seed, epoch)``, so a run
resumed at an epoch boundary continues exactly. SIGINT (Ctrl-C) and SIGTERM are requests to stop
(:mod:`vireid.engine.interrupt`): the step in progress completes, then ``last.pt`` is saved at that
*completed* iteration with the RNG state and the epoch's partial loss sums, and
:class:`~vireid.engine.interrupt.TrainingInterrupted` is raised. Resuming from it is bit-identical
when ``data.num_workers == 0`` (worker processes hold their own RNG state, which a checkpoint
cannot capture). A signal during validation cuts it short and saves the epoch with its
validation pending (run first on resume); checkpoint writes are atomic and never cut.
``metrics.jsonl`` is rewritten from the checkpoint's records on resume (each epoch once) and
started empty on a fresh run. ``fit`` holds the run-folder lock (:mod:`vireid.engine.run_lock`).

Subclasses (the DAN adaptation trainer) change what a step optimises through the public hooks
:meth:`Trainer.on_epoch_start`, :meth:`Trainer.compute_losses`, :meth:`Trainer.clip_parameters`
and :meth:`Trainer.after_step`; the loop, checkpoints, logging and resume stay here.
"""

from __future__ import annotations

import itertools
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vireid.config import TrainConfig, config_to_dict, dump_config
from vireid.types import Batch, Modality, Sample
from vireid.engine import build, run_lock
from vireid.engine.checkpoint import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    load_model_state,
    remove_stale_temp_files,
    restore_rng,
    save_checkpoint,
    unwrap,
)
from vireid.engine.inference import extract_features, takes_aux
from vireid.engine.interrupt import StopRequest, TrainingInterrupted
from vireid.engine.runtime import Runtime, seed_everything
from vireid.errors import ConfigError
from vireid.registry import TRAINERS
from vireid.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

LossTerm = tuple[str, float, torch.Tensor]  # (name, weight, scalar value): the step minimises sum(weight * value)


class _SkipBatches:
    """A batch sampler that drops the first ``skip`` batches of another (mid-epoch resume)."""

    def __init__(self, batch_sampler: Any, skip: int) -> None:
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.skip)


def model_aux(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """``{"aux": batch.aux}`` for a model whose class declares ``aux_inputs`` (keypoint heatmaps,
    parsing maps, caption tokens), else ``{}``: the keyword part of the model call."""
    return {"aux": batch.aux} if takes_aux(model) else {}


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of the loader generator of ``epoch`` on ``rank`` (the same formula for every loader of a run)."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**31


def _init_worker(worker_id: int) -> None:
    """Loader workers ignore Ctrl-C (the terminal sends it to the whole process group): the main
    process finishes its step and saves; a worker that died of it would fail that step instead."""
    from vireid.data.loader import seed_worker

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed_worker(worker_id)


# Config keys that may differ between a checkpoint and the config resuming it (they change
# neither the weights nor the data order; optim.implementation at most by rounding, and checkpoints
# from before it existed lack it); any other difference is refused.
RESUME_MAY_CHANGE = ("runtime.device", "runtime.num_threads", "runtime.tensorboard", "runtime.log_every",
                     "data.num_workers", "data.in_memory", "eval.", "output_dir", "name", "optim.epochs",
                     "optim.implementation")


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        for k, v in values.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: values}


class Trainer:
    """Trains ``cfg`` into ``run_dir``. Only rank 0 writes files.

    Args:
        cfg: the validated configuration.
        run_dir: output folder (config.yaml, metrics.jsonl, last.pt, best.pt, summary.json).
        runtime: device/autocast/distributed state from :func:`vireid.engine.runtime.setup_runtime`.
        progress: optional factory ``(total, description) -> context manager with update(n, **postfix)``
            supplied by the CLI to render progress; the engine itself only logs.
        on_iteration: optional hook called after every optimiser step with ``(epoch, iteration)``
            (tests use it to interrupt a run).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        runtime: Runtime,
        *,
        progress: Callable[[int, str], Any] | None = None,
        on_iteration: Callable[[int, int], None] | None = None,
    ) -> None:
        self.cfg, self.runtime = cfg, runtime
        self.run_dir = Path(run_dir)
        self.progress, self.on_iteration = progress, on_iteration
        build.check_components(cfg)
        self.dataset = build.build_dataset_from_config(cfg.data)
        build.check_eval_protocol(self.dataset, cfg.eval.protocol)  # fail now, not at test time
        self.train_samples, self.val_samples = build.split_train_val(
            self.dataset.train, cfg.data.val_fraction, cfg.runtime.seed, cfg.data.val_split
        )
        pids = sorted({s.pid for s in self.train_samples})
        self.pid_map = {pid: i for i, pid in enumerate(pids)}
        self.num_classes = len(pids)
        self.model = build.build_model_from_config(cfg.model, self.num_classes).to(runtime.device)
        if runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if runtime.distributed:
            if cfg.runtime.sync_bn:
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.batch_augment = build.build_batch_augment_from_config(cfg.data)
        self.losses = build.build_losses(cfg.losses)
        for loss in self.losses:
            loss.fn.to(runtime.device)
        self.optimizer = build.build_optimizer(unwrap(self.model), cfg.optim)
        self.scaler = runtime.make_grad_scaler()
        self.start_epoch, self.start_iteration = 0, 0
        self.best: dict[str, Any] = {"metric": cfg.eval.metric, "value": None, "epoch": None}
        self.history: list[dict[str, Any]] = []  # train records, one per epoch
        self.records: list[dict[str, Any]] = []  # every record of metrics.jsonl, in order
        self._tb = None
        self._stop = StopRequest()
        self._mid_step = False  # True from fetching a batch until its step has completed
        self._pending_validation = False  # resumed at an epoch end whose validation was cut short
        self._resume_partial: dict[str, Any] | None = None  # loss sums of a resumed epoch's first part
        self._resume_rng: dict[str, Any] | None = None

    # ------------------------------------------------------------------ data

    def _build_train_data(self) -> None:
        from vireid.data.identity_sampler import IdentitySampler, sampler_kind
        from vireid.data.loader import ImageDataset
        from vireid.data.sampler import CrossModalitySampler

        d = self.cfg.data
        if d.aux.enabled:
            from vireid.data.aux_dataset import build_aux_dataset

            self._train_dataset = build_aux_dataset(self.train_samples, d, train=True, pid_map=self.pid_map,
                                                    seed=self.cfg.runtime.seed)
        else:
            self._train_dataset = ImageDataset(
                self.train_samples,
                transform=None,
                transform_by_modality=build.build_train_transforms(d),
                pid_map=self.pid_map,
                in_memory=d.in_memory,
            )
        pids = [s.pid for s in self.train_samples]
        if sampler_kind(self.dataset.modalities) == "identity":  # one image modality (Market-style)
            self._sampler = IdentitySampler(pids, d.num_ids, d.num_instances, seed=self.cfg.runtime.seed,
                                            num_replicas=self.runtime.world_size, rank=self.runtime.rank,
                                            batches_per_epoch=d.batches_per_epoch)
        else:
            self._sampler = CrossModalitySampler(
                pids,
                [int(s.modality) for s in self.train_samples],
                d.num_ids,
                d.num_instances,
                seed=self.cfg.runtime.seed,
                num_replicas=self.runtime.world_size,
                rank=self.runtime.rank,
                batches_per_epoch=d.batches_per_epoch,
            )

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps of one epoch on this rank (the training sampler's length)."""
        if not hasattr(self, "_sampler"):
            self._build_train_data()
        return len(self._sampler)

    def _train_loader(self, epoch: int, skip: int = 0) -> DataLoader:
        from vireid.data.loader import collate_batch

        d = self.cfg.data
        if not hasattr(self, "_train_dataset"):
            self._build_train_data()
        self._sampler.set_epoch(epoch)
        if hasattr(self._train_dataset, "set_epoch"):  # views drawn from (seed, epoch, index)
            self._train_dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(epoch_seed(self.cfg.runtime.seed, epoch, self.runtime.rank))
        batch_sampler = _SkipBatches(self._sampler, skip) if skip else self._sampler
        return DataLoader(
            self._train_dataset,
            batch_sampler=batch_sampler,
            num_workers=d.num_workers,
            collate_fn=getattr(self._train_dataset, "collate", collate_batch),
            generator=generator,
            worker_init_fn=_init_worker,
            pin_memory=self.runtime.device.type == "cuda",
        )

    # ------------------------------------------------------------------ state

    def _state(self, epoch: int, iteration: int) -> dict[str, Any]:
        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "iteration": iteration,
            "validated": True,  # False: the epoch ended but its validation was cut short
            "epoch_partial": None,  # loss sums of the epoch's completed steps (iteration > 0)
            "rng": capture_rng(),
            "best": self.best,
            "history": self.history,
            "log": self.records,
            "num_classes": self.num_classes,
            "pid_map": {str(k): v for k, v in self.pid_map.items()},
            "config": config_to_dict(self.cfg),
            "losses_state": self._losses_state(),
            **self.extra_state(),
        }

    def _losses_state(self) -> dict[str, Any]:
        """State of the losses that hold some (``nn.Module`` buffers: memory banks, queues, proxies)."""
        return {loss.name: loss.fn.state_dict() for loss in self.losses
                if isinstance(loss.fn, nn.Module) and loss.fn.state_dict()}

    def extra_state(self) -> dict[str, Any]:
        """Hook: what a method adds to every checkpoint (top-level keys beside the trainer's own)."""
        return {}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        """Hook: restore what :meth:`extra_state` saved, from the checkpoint being resumed."""

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by this trainer (``last.pt``). Reads only; writes nothing.

        Raises:
            CheckpointError: the file is not a training checkpoint of this model, identities or
                optimiser; ConfigError: the config differs from the checkpoint's in a key that
                changes training (only :data:`RESUME_MAY_CHANGE` may differ).
        """
        ckpt = load_checkpoint(path, map_location=self.runtime.device)
        needed = ("model", "optimizer", "scaler", "epoch", "iteration", "rng", "best", "history", "num_classes")
        missing = [k for k in needed if k not in ckpt]
        if missing:
            raise CheckpointError(f"{path}: not a training checkpoint (no {', '.join(missing)}); --resume reads last.pt")
        if ckpt["num_classes"] != self.num_classes:
            raise CheckpointError(f"{path}: trained with {ckpt['num_classes']} identities, this config has "
                                  f"{self.num_classes}; resume with the run's config.yaml")
        self._check_resume_config(path, ckpt.get("config"))
        pid_map = ckpt.get("pid_map")
        if pid_map is not None and {int(k): int(v) for k, v in pid_map.items()} != self.pid_map:
            raise CheckpointError(f"{path}: trained on other identities than this config's training split")
        load_model_state(self.model, ckpt["model"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scaler.load_state_dict(ckpt["scaler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: its optimizer state does not fit this optimizer ({exc})") from None
        self.best, self.history = ckpt["best"], list(ckpt["history"])
        self.records = list(ckpt.get("log", self.history))
        self.start_epoch, self.start_iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        self._resume_rng = ckpt["rng"] if self.start_iteration > 0 else None
        self._resume_partial = ckpt.get("epoch_partial") if self.start_iteration > 0 else None
        self._pending_validation = self.start_iteration == 0 and not ckpt.get("validated", True)
        saved_losses = ckpt.get("losses_state", {})
        for loss in self.losses:
            if loss.name in saved_losses:
                try:
                    loss.fn.load_state_dict(saved_losses[loss.name])
                except (RuntimeError, KeyError) as exc:
                    raise CheckpointError(f"{path}: the state of loss {loss.name} does not fit ({exc})") from None
            elif isinstance(loss.fn, nn.Module) and loss.fn.state_dict():
                raise CheckpointError(f"{path}: no saved state for loss {loss.name} (a checkpoint of an older "
                                      "vireid); its memory cannot be restored")
        self.load_extra_state(ckpt)
        logger.info("resumed from %s at epoch %d, iteration %d", path, self.start_epoch, self.start_iteration)

    def _check_resume_config(self, path: str | Path, saved: dict[str, Any] | None) -> None:
        if saved is None:
            return
        old, new = _flatten(saved), _flatten(config_to_dict(self.cfg))
        changed = [k for k in sorted(old.keys() | new.keys())
                   if old.get(k, "<absent>") != new.get(k, "<absent>")
                   and not any(k == p or (p.endswith(".") and k.startswith(p)) for p in RESUME_MAY_CHANGE)]
        if changed:
            diffs = "; ".join(f"{k}: {old.get(k, '<absent>')!r} in the checkpoint, {new.get(k, '<absent>')!r} now"
                              for k in changed[:3])
            more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
            raise ConfigError(f"--resume {path}: the config differs from the run's in keys that change training: "
                              f"{diffs}{more}; resume with the run's config.yaml")

    def _save(self, name: str, epoch: int, iteration: int, *, validated: bool = True,
              partial: dict[str, Any] | None = None) -> Path | None:
        path = self.run_dir / name
        if self.runtime.is_main:
            state = self._state(epoch, iteration)
            state.update(validated=validated, epoch_partial=partial)
            save_checkpoint(path, **state)
            return path
        return None

    def _log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if not self.runtime.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            step = record.get("epoch", 0)
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "iteration"):
                    self._tb.add_scalar(f"{record.get('kind', 'train')}/{key}", value, step)

    def _stop_requested(self) -> bool:
        """Whether a stop was asked for (on any rank: the ranks agree, so they stop at one iteration)."""
        flag = self._stop.requested
        if self.runtime.distributed:
            import torch.distributed as dist

            t = torch.tensor([1.0 if flag else 0.0], device=self.runtime.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
            if flag and self._stop.signum is None:
                self._stop.signum = signal.SIGTERM
        return flag

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        """Train from the start (or the resumed position) to ``optim.epochs``; returns the summary.

        Raises:
            TrainingInterrupted: on SIGINT/SIGTERM, after saving ``last.pt`` (see the module docstring).
            RunLockedError: another process writes into ``run_dir``.
        """
        main = self.runtime.is_main
        if main:
            run_lock.acquire(self.run_dir)
        try:
            with self._stop:
                return self._fit()
        finally:
            if main:
                run_lock.release(self.run_dir)
            self._stop = StopRequest()

    def _fit(self) -> dict[str, Any]:
        cfg, rt = self.cfg, self.runtime
        if rt.is_main:
            remove_stale_temp_files(self.run_dir)
            atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
            # the records of the checkpoint resumed from (none for a fresh run): each epoch once,
            # nothing of an earlier failed attempt in the same folder
            atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.records))
            if cfg.runtime.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError as exc:
                    raise ImportError("runtime.tensorboard needs `pip install vireid[tensorboard]`") from exc
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        logger.info(
            "training %s on %s: %d identities, %d images (+%d ids held out for validation), device %s, %s",
            cfg.model.name, cfg.data.dataset, self.num_classes, len(self.train_samples),
            len({s.pid for s in self.val_samples}), rt.device, rt.precision,
        )
        try:
            if self._pending_validation and self.start_epoch > 0:
                self._end_epoch(self.start_epoch - 1)
            self._pending_validation = False
            for epoch in range(self.start_epoch, cfg.optim.epochs):
                skip = self.start_iteration if epoch == self.start_epoch else 0
                record = self._train_epoch(epoch, skip)
                self.history.append(record)
                self._log(record)
                self._end_epoch(epoch)
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        summary = {"epochs": cfg.optim.epochs, "best": self.best, "num_classes": self.num_classes,
                   "final": self.history[-1] if self.history else None}
        summary["best"] = build.label_best(self.best, self.val_samples, cfg.data)
        if rt.is_main:
            if not self.val_samples:  # no validation split: the last epoch is the model
                save_checkpoint(self.run_dir / "best.pt", **self._state(cfg.optim.epochs, 0))
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        if self._stop.requested:
            logger.warning("stop request arrived after the last epoch: the run is complete")
        return summary

    def _end_epoch(self, epoch: int) -> None:
        """Validate (when due) after epoch ``epoch`` (0-based), save last.pt, honour a stop request."""
        cfg, rt = self.cfg, self.runtime
        last = epoch + 1 == cfg.optim.epochs
        if self.val_samples and ((epoch + 1) % cfg.eval.every == 0 or last):
            try:
                self._validate(epoch)
            except KeyboardInterrupt as exc:
                saved = self._save("last.pt", epoch + 1, 0, validated=False)
                signum = getattr(exc, "signum", signal.SIGINT)
                logger.warning("interrupted during validation after epoch %d; saved %s (its validation runs "
                               "first on --resume)", epoch + 1, saved)
                raise TrainingInterrupted(signum, str(saved) if saved else None) from None
        saved = self._save("last.pt", epoch + 1, 0)
        rt.barrier()
        if self._stop_requested():
            logger.warning("stopped after epoch %d; saved %s (resume with --resume)", epoch + 1, saved)
            raise TrainingInterrupted(self._stop.signum or signal.SIGINT, str(saved) if saved else None)

    def _train_epoch(self, epoch: int, skip: int) -> dict[str, Any]:
        cfg, rt = self.cfg, self.runtime
        extra = self.on_epoch_start(epoch, skip)
        factor = build.set_epoch_lr(self.optimizer, epoch, cfg.optim)
        if skip and self._resume_rng is not None:
            restore_rng(self._resume_rng)
            self._resume_rng = None
        else:
            seed_everything(epoch_seed(cfg.runtime.seed, epoch, rt.rank))
        loader = self._train_loader(epoch, skip)
        self.model.train()
        partial = (self._resume_partial or {}) if skip else {}
        self._resume_partial = None
        sums: dict[str, float] = dict(partial.get("sums", {}))
        count, seen = int(partial.get("count", 0)), int(partial.get("seen", 0))
        start = time.perf_counter() - float(partial.get("seconds", 0.0))
        total = len(loader) + skip
        bar = self.progress(total, f"epoch {epoch + 1}/{cfg.optim.epochs}") if self.progress and rt.is_main else None
        if bar is not None and skip:
            bar.update(skip)
        iteration = skip

        def position() -> dict[str, Any]:
            return {"sums": dict(sums), "count": count, "seen": seen, "seconds": time.perf_counter() - start}

        try:
            batches = iter(loader)
            while True:
                self._mid_step = True  # fetching draws augmentation randomness: part of the step
                batch = next(batches, None)
                if batch is None:
                    break
                values = self._step(batch)
                iteration += 1
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                seen += int(values.pop("_rows"))
                self._mid_step = False
                if bar is not None:
                    bar.update(1, loss=f"{values['loss']:.3f}")
                if self.on_iteration is not None:
                    self.on_iteration(epoch, iteration)
                if self._stop_requested():
                    raise TrainingInterrupted(self._stop.signum or signal.SIGINT)
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            if self._mid_step:  # a forced stop inside a step: its update may be partial, save nothing
                logger.warning("stopped inside a step of epoch %d; last.pt keeps the last consistent state",
                               epoch + 1)
                raise TrainingInterrupted(signum, None) from None
            saved = self._save("last.pt", epoch, iteration, partial=position())
            logger.warning("interrupted at epoch %d iteration %d; saved %s (resume with --resume)",
                           epoch + 1, iteration, saved)
            raise TrainingInterrupted(signum, str(saved) if saved else None) from None
        finally:
            self._mid_step = False
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - start
        record = {"kind": "train", "epoch": epoch + 1, "lr_factor": factor, "seconds": round(elapsed, 2),
                  "images_per_s": round(seen / max(elapsed, 1e-9), 1)}
        record.update({k: v / max(count, 1) for k, v in sums.items() if not k.startswith("_")})
        if "_correct" in sums:
            record["train_acc"] = sums["_correct"] / max(seen, 1)
        record.update(extra)
        logger.info("epoch %d: %s", epoch + 1, {k: (round(v, 4) if isinstance(v, float) else v)
                                                 for k, v in record.items() if k != "kind"})
        return record

    # ------------------------------------------------------------------ hooks for subclasses

    def on_epoch_start(self, epoch: int, skip: int) -> dict[str, Any]:
        """Called first in every epoch (before the learning rate and the RNG are set; ``skip`` > 0
        when resuming mid-epoch). Returns diagnostics merged into the epoch's record. No-op here."""
        return {}

    def compute_losses(self, batch: Batch) -> tuple[list[LossTerm], dict[str, float]]:
        """Forward ``batch`` (on the device, after the batch augment) and return the weighted loss
        terms ``(name, weight, value)`` to be summed, and extra scalars to log.

        Here: the configured losses on the model output. Keys of the extras starting with ``_`` are
        summed over the epoch but not logged per step (``_correct``: correct identity predictions).
        """
        images = self.runtime.prepare_images(batch.images)
        with self.runtime.autocast():
            out = self.model(images, batch.modality, **model_aux(self.model, batch))
        extras: dict[str, float] = {}
        if out.logits is not None:
            extras["_correct"] = float((out.logits.detach().argmax(1) == batch.pids).sum())
        return [(loss.name, loss.weight, loss.fn(out, batch)) for loss in self.losses], extras

    def clip_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradient norm ``optim.clip_grad_norm`` bounds."""
        return list(self.model.parameters())

    def after_step(self, batch: Batch) -> None:
        """Called after every optimiser step (e.g. to update a memory bank). No-op here."""

    def _step(self, batch: Batch) -> dict[str, float]:
        rt, cfg = self.runtime, self.cfg
        batch = self.batch_augment(batch.to(rt.device, non_blocking=True))
        terms, values = self.compute_losses(batch)
        if not terms:
            raise ConfigError("no loss to train: the config's losses list is empty")
        total = terms[0][1] * terms[0][2]
        for _, weight, value in terms[1:]:
            total = total + weight * value
        # every loss value and the total in one device-to-host read before backward (issue 17): one
        # CUDA sync instead of two per term plus one after the optimiser step, so backward and the
        # step stay queued on the device while the host fetches the next batch; float64 holds each
        # float32/bf16/fp16 value exactly, so these are the numbers float() gives term by term
        host = torch.stack([v.detach().double().reshape(()) for _, _, v in [*terms, ("", 1.0, total)]])
        host_values = host.tolist()
        for (name, _, _), value in zip(terms, host_values):
            build.finite_or_raise(value, f"loss {name}")
            values[name] = value
        values["loss"] = host_values[-1]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if cfg.optim.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.clip_parameters(), cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.after_step(batch)
        values["_rows"] = len(batch)  # after the batch augment (CAJ adds a third view)
        return values

    # ------------------------------------------------------------------ validation

    def _validate(self, epoch: int) -> None:
        """Infrared queries vs visible gallery over the held-out training identities (image-level CMC).

        A signal cuts the feature extraction short (single process; under DDP the other ranks wait
        in a barrier, so validation completes); the record and best.pt are written only after it."""
        if self.runtime.is_main:
            with self._stop.interruptible(enabled=not self.runtime.distributed):
                result = validate(unwrap(self.model), self.val_samples, self.cfg, self.runtime)
            value = result[self.cfg.eval.metric]
            logger.info("validation after epoch %d: rank1 %.2f mAP %.2f mINP %.2f", epoch + 1,
                        result["rank1"], result["mAP"], result["mINP"])
            if self.best["value"] is None or value > self.best["value"]:
                previous = self.best
                self.best = {"metric": self.cfg.eval.metric, "value": value, "epoch": epoch + 1, **result}
                try:
                    save_checkpoint(self.run_dir / "best.pt", **self._state(epoch + 1, 0))
                except BaseException:
                    self.best = previous
                    raise
            self._log({"kind": "val", "epoch": epoch + 1, **result})
        self.runtime.barrier()


def validate(model: nn.Module, samples: Sequence[Sample], cfg: TrainConfig, runtime: Runtime) -> dict[str, float]:
    """Rank-1, mAP and mINP (percent) on the held-out ``samples``: infrared queries against the visible
    gallery when both image modalities are present; otherwise (single-modality re-ID) every image
    against all the others, its own identity's images from its own camera removed (Market rule)."""
    from vireid.evaluation.metrics import evaluate_features
    from vireid.evaluation.protocols import Exclusion

    feats = extract_features(model, samples, cfg.data, runtime, batch_size=cfg.eval.batch_size, flip=False)
    mod = np.array([int(s.modality) for s in samples])
    pids = np.array([s.pid for s in samples])
    cams = np.array([s.camid for s in samples])
    q, g = mod == Modality.INFRARED, mod == Modality.VISIBLE
    exclusion = Exclusion.NONE
    if not q.any() or not g.any():
        q = g = np.ones(len(samples), dtype=bool)
        exclusion = Exclusion.SAME_ID_SAME_CAMERA
    r = evaluate_features(feats[q], feats[g], pids[q], pids[g], cams[q], cams[g], distance="euclidean",
                          normalize=True, cmc_mode="image", exclusion=exclusion, max_rank=10)
    return {"rank1": 100 * float(r.cmc[0]), "rank5": 100 * float(r.cmc[4]), "mAP": 100 * r.mAP,
            "mINP": 100 * r.mINP}


TRAINERS.register("default", Trainer)


def trainer_class(cfg: TrainConfig) -> type[Trainer]:
    """The trainer the config's ``trainer`` key names (``default``: :class:`Trainer`)."""
    return TRAINERS.get(cfg.trainer, "trainer")
