"""``vireid init-recipe --dataset regdb --root DIR``: a commented training recipe fitted to the data and this machine.

Reads the dataset once (its training identities and images) and writes a YAML recipe:

- CPU: the measured CPU recipe (``configs/demo_cpu.yaml``: AGW, two-stream ResNet-18 from scratch,
  64x32, AdamW, bf16, one thread), its schedule expressed for 16 epochs
  (``optim.schedule_for_epochs``) and ``optim.epochs`` chosen so that training takes about 1,500
  optimiser steps whatever the data size;
- CUDA: the papers' recipe (AGW, ResNet-50, ImageNet weights, 288x144, SGD), 60 epochs;
- validation: held-out identities when there are 100 or more training identities, else held-out
  images of every identity (``data.val_split: images``); the test set is never used;
- ``eval.protocol``: the settings the dataset's protocol takes (RegDB: direction and the trained
  trial; SYSU-MM01: mode, shots, sampling; ...).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from vireid.errors import ConfigError

PROTOCOLS = {
    "sysu-mm01": "{mode: all, shots: 1, sampling: official}   # SYSU-MM01: all-search, single-shot, official table",
    "regdb": "{direction: visible-to-thermal}   # RegDB: the trained trial only (data.options.trial)",
    "llcm": "{direction: infrared-to-visible}",
    "manifest": "{}   # the manifest's query/gallery split",
}
TARGET_STEPS_CPU = 1500  # the demo's budget: 16 epochs x 91 batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=sorted(PROTOCOLS), help="dataset layout of --root")
    parser.add_argument("--root", required=True, help="dataset root folder (or manifest file)")
    parser.add_argument("--out", help="recipe file to write (default: print it)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="fit the recipe to this device (auto: CUDA when available)")
    parser.add_argument("--trial", type=int, default=1, help="RegDB trial to train (1..10)")


def _counts(dataset: str, root: str, trial: int) -> tuple[int, int]:
    from vireid.data.datasets import build_dataset

    options = {"trial": trial} if dataset == "regdb" else {}
    ds = build_dataset(dataset, root, **options)
    return len({s.pid for s in ds.train}), len(ds.train)


def make_recipe(dataset: str, root: str, num_ids: int, num_images: int, device: str, trial: int = 1) -> str:
    """The recipe text for a dataset of ``num_ids`` training identities and ``num_images`` images."""
    cuda = device == "cuda"
    p, k = 8, 4
    batch = p * 2 * k
    per_epoch = max(1, num_images // batch)
    small = num_ids < 100
    val = ("  val_fraction: 0.15\n  val_split: images        # small data: hold out images of every identity, "
           "keep all identities\n" if small else
           "  val_fraction: 0.15\n  val_split: identities    # unseen training identities select the model\n")
    options = f"  options: {{trial: {trial}}}\n" if dataset == "regdb" else ""
    if cuda:
        epochs = 60
        model = ("  name: agw\n  params: {arch: resnet50, num_specific_stages: 1, last_stride: 1, non_local: true,\n"
                 "           pretrained: imagenet}   # downloads through torchvision once unless --offline\n")
        optim = ("  name: sgd\n  lr: 0.1\n  backbone_lr_mult: 0.1\n  weight_decay: 5.0e-4\n"
                 f"  epochs: {epochs}\n  warmup_epochs: 10\n  milestones: [20, 50]\n  schedule_for_epochs: 60\n")
        data_size = "  height: 288\n  width: 144\n  num_workers: 4\n"
        runtime = "  device: auto\n  precision: fp16\n  channels_last: true\n  seed: 0\n"
    else:
        epochs = max(4, min(200, math.ceil(TARGET_STEPS_CPU / per_epoch)))
        model = ("  name: agw\n  params: {arch: resnet18, num_specific_stages: 1, last_stride: 1, non_local: true,\n"
                 "           pretrained: null}   # the measured CPU recipe trains from scratch\n")
        optim = ("  name: adamw\n  lr: 0.001\n  backbone_lr_mult: 1.0\n  weight_decay: 5.0e-4\n"
                 f"  epochs: {epochs}                # about {TARGET_STEPS_CPU} steps of {batch} images "
                 f"({per_epoch} per epoch)\n"
                 "  warmup_epochs: 2\n  milestones: [11, 14]\n  schedule_for_epochs: 16   # warm-up and milestones "
                 "scale with epochs\n")
        data_size = "  height: 64\n  width: 32\n  in_memory: true\n  num_workers: 1\n"
        runtime = ("  device: cpu\n  precision: bf16\n  channels_last: true\n  seed: 0\n"
                   "  num_threads: 1            # one compute thread is fastest on shared cores\n")
    return (
        f"# Written by `vireid init-recipe --dataset {dataset} --root {root}` for {num_ids} training identities,\n"
        f"# {num_images} training images, on {'CUDA' if cuda else 'the CPU'}. Edit freely; `vireid train --config "
        f"THIS.yaml`.\n"
        f"name: {dataset.replace('-', '_')}_{'cuda' if cuda else 'cpu'}\noutput_dir: runs\n"
        f"data:\n  dataset: {dataset}\n  root: {root}\n{options}{data_size}"
        f"  num_ids: {p}                # P identities per batch\n  num_instances: {k}          # K images per "
        f"identity and modality (batch = P x 2K = {batch})\n  pad: 4\n  flip: true\n"
        f"  augment: [{{name: channel_exchange, params: {{p: 0.5}}}}]   # CAJ channel exchange on half the visible "
        f"images\n{val}"
        f"model:\n{model}"
        "losses:\n  - {name: cross_entropy, weight: 1.0, params: {epsilon: 0.1}}\n  - {name: wrt, weight: 1.0}\n"
        f"optim:\n{optim}  gamma: 0.1\n"
        f"eval:\n  every: {max(1, epochs // 4)}\n  metric: mAP\n  protocol: {PROTOCOLS[dataset]}\n"
        f"runtime:\n{runtime}"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from vireid.config import load_config
    from vireid.utils.io import atomic_path

    if args.dataset == "regdb" and not 1 <= args.trial <= 10:
        raise ConfigError(f"--trial must be in 1..10, got {args.trial}")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    num_ids, num_images = _counts(args.dataset, args.root, args.trial)
    text = make_recipe(args.dataset, args.root, num_ids, num_images, device, args.trial)
    if args.out:
        with atomic_path(args.out) as tmp:  # validated before it replaces anything
            tmp.write_text(text)
            load_config(tmp)
        print(f"wrote {args.out} ({num_ids} training identities, {num_images} images, {device})")
    else:
        print(text, end="")
    return 0
