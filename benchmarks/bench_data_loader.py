"""Benchmark: one training epoch read from disk vs ``in_memory=True`` (decode once).

Writes N small JPEGs (128x64, half visible RGB, half infrared grayscale) to a temporary folder,
then times one epoch of ``build_train_loader`` (P=8, K=4, 288x144 output as AGW by default) both ways, plus
the one-off decoding cost of the cache and its peak Python-heap memory (tracemalloc).

    .venv/bin/python benchmarks/bench_data_loader.py --images 3000 --workers 0
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from vireid.data.loader import ImageDataset, build_train_loader
from vireid.data.transforms import build_train_transform
from vireid.types import Modality, Sample


def write_images(root: Path, n: int, ids: int) -> list[Sample]:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        pid, mod = (i // 2) % ids, Modality(i % 2)
        noise = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
        img = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2))  # photo-like, not pure noise
        if mod == Modality.INFRARED:
            img = img.convert("L")
        rel = f"{'vis' if mod == Modality.VISIBLE else 'ir'}/{pid:04d}/{i:05d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / rel, quality=90)
        samples.append(Sample(rel, pid, 1 + int(mod), mod, str(root)))
    return samples


def epoch_seconds(samples: list[Sample], workers: int, repeats: int,
                  size: tuple[int, int]) -> dict[bool, tuple[float, float]]:
    """in_memory -> (best epoch seconds over ``repeats``, construction seconds); epochs alternate variants."""
    loaders, build = {}, {}
    for in_memory in (False, True):
        start = time.perf_counter()
        loaders[in_memory] = build_train_loader(samples, height=size[0], width=size[1], num_ids=8, num_instances=4,
                                                seed=0, num_workers=workers, in_memory=in_memory, random_erasing=0.0)
        build[in_memory] = time.perf_counter() - start
    best = {False: float("inf"), True: float("inf")}
    for epoch in range(repeats):
        for in_memory, loader in loaders.items():
            torch.manual_seed(epoch)
            loader.batch_sampler.set_epoch(epoch)
            start = time.perf_counter()
            for _ in loader:
                pass
            best[in_memory] = min(best[in_memory], time.perf_counter() - start)
    return {k: (best[k], build[k]) for k in best}


def decode_only_seconds(samples: list[Sample], in_memory: bool) -> float:
    """One pass of image loading alone (no transform), per item as the dataset does it."""
    ds = ImageDataset(samples, build_train_transform(288, 144), in_memory=in_memory)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds.load_image(i)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--ids", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=288)
    parser.add_argument("--width", type=int, default=144)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        samples = write_images(Path(tmp), args.images, args.ids)
        tracemalloc.start()
        ImageDataset(samples, build_train_transform(288, 144), in_memory=True)
        cache_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        load_disk = decode_only_seconds(samples, False)
        load_mem = decode_only_seconds(samples, True)
        timings = epoch_seconds(samples, args.workers, args.repeats, (args.height, args.width))
        (disk, disk_build), (mem, mem_build) = timings[False], timings[True]

    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv])
    print(f"`{cmd}`  ({args.images} JPEGs 128x64, epoch = {args.images // 2 // 32 + 1} batches of 8 x (4+4), "
          f"output {args.height}x{args.width}, workers={args.workers}, torch threads=1)\n")
    print("| variant | one-off build (s) | image loading only, 1 pass (s) | train epoch (s) | epoch ratio vs disk |")
    print("|---|---|---|---|---|")
    print(f"| on disk (baseline) | {disk_build:.2f} | {load_disk:.2f} | {disk:.2f} | 1.00 |")
    print(f"| in_memory | {mem_build:.2f} | {load_mem:.2f} | {mem:.2f} | {mem / disk:.2f} |")
    print(f"\nSaved per epoch: {disk - mem:.2f} s ({100 * (disk - mem) / disk:.0f} %). "
          f"Cache build peak Python-heap memory (tracemalloc): {cache_peak / 2**20:.1f} MiB "
          f"(packed pixels: {args.images // 2 * 128 * 64 * 4 / 2**20:.1f} MiB).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
