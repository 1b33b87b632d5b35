"""Where gallery images come from: a manifest file, a folder of images, or a run's own test set.

Manifest (CSV with a header row, or JSON lines): ``path`` (relative to the manifest's folder, or
absolute) and ``modality`` (visible/infrared or an alias) are required; ``camera``, ``timestamp``
(Unix seconds or ISO 8601), ``track_id`` and ``identity`` are optional.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vireid.errors import ConfigError
from vireid.retrieval.index import GalleryRecord, parse_time
from vireid.types import Modality

__all__ = ["IMAGE_SUFFIXES", "records_from_folder", "records_from_manifest", "records_from_run_dataset"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MANIFEST_COLUMNS = ("path", "modality", "camera", "timestamp", "track_id", "identity")


def _modality(value: str, where: str) -> str:
    try:
        return Modality.parse(value).name.lower()
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def records_from_manifest(path: str | Path) -> list[GalleryRecord]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"manifest {path} line {number}: not valid JSON ({exc.msg})") from None
    else:
        reader = csv.DictReader(text.splitlines())
        rows = list(enumerate(reader, start=2))
    records = []
    for number, row in rows:
        where = f"manifest {path} line {number}"
        unknown = set(row) - set(MANIFEST_COLUMNS)
        if unknown:
            raise ConfigError(f"{where}: unknown column(s) {sorted(unknown)}; valid: {', '.join(MANIFEST_COLUMNS)}")
        if not row.get("path") or not row.get("modality"):
            raise ConfigError(f"{where}: 'path' and 'modality' are required")
        image = Path(row["path"])
        image = (image if image.is_absolute() else path.parent / image).resolve()
        if not image.is_file():
            raise ConfigError(f"{where}: image {image} does not exist")
        optional = {k: (str(row[k]) if row.get(k) not in (None, "") else None) for k in ("track_id", "identity")}
        records.append(GalleryRecord(str(image), str(row.get("camera") or ""), _modality(row["modality"], where),
                                     parse_time(row.get("timestamp"), f"{where}: timestamp"), **optional))
    if not records:
        raise ConfigError(f"manifest {path} lists no images")
    return records


def records_from_folder(folder: str | Path, modality: str, camera: str | None = None) -> list[GalleryRecord]:
    """Every image under ``folder`` (sorted); ``camera`` defaults to the first sub-folder of each image."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--images {folder} is not a folder")
    mod = _modality(modality, "--modality")
    records = []
    for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        rel = image.relative_to(folder)
        cam = camera if camera is not None else (rel.parts[0] if len(rel.parts) > 1 else "")
        records.append(GalleryRecord(str(image.resolve()), cam, mod))
    if not records:
        raise ConfigError(f"--images {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return records


def records_from_run_dataset(cfg, modality: str) -> tuple[list[GalleryRecord], Path]:
    """The test images of ``modality`` of the run's own dataset, identities known; and the dataset root."""
    from vireid.engine.build import build_dataset_from_config

    mod = Modality.parse(_modality(modality, "--modality"))
    dataset = build_dataset_from_config(cfg.data)
    samples = [s for s in dataset.test if s.modality == mod]
    if not samples:
        raise ConfigError(f"the run's dataset {cfg.data.root} has no {mod.name.lower()} test images")
    records = [GalleryRecord(str(Path(s.path).resolve()), f"cam{s.camid}", mod.name.lower(), identity=str(s.pid))
               for s in samples]
    return records, Path(cfg.data.root)
