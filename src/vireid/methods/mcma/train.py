"""Training and text-to-image evaluation of MCMA (seeds/002 §6; METHODS.md §15).

One step (all on one P x K batch of images, each with one caption of its own):

- base matching: ``CMPM(image, text) + ID(image) + ID(text)`` (shared classifier);
- self-instance reconstruction: image i's masked patch tokens from its unmasked tokens, the mask
  token and its own caption embedding, against the EMA teacher's tokens of image i;
- cross-instance reconstruction: the same, with the caption of another image of the same identity;
- bisimulation over the identity relation vectors of the image and text sides;

then the optimiser step and the EMA teacher update. The trained run folder holds ``config.yaml``,
``tokenizer.json`` (scratch text encoder), ``last.pt`` (format ``vireid-mcma``, version 2, weights
only) and ``result.json`` (the test split under the text-to-image protocol).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vireid.config import dump_config
from vireid.engine.runtime import Runtime
from vireid.methods.mcma.config import MCMAConfig
from vireid.methods.mcma.data import CaptionImageDataset, build_caption_loader
from vireid.methods.mcma.losses import bisimulation, cmpm, masked_reconstruction
from vireid.methods.mcma.model import MCMA
from vireid.methods.mcma.tokenizer import CaptionTokenizer
from vireid.types import Modality
from vireid.utils.io import atomic_path, atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)
FORMAT, VERSION = "vireid-mcma", 2  # 2: text BatchNorm + pooling choice (version 1 runs must be retrained)


def load_text_dataset(cfg: MCMAConfig, split: str = "test"):
    from vireid.data.datasets import build_dataset

    return build_dataset(cfg.data.dataset, cfg.data.root, split=split, counts="off")


def same_identity_partner(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each row, another row of the same label (itself only when it is the label's only row): (B,)."""
    out = torch.arange(len(labels))
    for lab in torch.unique(labels):
        rows = torch.nonzero(labels == lab).flatten()
        if len(rows) > 1:
            shift = int(torch.randint(1, len(rows), (), generator=generator))
            out[rows] = rows.roll(-shift)
    return out


def random_patch_mask(batch: int, tokens: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(B, N) bool with exactly ``round(ratio * N)`` (at least 1) hidden positions per row."""
    k = max(1, int(round(ratio * tokens)))
    order = torch.rand(batch, tokens, generator=generator).argsort(dim=1)
    return order < k


def mcma_losses(model: MCMA, images: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                cfg: MCMAConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The weighted terms of one batch (see the module docstring)."""
    w = cfg.loss
    modality = torch.zeros_like(labels)
    out = model(images, modality)
    tokens, img = out.extras["tokens"], out.features  # (B, N, D), (B, D)
    _, txt = model.encode_text(ids, mask)  # (B, D)
    terms: dict[str, torch.Tensor] = {"match": w.match * cmpm(img, txt, labels, w.match_temperature)}
    if model.classifier is not None and w.identity > 0:
        terms["identity"] = w.identity * (F.cross_entropy(out.logits.float(), labels)
                                          + F.cross_entropy(model.classifier(txt), labels))
    if w.self_rec > 0 or w.cross_rec > 0:
        target = model.teacher_tokens(images, modality)  # (B, N, D)
        hidden = random_patch_mask(tokens.shape[0], tokens.shape[1], cfg.model.mask_ratio, generator).to(tokens.device)
        if w.self_rec > 0:
            terms["self_rec"] = w.self_rec * masked_reconstruction(model.reconstruct(tokens, hidden, txt), target, hidden)
        if w.cross_rec > 0:
            partner = same_identity_partner(labels.cpu(), generator).to(labels.device)
            rec = model.reconstruct(tokens, hidden, txt[partner])
            terms["cross_rec"] = w.cross_rec * masked_reconstruction(rec, target, hidden)
    if w.bisim > 0:
        terms["bisim"] = w.bisim * bisimulation(img, txt, labels, model.predict_v, model.predict_t,
                                                temperature=w.temperature)
    return terms


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate factor of optimiser step ``step`` (0-based) of ``total``: linear warm-up over ``warmup``
    steps (``(step + 1) / warmup``), then 1 (``constant``) or ``(1 + cos(pi * t)) / 2`` with ``t`` going from 0 at
    the first step after the warm-up to 1 at step ``total`` (``cosine``)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * t))


def build_optimizer(model: MCMA, cfg: MCMAConfig) -> torch.optim.Optimizer:
    """AdamW; the image backbone (student) at ``lr * backbone_lr_mult``, every other trainable part at ``lr``."""
    o = cfg.optim
    backbone = {id(p) for p in model.image.backbone.parameters()}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) in backbone],
               "lr": o.lr * o.backbone_lr_mult},
              {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in backbone], "lr": o.lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr, weight_decay=o.weight_decay)


def build_tokenizer(cfg: MCMAConfig, captions: list[str]) -> CaptionTokenizer | None:
    """The scratch encoder's tokenizer trained on the training captions (None with a Hugging Face model)."""
    if cfg.model.text_model:
        return None
    return CaptionTokenizer.train(captions, vocab_size=cfg.data.vocab_size)


def build_model(cfg: MCMAConfig, num_classes: int, vocab_size: int) -> MCMA:
    m = cfg.model
    return MCMA(num_classes, vocab_size=vocab_size, arch=m.arch, pretrained=m.pretrained, dim=m.dim,
                text_model=m.text_model, text_depth=m.text_depth, text_heads=m.text_heads,
                max_length=cfg.data.caption_length, decoder_depth=m.decoder_depth, ema_momentum=m.ema_momentum,
                text_pool=m.text_pool)


def text_encode_fn(model: MCMA, tokenizer: CaptionTokenizer | None) -> Callable:
    return tokenizer.encode if tokenizer is not None else model.text.encode


def train_mcma(cfg: MCMAConfig, run_dir: Path, runtime: Runtime, progress: Any = None) -> dict[str, Any]:
    """Train on the dataset's training split, save the run, score the test split; returns the result."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    ds = load_text_dataset(cfg)
    samples = list(ds.train)
    if not samples:
        raise ValueError(f"{cfg.data.dataset} at {cfg.data.root} has no training entries")
    pids = sorted({s.pid for s in samples})
    label_of = {p: i for i, p in enumerate(pids)}
    tokenizer = build_tokenizer(cfg, [c for s in samples for c in ds.captions[s.relpath]])
    model = build_model(cfg, len(pids), len(tokenizer) if tokenizer else 0)
    if tokenizer is not None:
        tokenizer.save(run_dir / "tokenizer.json")
    model.to(runtime.device)
    if runtime.channels_last:
        model.image.to(memory_format=torch.channels_last)
        model.teacher.to(memory_format=torch.channels_last)
    data = CaptionImageDataset(samples, [label_of[s.pid] for s in samples], ds.captions, height=cfg.data.height,
                               width=cfg.data.width, pad=cfg.data.pad, flip=cfg.data.flip, seed=cfg.runtime.seed)
    loader, sampler = build_caption_loader(data, text_encode_fn(model, tokenizer), num_ids=cfg.data.num_ids,
                                           num_instances=cfg.data.num_instances, caption_length=cfg.data.caption_length,
                                           seed=cfg.runtime.seed, batches_per_epoch=cfg.data.batches_per_epoch,
                                           num_workers=cfg.data.num_workers)
    optimizer = build_optimizer(model, cfg)
    total = cfg.optim.epochs * len(loader)
    warmup = int(round(cfg.optim.warmup_epochs * len(loader)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, cfg.optim.schedule))
    generator = torch.Generator().manual_seed(cfg.runtime.seed)
    history, start = [], time.time()
    for epoch in range(cfg.optim.epochs):
        sampler.set_epoch(epoch)
        data.set_epoch(epoch)
        model.train()
        sums: dict[str, float] = {}
        for images, labels, ids, mask in loader:
            images = runtime.prepare_images(images)
            labels, ids, mask = labels.to(runtime.device), ids.to(runtime.device), mask.to(runtime.device)
            with runtime.autocast():
                terms = mcma_losses(model, images, labels, ids, mask, cfg, generator)
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            model.update_teacher()  # EMA teacher after every optimiser step
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        record = {"epoch": epoch + 1, **{k: v / len(loader) for k, v in sums.items()},
                  "lr": optimizer.param_groups[-1]["lr"], "seconds": time.time() - start}
        history.append(record)
        logger.info("mcma epoch %d: %s", epoch + 1, record)
        if progress is not None:
            progress(record)
    with atomic_path(run_dir / "last.pt") as tmp:
        torch.save({"format": FORMAT, "version": VERSION, "model": model.state_dict(), "num_classes": len(pids),
                    "vocab_size": len(tokenizer) if tokenizer else 0, "epoch": cfg.optim.epochs}, tmp)
    atomic_write_json(run_dir / "history.json", history)
    result = evaluate_mcma(model, tokenizer, cfg, runtime)
    result["settings"]["train_seconds"] = round(time.time() - start, 1)
    atomic_write_json(run_dir / "result.json", result)
    return result


def load_mcma_run(run_dir: str | Path, runtime: Runtime, overrides: list[str] | None = None):
    """``(model, tokenizer, cfg)`` of a trained run folder."""
    from vireid.engine.checkpoint import CheckpointError
    from vireid.methods.mcma.config import load_mcma_config

    run_dir = Path(run_dir)
    cfg = load_mcma_config(run_dir / "config.yaml", overrides)
    ckpt_path = run_dir / "last.pt"
    if not ckpt_path.is_file():
        raise CheckpointError(f"{ckpt_path} does not exist: not a trained vireid train-text run")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt_path} is not an MCMA checkpoint (format {FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{ckpt_path}: MCMA checkpoint version {ckpt.get('version')!r}, this vireid reads "
                              f"version {VERSION} (the text side changed); retrain with vireid train-text")
    tokenizer = None if cfg.model.text_model else CaptionTokenizer.load(run_dir / "tokenizer.json")
    m = cfg.model.model_copy(update={"pretrained": None})  # the checkpoint holds every weight
    model = build_model(cfg.model_copy(update={"model": m}), int(ckpt["num_classes"]), int(ckpt["vocab_size"]))
    model.load_state_dict(ckpt["model"])
    return model.to(runtime.device).eval(), tokenizer, cfg


@torch.no_grad()
def embed_captions(model: MCMA, encode: Callable, captions: list[str], length: int, runtime: Runtime,
                   batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 global caption embeddings."""
    model.eval()
    out = []
    for s in range(0, len(captions), batch_size):
        ids, mask = encode(captions[s:s + batch_size], length)
        with runtime.autocast():
            out.append(model.encode_text(ids.to(runtime.device), mask.to(runtime.device))[1].float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.dim), np.float32)


@torch.no_grad()
def embed_images(model: MCMA, samples: list, cfg: MCMAConfig, runtime: Runtime, batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 global image embeddings (test transform)."""
    from vireid.engine.inference import embed_batch
    from vireid.data.loader import build_test_loader

    loader = build_test_loader(samples, height=cfg.data.height, width=cfg.data.width, batch_size=batch_size)
    model.eval()
    parts = [embed_batch(model, b.images, b.modality, runtime).cpu() for b in loader]
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.dim), np.float32)


def image_folder(relpath: str) -> str:
    """The first folder of an image or caption path below the dataset's ``imgs/`` folder
    (``imgs/cam1/0001_01.jpg#0`` -> ``cam1``)."""
    from vireid.data.datasets.text_reid import IMAGE_FOLDER

    parts = relpath.replace("\\", "/").split("/")
    return parts[1] if len(parts) > 2 and parts[0] == IMAGE_FOLDER else parts[0]


def evaluate_mcma(model: MCMA, tokenizer: CaptionTokenizer | None, cfg: MCMAConfig, runtime: Runtime,
                  split: str = "test", gallery_dirs: Sequence[str] | None = None) -> dict[str, Any]:
    """The text-to-image protocol on ``split``: every caption against every image of the split.

    ``gallery_dirs``: keep only the images under these first-level folders and the captions of those
    images (e.g. the visible cameras ``cam1 cam2 cam4 cam5`` of the synthetic layout); a folder that holds
    no image of the split is an error naming the folders there are.
    """
    from vireid.errors import ConfigError
    from vireid.evaluation.protocols import evaluate_plan
    from vireid.evaluation.text_to_image import text_to_image_plan

    ds = load_text_dataset(cfg, split)
    test = list(ds.test)
    plan = ds.eval_plan()
    if gallery_dirs:
        present = sorted({image_folder(s.relpath) for s in test})
        unknown = sorted(set(gallery_dirs) - set(present))
        if unknown:
            raise ConfigError(f"--gallery-dir {', '.join(unknown)}: no {split} image of {cfg.data.root} lies there; "
                              f"folders: {', '.join(present)}")
        test = [s for s in test if image_folder(s.relpath) in set(gallery_dirs)]
        plan = text_to_image_plan(ds.name, test, {"split": split, "gallery_dirs": sorted(set(gallery_dirs))})
    image_rows = [i for i, s in enumerate(test) if int(s.modality) != int(Modality.TEXT)]
    text_rows = [i for i, s in enumerate(test) if int(s.modality) == int(Modality.TEXT)]
    feats = np.zeros((len(test), model.dim), np.float32)
    feats[image_rows] = embed_images(model, [test[i] for i in image_rows], cfg, runtime)
    feats[text_rows] = embed_captions(model, text_encode_fn(model, tokenizer), [ds.caption(test[i]) for i in text_rows],
                                      cfg.data.caption_length, runtime)
    result = evaluate_plan(plan, test, feats, distance="cosine", normalize=True)
    ids = {s.pid for s in test}
    result["settings"].update(flip=False, rerank={"method": "none"},
                              chance_rank1=round(100.0 * float(np.mean([
                                  sum(test[i].pid == test[j].pid for j in image_rows) / len(image_rows)
                                  for i in text_rows])), 2), identities=len(ids))
    return result
