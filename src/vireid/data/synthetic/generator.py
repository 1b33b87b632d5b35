"""Generate the procedural synthetic cross-modal dataset in the SYSU-MM01 layout.

The layout and tables are those of SYSU-MM01 (Wu et al., ICCV'17; PROTOCOLS.md "SYSU-MM01"), so
the SYSU reader and protocol serve the output unchanged::

    DIR/cam{1..6}/{pid:04d}/{0001..}.jpg     cams 1, 2, 4, 5 RGB; 3, 6 infrared (grayscale JPEG)
    DIR/exp/{train_id,val_id,test_id,available_id}.txt
    DIR/exp/rand_perm_cam.mat                 gallery permutations in the official kit's format
    DIR/contact_sheet.png, DIR/meta.json, DIR/README.txt

The output is a pure function of ``(seed, num_ids, images_per_camera, height, width)``: every
random draw comes from its own ``SeedSequence(seed, spawn_key=(purpose, pid, cam, image))``, so
an identity looks the same whatever ``num_ids`` is, and the same arguments give byte-identical
files (for a given NumPy/SciPy/Pillow/libjpeg build). The dataset is written into a temporary
sibling folder and renamed into place at the end, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vireid.data.synthetic.camera import CAMERA_MODALITY, CAMERA_ROOM, CANVAS_SCALE, render_scene, sample_camera
from vireid.data.synthetic.contact_sheet import make_contact_sheet
from vireid.data.synthetic.identity import IdentitySpec, sample_identity
from vireid.data.synthetic.render import render_image, sample_jitter
from vireid.data.synthetic.tables import build_rand_perm_cam, write_rand_perm_cam, write_split_files
from vireid.errors import ConfigError, DatasetError
from vireid.utils.io import atomic_write_json, atomic_write_text, replace_dir

logger = logging.getLogger(__name__)

GENERATOR_NAME = "vireid.data.synthetic"
GENERATOR_VERSION = "1.0"
CAMERAS = (1, 2, 3, 4, 5, 6)
INDOOR_VISIBLE = (1, 2)
INFRARED = (3, 6)
JPEG_QUALITY = 92
CAMERA_PRESENCE = 0.85   # chance that an identity appears in a given camera
SPLIT_SHARES = (0.6, 0.2, 0.2)   # train / val / test, like SYSU-MM01's 296 / 99 / 96

# purposes (first element of every spawn key)
_IDENTITY, _PLAN, _CAMERA, _SCENE, _IMAGE, _SPLIT, _PERM = range(7)


def make_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator for one purpose: ``SeedSequence(seed, spawn_key=key)``, independent of the others."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=tuple(int(k) for k in key)))


@dataclass(frozen=True)
class SyntheticConfig:
    """The arguments the dataset is a pure function of.

    ``images_per_camera`` is the most images an identity has in a camera it appears in; the
    count is drawn in ``[ceil(M / 2), M]``, and an identity appears in each camera with
    probability 0.85 (always in at least one of cams 1/2 and one infrared camera).
    """

    num_ids: int
    seed: int = 0
    images_per_camera: int = 8
    height: int = 128
    width: int = 64

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the offending argument."""
        checks = (("num_ids", self.num_ids, 5, 9999), ("seed", self.seed, 0, 2**63 - 1),
                  ("images_per_camera", self.images_per_camera, 1, 9999),
                  ("height", self.height, 32, 1024), ("width", self.width, 16, 1024))
        for name, value, low, high in checks:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"synthetic dataset: {name} must be an integer in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class DatasetPlan:
    """Which identity has how many images in which camera, and the identity split."""

    counts: dict[int, dict[int, int]]   # cam -> pid -> number of images (present cameras only)
    train_ids: tuple[int, ...]
    val_ids: tuple[int, ...]
    test_ids: tuple[int, ...]

    def num_images(self, cam: int | None = None) -> int:
        cams = CAMERAS if cam is None else (cam,)
        return sum(sum(self.counts[c].values()) for c in cams)


def plan_dataset(config: SyntheticConfig) -> DatasetPlan:
    """Draw camera presence, image counts and the 60/20/20 identity split."""
    config.validate()
    m = config.images_per_camera
    counts: dict[int, dict[int, int]] = {cam: {} for cam in CAMERAS}
    for pid in range(1, config.num_ids + 1):
        rng = make_rng(config.seed, _PLAN, pid)
        present = {cam for cam, p in zip(CAMERAS, rng.random(len(CAMERAS))) if p < CAMERA_PRESENCE}
        if not present & set(INFRARED):
            present.add(int(rng.choice(INFRARED)))
        if not present & set(INDOOR_VISIBLE):
            present.add(int(rng.choice(INDOOR_VISIBLE)))
        if not present & {1, 4, 5}:   # cam-3 queries ignore cam 2: keep a true match for them
            present.add(1)
        sizes = rng.integers(math.ceil(m / 2), m + 1, size=len(CAMERAS))
        for cam, n in zip(CAMERAS, sizes):
            if cam in present:
                counts[cam][pid] = int(n)
    perm = make_rng(config.seed, _SPLIT, config.num_ids).permutation(config.num_ids) + 1
    n_test = max(1, round(SPLIT_SHARES[2] * config.num_ids))
    n_val = max(1, round(SPLIT_SHARES[1] * config.num_ids))
    test = tuple(sorted(int(p) for p in perm[:n_test]))
    val = tuple(sorted(int(p) for p in perm[n_test:n_test + n_val]))
    train = tuple(sorted(int(p) for p in perm[n_test + n_val:]))
    return DatasetPlan(counts, train, val, test)


def identity_spec(config: SyntheticConfig, pid: int) -> IdentitySpec:
    """The appearance of identity ``pid`` (independent of ``num_ids``)."""
    return sample_identity(make_rng(config.seed, _IDENTITY, pid), pid)


def render_dataset_image(config: SyntheticConfig, pid: int, cam: int, index: int,
                         cache: dict[tuple[str, int], Any] | None = None) -> np.ndarray:
    """Image ``index`` (0-based) of ``pid`` in ``cam`` as uint8 (H, W, 3) or (H, W) for infrared.

    ``cache`` (any dict, reused across calls) keeps cameras, backgrounds and identities.
    """
    cache = {} if cache is None else cache
    if ("cam", cam) not in cache:
        camera = sample_camera(make_rng(config.seed, _CAMERA, cam),
                               make_rng(config.seed, _SCENE, CAMERA_ROOM[cam]), cam)
        bh = round(config.height * CANVAS_SCALE[0])
        bw = round(config.width * CANVAS_SCALE[1])
        cache[("cam", cam)] = (camera, render_scene(camera.scene, camera.modality, bh, bw))
    if ("id", pid) not in cache:
        cache[("id", pid)] = identity_spec(config, pid)
    camera, background = cache[("cam", cam)]
    rng = make_rng(config.seed, _IMAGE, pid, cam, index)
    jitter = sample_jitter(rng, camera)
    return render_image(cache[("id", pid)], camera, jitter, background, config.height, config.width, rng)


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"synthetic dataset: --out {out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        entries = sorted(p.name for p in out.iterdir())
        raise DatasetError(f"synthetic dataset: --out {out} is not empty ({len(entries)} entries, e.g. "
                           f"{', '.join(entries[:3])}); pass --force to replace it")
    meta = out / "meta.json"
    try:
        ours = json.loads(meta.read_text(encoding="utf-8")).get("generator") == GENERATOR_NAME
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise DatasetError(f"synthetic dataset: --force only replaces a folder written by this generator, "
                           f"and {out} has no {meta.name} naming {GENERATOR_NAME}; remove it yourself")


def generate_dataset(out_dir: str | os.PathLike[str], config: SyntheticConfig, *, force: bool = False,
                     sheet_rows: int = 12, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the dataset to ``out_dir`` and return the summary also saved as ``meta.json``.

    Refuses a non-empty ``out_dir`` unless ``force`` (and then only one this generator wrote).
    ``progress(done, total)`` is called after each identity.
    """
    config.validate()
    out = Path(out_dir).absolute()
    _check_target(out, force)
    plan = plan_dataset(config)
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_images(tmp, config, plan, progress)
        write_split_files(tmp / "exp", plan.train_ids, plan.val_ids, plan.test_ids)
        table = build_rand_perm_cam(plan.counts, config.num_ids, make_rng(config.seed, _PERM))
        write_rand_perm_cam(tmp / "exp" / "rand_perm_cam.mat", table)
        sheet_ids = list(plan.test_ids[:sheet_rows])
        make_contact_sheet(tmp, sheet_ids, tmp / "contact_sheet.png")
        meta = _meta(config, plan, sheet_ids)
        atomic_write_json(tmp / "meta.json", meta)
        atomic_write_text(tmp / "README.txt", _readme(meta))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.debug("wrote %d images of %d identities to %s in %.1f s", plan.num_images(), config.num_ids, out,
                time.perf_counter() - start)
    return meta


def _write_images(root: Path, config: SyntheticConfig, plan: DatasetPlan,
                  progress: Callable[[int, int], None] | None) -> None:
    cache: dict[tuple[str, int], Any] = {}
    for pid in range(1, config.num_ids + 1):
        for cam in CAMERAS:
            n = plan.counts[cam].get(pid, 0)
            if n == 0:
                continue
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                img = render_dataset_image(config, pid, cam, k, cache)
                Image.fromarray(img).save(folder / f"{k + 1:04d}.jpg", format="JPEG", quality=JPEG_QUALITY)
        cache.pop(("id", pid), None)
        if progress is not None:
            progress(pid, config.num_ids)




def _meta(config: SyntheticConfig, plan: DatasetPlan, sheet_ids: list[int]) -> dict[str, Any]:
    import PIL
    import scipy

    cameras = {f"cam{cam}": {"modality": CAMERA_MODALITY[cam].name.lower(), "ids": len(plan.counts[cam]),
                             "images": plan.num_images(cam)} for cam in CAMERAS}
    test = set(plan.test_ids)
    queries = sum(n for cam in INFRARED for pid, n in plan.counts[cam].items() if pid in test)
    return {
        "generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "config": asdict(config),
        "layout": "SYSU-MM01", "num_images": plan.num_images(), "cameras": cameras,
        "splits": {"train": len(plan.train_ids), "val": len(plan.val_ids), "test": len(plan.test_ids)},
        "test_infrared_queries": queries, "gallery_table": "exp/rand_perm_cam.mat (10 trials)",
        "contact_sheet_ids": sheet_ids,
        "built_with": {"numpy": np.__version__, "scipy": scipy.__version__, "pillow": PIL.__version__},
    }


def _readme(meta: dict[str, Any]) -> str:
    cfg = meta["config"]
    lines = [
        "Synthetic visible-infrared person re-identification dataset (SYSU-MM01 layout).",
        f"Generated by {meta['generator']} {meta['version']}: "
        f"vireid synth --ids {cfg['num_ids']} --seed {cfg['seed']} --images-per-camera "
        f"{cfg['images_per_camera']} --height {cfg['height']} --width {cfg['width']}",
        "",
        "cam1, cam2 (indoor) and cam4, cam5 (outdoor): visible RGB; cam3 (indoor, same room as cam2) and",
        "cam6 (outdoor): infrared, single-channel JPEG. Folders cam{c}/{pid:04d}/{0001..}.jpg.",
        "exp/{train,val,test,available}_id.txt: identity splits; exp/rand_perm_cam.mat: the gallery",
        "permutation table of this dataset, in the format of the SYSU-MM01 official evaluation kit.",
        "",
        f"images: {meta['num_images']}; identities: train {meta['splits']['train']}, val "
        f"{meta['splits']['val']}, test {meta['splits']['test']}; test infrared queries: "
        f"{meta['test_infrared_queries']}",
    ]
    for cam, info in meta["cameras"].items():
        lines.append(f"  {cam}: {info['modality']:8s} {info['ids']:5d} ids {info['images']:7d} images")
    lines += ["", "Colour does not carry over between modalities (infrared shows materials and body heat);",
              "body shape, clothing cut, patterns and accessories do. contact_sheet.png shows test ids",
              "(rows) in every camera (columns: visible cams, then infrared cams)."]
    return "\n".join(lines) + "\n"
