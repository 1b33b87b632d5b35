"""Synthetic target domains: derived copies of a dataset, in the source's own layout.

DAN, Fu et al., TCSVT 2022 (seeds/000 slide "合成目标域" = synthetic target domain, Fig. 4-5, 8;
METHODS.md §2 "Synthetic target domains", defaults from [UNSPEC->defaults]). Every image of the
dataset's training and test splits is replaced by a transformed copy at the same relative path;
every other file (split lists, gallery tables, manifests) is copied unchanged, so the dataset's
reader and official protocol apply to the copy as they are. Kinds:

- ``noise``: ``x_t = clip(x + r)``, ``r ~ N(0, std^2)`` on [0, 1], both modalities;
- ``lighting``: ``x_t = Gamma(HSV(GF(x)))``: Gaussian filter (sigma), then ``V' = V^gamma`` on the
  HSV value (hue and saturation kept), ``gamma ~ U(gamma_min, gamma_max)``, both modalities;
- ``color`` (visible images only): ``x' = IDCT(w1 * DCT(x) * H(u, v) + m(u, v))`` per channel with the
  orthonormal 2-D DCT-II, the Gaussian high-pass ``H = 1 - exp(-(u^2 + v^2) / (2 R^2))`` and
  ``m = (1 - H) * DCT(c)`` for a constant image ``c`` of a random colour (the new low band);
- ``occlusion``: ``count`` rectangles of random colour, size (``area_min..area_max`` of the image)
  and position, on visible and infrared images.

Infrared images stay grey: their noise and occluder colour are the same in every channel.
The copy is a pure function of ``(source files, kind, params, seed)``: every image draws from its
own generator keyed by ``(seed, kind, relpath)``, so the order of processing does not matter.
The output is written into a temporary sibling folder and renamed into place at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import fft, ndimage

from vireid.types import Modality
from vireid.errors import ConfigError, DatasetError
from vireid.utils.io import atomic_write_json, replace_dir

logger = logging.getLogger(__name__)

GENERATOR_NAME = "vireid.methods.dan.domains"
META_FILE = "domain.json"
SHEET_FILE = "domain_contact_sheet.png"
JPEG_QUALITY = 95
AUTO_ORDER = ("sysu-mm01", "regdb", "llcm", "manifest")

# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class NoiseParams:
    std: float = 0.1


@dataclass(frozen=True)
class LightingParams:
    sigma: float = 1.0
    gamma_min: float = 1.5
    gamma_max: float = 3.0


@dataclass(frozen=True)
class ColorParams:
    radius: float = 8.0
    w1: float = 1.0


@dataclass(frozen=True)
class OcclusionParams:
    count: int = 1
    area_min: float = 0.05
    area_max: float = 0.25
    aspect_min: float = 0.3
    aspect_max: float = 3.3


PARAMS: dict[str, type] = {"noise": NoiseParams, "lighting": LightingParams, "color": ColorParams,
                           "occlusion": OcclusionParams}
KINDS = tuple(PARAMS)


def make_params(kind: str, **values: Any) -> Any:
    """The parameter record of ``kind`` with ``values`` overriding the defaults; ConfigError on bad names/values."""
    if kind not in PARAMS:
        raise ConfigError(f"unknown domain kind {kind!r}; valid: {', '.join(KINDS)}")
    cls = PARAMS[kind]
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"domain {kind}: unknown parameter(s) {unknown}; valid: {names}")
    for key, value in values.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (key == "count" and int(value) != value):
            raise ConfigError(f"domain {kind}: parameter {key} must be a {'whole ' if key == 'count' else ''}"
                              f"number, got {value!r}")
    params = cls(**{k: (int(v) if k == "count" else float(v)) for k, v in values.items()})
    ok, rule = {
        "noise": lambda q: (q.std >= 0, "std >= 0"),
        "lighting": lambda q: (q.sigma >= 0 and 0 < q.gamma_min <= q.gamma_max,
                               "sigma >= 0, 0 < gamma_min <= gamma_max"),
        "color": lambda q: (q.radius > 0 and q.w1 >= 0, "radius > 0, w1 >= 0"),
        "occlusion": lambda q: (q.count >= 0 and 0 < q.area_min <= q.area_max <= 1 and 0 < q.aspect_min <= q.aspect_max,
                                "count >= 0, 0 < area_min <= area_max <= 1, 0 < aspect_min <= aspect_max"),
    }[kind](params)
    if not ok:
        raise ConfigError(f"domain {kind}: parameters must satisfy {rule}, got {params}")
    return params


# --------------------------------------------------------------------------- transforms on arrays
# Images are float arrays (H, W, C) in [0, 1], C = 1 or 3.


def add_noise(x: np.ndarray, rng: np.random.Generator, std: float = 0.1, grey: bool = False) -> np.ndarray:
    """``clip(x + r, 0, 1)``, ``r ~ N(0, std^2)``; with ``grey`` the same ``r`` in every channel."""
    shape = x.shape[:2] + ((1,) if grey else x.shape[2:])
    return np.clip(x + rng.normal(0.0, std, size=shape), 0.0, 1.0)


def change_lighting(x: np.ndarray, rng: np.random.Generator, sigma: float = 1.0, gamma_min: float = 1.5,
                    gamma_max: float = 3.0) -> np.ndarray:
    """``Gamma(HSV(GF(x)))``: Gaussian blur, then ``V' = V^gamma`` with hue and saturation kept.

    With H and S fixed, every RGB channel scales by ``V' / V`` (``V = max_c x_c``), which is the
    exact HSV round trip without converting.
    """
    gamma = rng.uniform(gamma_min, gamma_max)
    blurred = ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0)) if sigma > 0 else x  # (H, W, C)
    v = blurred.max(axis=2, keepdims=True)  # (H, W, 1)
    scale = np.where(v > 0, np.power(np.maximum(v, 1e-12), gamma - 1.0), 0.0)  # V^gamma / V
    return np.clip(blurred * scale, 0.0, 1.0)


def highpass(height: int, width: int, radius: float) -> np.ndarray:
    """``H(u, v) = 1 - exp(-(u^2 + v^2) / (2 R^2))`` over DCT frequency indices (H, W)."""
    u = np.arange(height, dtype=np.float64)[:, None]
    v = np.arange(width, dtype=np.float64)[None, :]
    return 1.0 - np.exp(-(u * u + v * v) / (2.0 * radius * radius))


def change_color(x: np.ndarray, rng: np.random.Generator, radius: float = 8.0, w1: float = 1.0,
                 colour: Sequence[float] | None = None) -> np.ndarray:
    """``IDCT(w1 * DCT(x) * H + (1 - H) * DCT(c))`` per channel, ``c`` a constant image of ``colour``
    (default: uniform random in [0, 1]^C); orthonormal 2-D DCT-II (``scipy.fft.dctn``)."""
    h, w, c = x.shape
    col = rng.uniform(0.0, 1.0, size=c) if colour is None else np.asarray(colour, dtype=np.float64)
    hp = highpass(h, w, radius)[:, :, None]  # (H, W, 1)
    spec = fft.dctn(x, type=2, axes=(0, 1), norm="ortho")  # (H, W, C)
    const = fft.dctn(np.broadcast_to(col, x.shape).astype(np.float64), type=2, axes=(0, 1), norm="ortho")  # (H, W, C)
    out = fft.idctn(w1 * spec * hp + (1.0 - hp) * const, type=2, axes=(0, 1), norm="ortho")  # (H, W, C)
    return np.clip(out, 0.0, 1.0)


def occlude(x: np.ndarray, rng: np.random.Generator, count: int = 1, area_min: float = 0.05,
            area_max: float = 0.25, aspect_min: float = 0.3, aspect_max: float = 3.3,
            grey: bool = False) -> np.ndarray:
    """Paint ``count`` rectangles: area share ``U(area_min, area_max)``, aspect (h/w) log-uniform in
    ``[aspect_min, aspect_max]``, position uniform, colour uniform (one grey level with ``grey``)."""
    out = x.copy()
    h, w, c = x.shape
    for _ in range(count):
        area = rng.uniform(area_min, area_max) * h * w
        aspect = float(np.exp(rng.uniform(np.log(aspect_min), np.log(aspect_max))))
        rh = int(np.clip(round(np.sqrt(area * aspect)), 1, h))
        rw = int(np.clip(round(np.sqrt(area / aspect)), 1, w))
        top = int(rng.integers(0, h - rh + 1))
        left = int(rng.integers(0, w - rw + 1))
        colour = np.full(c, rng.uniform()) if grey else rng.uniform(0.0, 1.0, size=c)
        out[top:top + rh, left:left + rw, :] = colour
    return out


def transform_array(x: np.ndarray, kind: str, modality: Modality, rng: np.random.Generator,
                    params: Any) -> np.ndarray | None:
    """Apply domain ``kind`` to one image (H, W, C) in [0, 1]; ``None`` when the kind leaves it as it is."""
    grey = modality == Modality.INFRARED
    if kind == "noise":
        return add_noise(x, rng, params.std, grey=grey)
    if kind == "lighting":
        return change_lighting(x, rng, params.sigma, params.gamma_min, params.gamma_max)
    if kind == "color":
        return None if grey else change_color(x, rng, params.radius, params.w1)
    if kind == "occlusion":
        return occlude(x, rng, params.count, params.area_min, params.area_max, params.aspect_min,
                       params.aspect_max, grey=grey)
    raise ConfigError(f"unknown domain kind {kind!r}; valid: {', '.join(KINDS)}")


# --------------------------------------------------------------------------- images


def image_rng(seed: int, kind: str, relpath: str) -> np.random.Generator:
    """The generator of one image: ``SeedSequence(seed, spawn_key=sha256(kind, relpath))``."""
    digest = hashlib.sha256(f"{kind}\0{relpath.replace(os.sep, '/')}".encode()).digest()
    key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=key))


def transform_image(image: Image.Image, kind: str, modality: Modality, seed: int, relpath: str,
                    params: Any) -> Image.Image | None:
    """The transformed copy of ``image`` (same size and mode), or ``None`` when ``kind`` leaves it unchanged."""
    mode = image.mode if image.mode in ("L", "RGB") else "RGB"
    arr = np.asarray(image.convert(mode), dtype=np.float64) / 255.0
    x = arr[:, :, None] if arr.ndim == 2 else arr  # (H, W, C)
    y = transform_array(x, kind, modality, image_rng(seed, kind, relpath), params)
    if y is None:
        return None
    out = np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)  # (H, W, C)
    return Image.fromarray(out[:, :, 0] if mode == "L" else out, mode=mode)


def _save(image: Image.Image, path: Path) -> None:
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        image.save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(path)


# --------------------------------------------------------------------------- datasets


def detect_dataset(root: str | os.PathLike[str]) -> str:
    """The first reader of :data:`AUTO_ORDER` that reads ``root``; DatasetError listing each reader's complaint."""
    from vireid.data.datasets import build_dataset

    errors = []
    for name in AUTO_ORDER:
        try:
            build_dataset(name, str(root))
            return name
        except (DatasetError, ConfigError, OSError) as exc:
            errors.append(f"{name}: {exc}")
    raise DatasetError(f"no dataset reader recognises {root}; pass --dataset. " + " | ".join(errors))


def dataset_images(root: Path, dataset: str) -> dict[str, Modality]:
    """relpath (relative to ``root``) -> modality of every training and test image of the dataset."""
    from vireid.data.datasets import build_dataset

    ds = build_dataset(dataset, str(root))
    out: dict[str, Modality] = {}
    outside = []
    for s in list(ds.train) + list(ds.test):
        try:
            rel = Path(s.path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            outside.append(s.path)
            continue
        out[rel] = Modality(int(s.modality))
    if outside:
        raise DatasetError(f"{len(outside)} images of the {dataset} dataset lie outside {root} (image_root?): "
                           f"{', '.join(outside[:5])}")
    if not out:
        raise DatasetError(f"the {dataset} dataset at {root} lists no images")
    return out


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"domains: --out {out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise DatasetError(f"domains: --out {out} is not empty; pass --force to replace it")
    try:
        ours = json.loads((out / META_FILE).read_text(encoding="utf-8")).get("generator") == GENERATOR_NAME
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise DatasetError(f"domains: --force only replaces a folder this command wrote, and {out} has no "
                           f"{META_FILE} naming {GENERATOR_NAME}; remove it yourself")




def _sheet_picks(images: dict[str, Modality], per_modality: int) -> list[str]:
    picks = []
    for m in Modality:
        rel = sorted(p for p, mod in images.items() if mod == m)
        if rel and per_modality > 0:
            step = max(1, len(rel) // per_modality)
            picks += rel[::step][:per_modality]
    return picks


def make_domain_sheet(source: Path, out: Path, relpaths: Sequence[str], images: dict[str, Modality],
                      sheet_path: Path, cell: tuple[int, int] = (128, 64)) -> tuple[int, int]:
    """Before (top row) / after (bottom row) thumbnails of ``relpaths``; returns the sheet's (width, height)."""
    from PIL import ImageDraw

    from vireid.utils.io import atomic_path

    ch, cw = cell
    gap, label_w, header = 2, 44, 14
    width = label_w + len(relpaths) * (cw + gap)
    height = header + 2 * (ch + gap)
    sheet = Image.new("RGB", (max(width, label_w + 1), height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((2, header + ch // 2 - 5), "before", fill=(0, 0, 0))
    draw.text((2, header + ch + gap + ch // 2 - 5), "after", fill=(0, 0, 0))
    for col, rel in enumerate(relpaths):
        x0 = label_w + col * (cw + gap)
        draw.text((x0 + 2, 1), "RGB" if images[rel] == Modality.VISIBLE else "IR", fill=(0, 0, 0))
        for row, root in enumerate((source, out)):
            with Image.open(root / rel) as img:
                thumb = img.convert("RGB").resize((cw, ch), Image.Resampling.BILINEAR)
            sheet.paste(thumb, (x0, header + row * (ch + gap)))
    with atomic_path(sheet_path) as tmp:
        sheet.save(tmp, format="PNG")
    return sheet.size


def transform_dataset(source: str | os.PathLike[str], out: str | os.PathLike[str], kind: str, seed: int = 0, *,
                      dataset: str = "auto", params: dict[str, Any] | None = None, force: bool = False,
                      sheet_per_modality: int = 6,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the ``kind`` version of the dataset under ``source`` to ``out``; return the summary (``domain.json``).

    Args:
        source: dataset root folder (for a manifest dataset, the folder holding the manifest and images).
        dataset: reader name, or ``auto`` (the first of sysu-mm01, regdb, llcm, manifest that reads it).
        params: overrides of the kind's defaults (:data:`PARAMS`).
        force: replace a non-empty ``out`` (only one this function wrote).
        sheet_per_modality: images per modality on the before/after contact sheet (``domain_contact_sheet.png``).
        progress: ``progress(done, total)`` after each image.
    """
    p = make_params(kind, **(params or {}))
    src = Path(source).absolute()
    dst = Path(out).absolute()
    if not src.is_dir():
        raise DatasetError(f"domains: --source {src} is not a folder")
    if dst == src or src in dst.parents:
        raise DatasetError(f"domains: --out {dst} must lie outside --source {src}")
    name = detect_dataset(src) if dataset == "auto" else dataset
    images = dataset_images(src, name)
    _check_target(dst, force)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    start = time.perf_counter()
    counts = {"transformed": 0, "unchanged_images": 0, "copied_files": 0}
    try:
        files = sorted(f.relative_to(src).as_posix() for f in src.rglob("*") if f.is_file())
        done = 0
        for rel in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            modality = images.get(rel)
            new = None
            if modality is not None:
                try:
                    with Image.open(src / rel) as img:
                        img.load()
                        new = transform_image(img, kind, modality, seed, rel, p)
                except OSError as exc:
                    raise DatasetError(f"domains: cannot read image {src / rel}: {exc}") from None
            if new is not None:
                _save(new, target)
                counts["transformed"] += 1
            else:
                shutil.copyfile(src / rel, target)
                counts["unchanged_images" if modality is not None else "copied_files"] += 1
            if modality is not None:
                done += 1
                if progress is not None:
                    progress(done, len(images))
        missing = sorted(set(images) - set(files))
        if missing:
            raise DatasetError(f"domains: {len(missing)} images the {name} reader lists are not files under {src}: "
                               f"{', '.join(missing[:5])}")
        meta = {
            "generator": GENERATOR_NAME, "kind": kind, "seed": int(seed), "params": dataclasses.asdict(p),
            "source": str(src), "dataset": name, "images": len(images), **counts,
            "contact_sheet": SHEET_FILE,
        }
        picks = _sheet_picks(images, sheet_per_modality)
        if picks:
            make_domain_sheet(src, tmp, picks, images, tmp / SHEET_FILE)
        atomic_write_json(tmp / META_FILE, meta)
        replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("domain %s of %s (%s): %d images transformed, %d unchanged, %d other files copied, in %.1f s",
                kind, src, name, counts["transformed"], counts["unchanged_images"], counts["copied_files"],
                time.perf_counter() - start)
    return meta


__all__ = ["ColorParams", "KINDS", "LightingParams", "NoiseParams", "OcclusionParams", "PARAMS", "add_noise",
           "change_color", "change_lighting", "detect_dataset", "highpass", "image_rng", "make_params", "occlude",
           "transform_array", "transform_dataset", "transform_image"]
