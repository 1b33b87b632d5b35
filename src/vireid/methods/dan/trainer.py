"""Cross-modal cross-domain adaptation: DAN (Fu et al., TCSVT 2022, seeds/000; METHODS.md §2) and baselines.

:class:`AdaptTrainer` is the ordinary :class:`~vireid.engine.trainer.Trainer` (source data, model,
source losses, optimiser, schedule, checkpoints, resume, validation on held-out *source*
identities) with the trainer's public hooks filled in:

- before each epoch (:meth:`AdaptTrainer.on_epoch_start`): refresh the target's pseudo labels from
  features of the current model (hard labels from source prototypes, Eq. 5-7; DBSCAN clusters),
  reset the exemplar memory (Eq. 8-9), log the proxy A-distance (Eq. 1), and plan the epoch's
  target batches;
- each step (:meth:`AdaptTrainer.compute_losses`): one forward pass over the source batch and a
  target batch, the configured source losses (Eq. 10-11) on the source rows, and
  ``lambda1 L_DAA + lambda2 L_soft + lambda3 L_CMA`` (Eq. 15; or the DBSCAN cluster loss) on the rest;
  the discriminators' gradients are clipped with the model's (:meth:`AdaptTrainer.clip_parameters`)
  and the exemplar memory is updated after the optimiser step (:meth:`AdaptTrainer.after_step`).

The target's identity labels never reach a loss: target samples are renumbered by index before
loading; the true ids only feed logged diagnostics (pseudo-label NMI).

:func:`run_adaptation` trains any ``dan.method`` (``source_only`` and ``target_supervised`` are
plain :class:`Trainer` runs) and scores the result under the target's official protocol.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vireid.config import TrainConfig, dump_config
from vireid.types import Batch, Modality, Sample
from vireid.engine import build
from vireid.methods.dan.config import AdaptConfig, components, source_config, target_view
from vireid.engine.checkpoint import unwrap
from vireid.engine.evaluate import evaluate_model, load_trained_model
from vireid.engine.inference import extract_features
from vireid.methods.dan.pseudo_labels import (ExemplarMemory, assign_hard_labels, class_prototypes, cluster_centroids,
                                         dbscan_labels, label_agreement)
from vireid.engine.runtime import Runtime
from vireid.engine.trainer import LossTerm, Trainer, epoch_seed
from vireid.errors import ConfigError, DatasetError
from vireid.methods.dan.losses import (cross_modal_alignment, discriminator_accuracy, domain_adversarial_loss,
                                  exemplar_logits, proxy_a_distance, soft_label_loss)
from vireid.losses.identity import cross_entropy_label_smooth
from vireid.losses.selection import select_feature
from vireid.methods.dan.discriminator import ModalityDiscriminators
from vireid.methods.dan.grl import grl_coefficient
from vireid.types import ModelOutput
from vireid.utils.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

RESULT_FILE = "target_result.json"


def anonymise(samples: Sequence[Sample]) -> list[Sample]:
    """The target training samples with each identity replaced by the sample's own index."""
    return [Sample(s.relpath, i, s.camid, s.modality, s.root) for i, s in enumerate(samples)]


def slice_output(out: ModelOutput, start: int, stop: int | None) -> ModelOutput:
    """Rows ``start:stop`` of every per-row tensor of ``out`` (extras without a batch dim are kept)."""
    n = out.features.shape[0]

    def rows(t: torch.Tensor) -> torch.Tensor:
        return t[start:stop] if t.dim() >= 1 and t.shape[0] == n else t

    return ModelOutput(rows(out.features), rows(out.bn_features),
                       None if out.logits is None else rows(out.logits),
                       {k: rows(v) for k, v in out.extras.items()})


def random_target_plan(modality: np.ndarray, per_modality: int, num_batches: int, seed: int,
                       epoch: int) -> list[list[int]]:
    """Batches of ``per_modality`` visible then ``per_modality`` infrared indices, a pure function of
    ``(seed, epoch)``: each modality is walked in fresh permutations, without repeats inside one."""
    rng = np.random.default_rng([seed, epoch, 0xDA17])
    pools = [np.flatnonzero(modality == int(m)) for m in Modality]
    for m, pool in zip(Modality, pools):
        if pool.size == 0:
            raise DatasetError(f"target training split has no {m.name.lower()} images")
    queues: list[list[int]] = [[], []]
    batches = []
    for _ in range(num_batches):
        batch: list[int] = []
        for q, pool in zip(queues, pools):
            while len(q) < per_modality:
                q.extend(rng.permutation(pool).tolist())
            batch.extend(q[:per_modality])
            del q[:per_modality]
        batches.append(batch)
    return batches


def run_domain_gap(model: nn.Module, cfg: AdaptConfig, runtime: Runtime) -> dict[str, float]:
    """:func:`domain_gap` between the run's source training split and its target training images."""
    from vireid.data.datasets import build_dataset

    source = build.split_train_val(build.build_dataset_from_config(cfg.data).train, cfg.data.val_fraction,
                                   cfg.runtime.seed)[0]
    target = build_dataset(cfg.target.dataset, cfg.target.root, **cfg.target.options).train
    return domain_gap(model, source, target, source_config(cfg), runtime, max_samples=cfg.dan.pad_max_samples,
                      seed=cfg.runtime.seed)


def domain_gap(model: nn.Module, source: Sequence[Sample], target: Sequence[Sample], cfg: TrainConfig,
               runtime: Runtime, *, max_samples: int = 1000, seed: int = 0,
               features: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Proxy A-distance (seeds/000 Eq. 1) between source and target embeddings, per modality.

    At most ``max_samples`` images per domain and modality (seeded); ``features`` reuses
    already extracted (source, target) embeddings in the samples' order. The SVM's train/test
    split groups images by relative path (see :func:`~vireid.methods.dan.losses.proxy_a_distance`).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    for m in Modality:
        idx = []
        for samples in (source, target):
            rows = np.flatnonzero(np.array([int(s.modality) for s in samples]) == int(m))
            idx.append(np.sort(rng.choice(rows, min(len(rows), max_samples), replace=False)))
        if min(len(i) for i in idx) < 2:
            continue
        if features is None:
            fs = extract_features(model, [source[i] for i in idx[0]], cfg.data, runtime, batch_size=cfg.eval.batch_size)
            ft = extract_features(model, [target[i] for i in idx[1]], cfg.data, runtime, batch_size=cfg.eval.batch_size)
        else:
            fs, ft = features[0][idx[0]], features[1][idx[1]]
        # split by relative path: an image and its derived copy (vireid domains) stay on one side
        keys = [source[i].relpath for i in idx[0]], [target[i].relpath for i in idx[1]]
        try:
            out[f"pad_{m.name.lower()}"] = proxy_a_distance(fs, ft, seed=seed, source_keys=keys[0],
                                                            target_keys=keys[1])
        except ValueError as exc:  # a diagnostic: a handful of images must not stop a training run
            logger.warning("proxy A-distance (%s) skipped: %s", m.name.lower(), exc)
    return out


class _ListBatchSampler:
    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class AdaptTrainer(Trainer):
    """DAN (``dan.method = dan``) or the DBSCAN baseline (``dbscan``) on ``cfg.data`` -> ``cfg.target``.

    Same arguments and outputs as :class:`~vireid.engine.trainer.Trainer`; ``last.pt`` also holds
    the discriminators, the exemplar memory and the current pseudo labels, so ``resume`` is exact
    at epoch boundaries (and mid-epoch with ``num_workers = 0``). Single process only.
    """

    def __init__(self, cfg: AdaptConfig, run_dir: str | Path, runtime: Runtime, *,
                 progress: Callable[[int, str], Any] | None = None,
                 on_iteration: Callable[[int, int], None] | None = None) -> None:
        if cfg.dan.method not in ("dan", "dbscan"):
            raise ConfigError(f"AdaptTrainer trains dan.method dan or dbscan, got {cfg.dan.method!r} "
                              "(run_adaptation trains the others with the plain Trainer)")
        if runtime.distributed:
            raise ConfigError("vireid adapt runs in one process (no torchrun)")
        super().__init__(cfg, run_dir, runtime, progress=progress, on_iteration=on_iteration)
        self.acfg = cfg
        d = cfg.dan
        from vireid.data.datasets import build_dataset

        target = build_dataset(cfg.target.dataset, cfg.target.root, **cfg.target.options)
        if not target.train:
            raise DatasetError(f"target {cfg.target.dataset} at {cfg.target.root} has no training images")
        self.target_true_ids = np.array([s.pid for s in target.train])  # diagnostics only
        self.target_samples = anonymise(target.train)
        self.target_modality = np.array([int(s.modality) for s in self.target_samples])
        model = unwrap(self.model)
        dim = int(getattr(model, "out_dim", 0))
        if dim < 1:
            raise ConfigError(f"model {cfg.model.name!r} has no out_dim (feature size) for the DAN heads")
        self.use_hard = d.method == "dan" and (d.hard_label or d.cma)
        self.sampling = cfg.target.sampling
        if self.sampling == "auto":
            self.sampling = "pseudo" if d.method == "dan" and d.cma else "random"
        if self.sampling == "pseudo":
            self.use_hard = True
        self.discriminators: ModalityDiscriminators | None = None
        if d.method == "dan" and d.daa:
            self.discriminators = ModalityDiscriminators(dim, d.discriminator_hidden, d.discriminator_dropout)
            self.discriminators.to(runtime.device)
            lr = cfg.optim.lr * d.discriminator_lr_mult
            self.optimizer.add_param_group({"params": list(self.discriminators.parameters()), "lr": lr,
                                            "initial_lr": lr, "name": "discriminator"})
        self.memory: ExemplarMemory | None = None
        if d.method == "dan" and d.soft_label:
            self.memory = ExemplarMemory(torch.from_numpy(self.target_modality), dim, d.memory_momentum)
            self.memory.to(runtime.device)
        self.hard_labels: torch.Tensor | None = None  # (N_t,) source class per target image
        self.clusters: torch.Tensor | None = None  # (N_t,) DBSCAN cluster, -1 outlier
        self.centroids: torch.Tensor | None = None  # (K, D)
        self._epoch = 0
        self._refreshed_epoch: int | None = None
        self._pending_memory: tuple[torch.Tensor, torch.Tensor] | None = None  # (index, x_t) of the step
        from vireid.data.loader import ImageDataset

        self.target_dataset = ImageDataset(self.target_samples, transform=None,
                                           transform_by_modality=build.build_train_transforms(cfg.data),
                                           in_memory=cfg.data.in_memory)

    # ------------------------------------------------------------------ state

    def extra_state(self) -> dict[str, Any]:
        return {"dan": {
            "discriminators": None if self.discriminators is None else self.discriminators.state_dict(),
            "memory": None if self.memory is None else self.memory.state_dict(),
            "hard_labels": self.hard_labels, "clusters": self.clusters, "centroids": self.centroids,
            "refreshed_epoch": self._refreshed_epoch,
        }}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        state = ckpt.get("dan") or {}
        if self.discriminators is not None and state.get("discriminators") is not None:
            self.discriminators.load_state_dict(state["discriminators"])
        if self.memory is not None and state.get("memory") is not None:
            self.memory.load_state_dict(state["memory"])
        self.hard_labels, self.clusters = state.get("hard_labels"), state.get("clusters")
        self.centroids, self._refreshed_epoch = state.get("centroids"), state.get("refreshed_epoch")

    # ------------------------------------------------------------------ epoch hooks

    def _needs_refresh(self, epoch: int, skip: int) -> bool:
        d = self.acfg.dan
        if skip and self._refreshed_epoch is not None:
            return False  # mid-epoch resume: keep the labels the interrupted epoch used
        have = (self.hard_labels is not None or not self.use_hard) and \
               (self.clusters is not None or d.method != "dbscan")
        return not have or epoch % d.refresh_every == 0

    @torch.no_grad()
    def refresh(self, epoch: int) -> dict[str, float]:
        """Recompute the target pseudo labels / memory from the current model; return diagnostics."""
        cfg, rt, d = self.acfg, self.runtime, self.acfg.dan
        model = unwrap(self.model)
        bs = cfg.eval.batch_size
        t_feats = extract_features(model, self.target_samples, cfg.data, rt, batch_size=bs)  # (N_t, D)
        t_tensor = torch.from_numpy(t_feats).to(rt.device)
        t_mod = torch.from_numpy(self.target_modality).to(rt.device)
        diag: dict[str, float] = {}
        s_feats = None
        if self.use_hard or d.proxy_a_distance:
            s_feats = extract_features(model, self.train_samples, cfg.data, rt, batch_size=bs)  # (N_s, D)
        if self.use_hard:
            assert s_feats is not None
            labels = torch.tensor([self.pid_map[s.pid] for s in self.train_samples], device=rt.device)
            s_mod = torch.tensor([int(s.modality) for s in self.train_samples], device=rt.device)
            protos, valid = class_prototypes(torch.from_numpy(s_feats).to(rt.device), labels, s_mod,
                                             self.num_classes)
            self.hard_labels, sim = assign_hard_labels(t_tensor, t_mod, protos, valid)
            hard = self.hard_labels.cpu().numpy()
            both = set(hard[self.target_modality == 0].tolist()) & set(hard[self.target_modality == 1].tolist())
            diag.update(hard_classes=float(len(set(hard.tolist()))), hard_classes_both=float(len(both)),
                        hard_similarity=float(sim.mean()),
                        hard_nmi=label_agreement(self.target_true_ids, hard)["nmi"])
        if self.memory is not None:
            self.memory.reset(t_tensor)
        if d.method == "dbscan":
            clusters, eps = dbscan_labels(t_feats, d.dbscan_eps, d.dbscan_min_samples, rho=d.dbscan_rho,
                                          seed=cfg.runtime.seed)
            self.clusters = torch.from_numpy(clusters).long().to(rt.device)
            self.centroids = cluster_centroids(t_tensor, self.clusters)
            agree = label_agreement(self.target_true_ids, clusters)
            diag.update(clusters=float(self.centroids.shape[0]), cluster_kept=agree["kept"], cluster_nmi=agree["nmi"],
                        dbscan_eps=eps)
        if d.proxy_a_distance and s_feats is not None:
            diag.update(domain_gap(model, self.train_samples, self.target_samples, cfg, rt,
                                   max_samples=d.pad_max_samples, seed=cfg.runtime.seed, features=(s_feats, t_feats)))
        self._refreshed_epoch = epoch
        logger.info("target refresh before epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in diag.items()})
        return diag

    def target_loader(self, epoch: int, skip: int, num_batches: int) -> DataLoader:
        from vireid.data.loader import collate_batch, seed_worker
        from vireid.data.sampler import CrossModalitySampler

        cfg, t = self.acfg, self.acfg.target
        seed = cfg.runtime.seed + 7919
        plan = None
        if self.sampling == "pseudo":
            assert self.hard_labels is not None
            try:
                sampler = CrossModalitySampler(self.hard_labels.cpu().tolist(), self.target_modality.tolist(),
                                               t.num_ids, t.num_instances, seed=seed, batches_per_epoch=num_batches)
                plan = sampler.plan(epoch)
            except DatasetError as exc:
                logger.warning("target pseudo-label sampling impossible this epoch (%s); sampling at random", exc)
        if plan is None:
            plan = random_target_plan(self.target_modality, t.num_per_modality, num_batches, seed, epoch)
        # the target stream's own generator: the loader formula, offset so it never equals the source's
        generator = torch.Generator().manual_seed((epoch_seed(cfg.runtime.seed, epoch) + 31) % 2**31)
        return DataLoader(self.target_dataset, batch_sampler=_ListBatchSampler(plan[skip:]),
                          num_workers=cfg.data.num_workers, collate_fn=collate_batch, generator=generator,
                          worker_init_fn=seed_worker, pin_memory=self.runtime.device.type == "cuda")

    def on_epoch_start(self, epoch: int, skip: int) -> dict[str, Any]:
        """Refresh the pseudo labels when due and open this epoch's target loader."""
        diag = self.refresh(epoch) if self._needs_refresh(epoch, skip) else {}
        self._batches_per_epoch = self.steps_per_epoch  # the source epoch's length sets the target batches
        self._target_iter = iter(self.target_loader(epoch, skip, self._batches_per_epoch))
        self._epoch, self._iteration = epoch, skip
        if self.discriminators is not None:
            self.discriminators.train()
        return diag

    # ------------------------------------------------------------------ step

    def compute_losses(self, batch: Batch) -> tuple[list[LossTerm], dict[str, float]]:
        """Eq. 15: source losses on the source half, then DAA / hard / soft / CMA (or DBSCAN) on the
        target batch drawn alongside (one forward pass over both)."""
        rt, cfg, d = self.runtime, self.acfg, self.acfg.dan
        target = next(self._target_iter).to(rt.device, non_blocking=True)
        n_s = len(batch)
        modality = torch.cat([batch.modality, target.modality])  # (B_s + B_t,)
        images = rt.prepare_images(torch.cat([batch.images, target.images]))  # (B_s + B_t, 3, H, W)
        with rt.autocast():
            out = self.model(images, modality)
        src, tgt = slice_output(out, 0, n_s), slice_output(out, n_s, None)
        values: dict[str, float] = {}
        terms: list[tuple[str, float, torch.Tensor]] = [(loss.name, loss.weight, loss.fn(src, batch))
                                                        for loss in self.losses]
        index = target.index  # (B_t,) rows of the target training split
        x_t = select_feature(tgt, d.target_feature)  # (B_t, D)
        if self.discriminators is not None:
            total_steps = max(1, cfg.optim.epochs * self._batches_per_epoch)
            coeff = grl_coefficient((self._epoch * self._batches_per_epoch + self._iteration) / total_steps,
                                    d.grl_gamma, d.grl_max)
            logits = self.discriminators(select_feature(out, d.daa_feature), modality, coeff)  # (B,)
            is_source = torch.arange(len(modality), device=modality.device) < n_s  # (B,)
            terms.append(("daa", d.lambda1, domain_adversarial_loss(logits, is_source, modality)))
            values["disc_acc"] = discriminator_accuracy(logits, is_source)
            values["grl_coeff"] = coeff
        if d.method == "dan" and d.hard_label:
            assert self.hard_labels is not None and tgt.logits is not None
            terms.append(("hard", d.hard_weight, cross_entropy_label_smooth(tgt.logits, self.hard_labels[index], 0.0)))
        if self.memory is not None and self._epoch >= d.soft_start_epoch:
            mem_logits = exemplar_logits(x_t, self.memory.features, d.memory_temperature)  # (B_t, N_t)
            neighbours = self.memory.neighbours(x_t, index, d.num_neighbours)  # (B_t, m)
            terms.append(("soft", d.lambda2, soft_label_loss(mem_logits, index, neighbours, d.soft_lambda)))
        if d.method == "dan" and d.cma:
            assert self.hard_labels is not None
            terms.append(("cma", d.lambda3, cross_modal_alignment(
                x_t, self.hard_labels[index], target.modality, eta=d.eta, normalize=d.cma_normalize,
                reduction=d.cma_reduction)))
        if d.method == "dbscan" and self._epoch >= d.dbscan_start_epoch:
            assert self.clusters is not None and self.centroids is not None
            y = self.clusters[index]  # (B_t,)
            keep = y >= 0
            value = x_t.sum() * 0.0
            if bool(keep.any()) and self.centroids.shape[0] > 0:
                value = F.cross_entropy(exemplar_logits(x_t[keep], self.centroids, d.memory_temperature), y[keep])
            terms.append(("dbscan", d.dbscan_weight, value))
        if src.logits is not None:  # source rows only: train_acc
            values["_correct"] = float((src.logits.detach().argmax(1) == batch.pids).sum())
        self._pending_memory = (index, x_t)  # the memory is updated after the optimiser step
        return terms, values

    def clip_parameters(self) -> list[nn.Parameter]:
        params = super().clip_parameters()
        if self.discriminators is not None:
            params += list(self.discriminators.parameters())
        return params

    def after_step(self, batch: Batch) -> None:
        index, x_t = self._pending_memory
        self._pending_memory = None
        if self.memory is not None:
            self.memory.update(index, x_t)
        self._iteration += 1


# ---------------------------------------------------------------------------- runs


def evaluate_on_target(model: nn.Module, cfg: AdaptConfig, runtime: Runtime, *,
                       flip: bool = False) -> dict[str, Any]:
    """Score ``model`` under the official test protocol of ``cfg.target`` (``target.protocol`` settings)."""
    view = target_view(cfg)
    result = evaluate_model(model, view, runtime, protocol=dict(cfg.target.protocol), flip=flip)
    result["settings"]["target"] = {"dataset": cfg.target.dataset, "root": cfg.target.root}
    return result


def run_adaptation(cfg: AdaptConfig, run_dir: str | Path, runtime: Runtime, *,
                   progress: Callable[[int, str], Any] | None = None, resume: bool = False,
                   checkpoint: str = "last") -> dict[str, Any]:
    """Train ``cfg`` (any ``dan.method``) into ``run_dir`` and score it on the target's test protocol.

    ``checkpoint``: ``last`` (default: no target labels are used to pick a model) or ``best``
    (selected on held-out *source* identities when ``data.val_fraction > 0``). Writes
    ``target_result.json``, ``adapt.yaml`` (the full recipe) and a ``config.yaml`` whose data
    section is the target, so ``vireid test --run RUN_DIR`` scores the target as well. Returns the
    result dict of :func:`vireid.engine.evaluate.evaluate_model` with ``method``, ``components``,
    ``train`` (summary) and, when ``dan.proxy_a_distance``, the final ``domain_gap``.
    """
    run_dir = Path(run_dir)
    method = cfg.dan.method
    if runtime.is_main:  # the full recipe, before training (config.yaml holds the target view)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "adapt.yaml", dump_config(cfg))
    if method in ("dan", "dbscan"):
        trainer: Trainer = AdaptTrainer(cfg, run_dir, runtime, progress=progress)
    else:
        train_cfg = target_view(cfg) if method == "target_supervised" else source_config(cfg)
        trainer = Trainer(train_cfg, run_dir, runtime, progress=progress)
    if resume:
        trainer.resume(run_dir / "last.pt")
    summary = trainer.fit()
    view = target_view(cfg)
    if not runtime.is_main:
        return {}
    atomic_write_text(run_dir / "config.yaml", dump_config(view))
    model, ckpt = load_trained_model(view, run_dir / f"{checkpoint}.pt", runtime)
    result = evaluate_on_target(model, cfg, runtime)
    result["settings"]["checkpoint"] = {"which": checkpoint, "epoch": ckpt["epoch"]}
    result["method"] = method
    result["components"] = components(cfg)
    result["train"] = summary
    if cfg.dan.proxy_a_distance:
        result["domain_gap"] = run_domain_gap(model, cfg, runtime)
    atomic_write_json(run_dir / RESULT_FILE, result)
    logger.info("%s on target %s: rank1 %.2f mAP %.2f", method, cfg.target.root, result["mean"]["rank1"],
                result["mean"]["mAP"])
    return result


def read_result(run_dir: str | Path) -> dict[str, Any]:
    """The ``target_result.json`` of a finished adaptation run."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} holds no {RESULT_FILE} (not a finished vireid adapt run)")
    return json.loads(path.read_text())


__all__ = ["AdaptTrainer", "anonymise", "domain_gap", "evaluate_on_target", "random_target_plan", "read_result",
           "run_adaptation", "slice_output"]
