"""A dataset described by a manifest file (CSV with a header row, or JSON lines).

Columns: ``path`` (relative to the manifest's folder, or to ``image_root``), ``identity`` (int),
``camera`` (int), ``modality`` (visible/infrared or an alias of :meth:`Modality.parse`) and
``split``: ``train``, ``query``, ``gallery`` or ``test``. The plan is one trial, query vs gallery,
or, with ``test`` rows, the test images of one modality against the other's (infrared queries by
default). Exclusion and CMC definition are settings, recorded with the numbers.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import first, split_relpath
from vireid.types import Modality, Sample
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.metrics import CMC_MODES
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial

COLUMNS = ("path", "identity", "camera", "modality", "split")
SPLITS = ("train", "query", "gallery", "test")
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
DIRECTIONS = {"infrared-to-visible": (Modality.INFRARED, Modality.VISIBLE),
              "visible-to-infrared": (Modality.VISIBLE, Modality.INFRARED)}


def _manifest_file(root: str) -> Path:
    path = Path(root)
    if not str(root):
        raise DatasetError(f"manifest: no manifest given; expected {ManifestDataset.layout}")
    if path.is_dir():
        found = [path / n for n in MANIFEST_NAMES if (path / n).is_file()]
        if len(found) != 1:
            raise DatasetError(f"manifest: folder {path} must hold exactly one of {MANIFEST_NAMES}, found "
                               f"{[p.name for p in found]}; expected {ManifestDataset.layout}")
        return found[0]
    if not path.is_file():
        raise DatasetError(f"manifest: file {path} does not exist; expected {ManifestDataset.layout}")
    return path


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV or JSON-lines manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(f"manifest {path} line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                           "save the manifest as UTF-8") from None
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"manifest {path} line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"manifest {path} line {number}: expected a JSON object")
            rows.append((number, row))
        return rows
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"manifest {path}: missing column(s) {missing} in the header {reader.fieldnames}; "
                           f"expected {list(COLUMNS)}")
    return [(number, row) for number, row in enumerate(reader, start=2)]


_ABSOLUTE = re.compile(r"^(?:[/\\]|[A-Za-z]:)")


def _integer(value: Any, column: str) -> int:
    """An integer cell: an int, an integral float (JSON ``3.0``) or a string of digits; never ``12.7``."""
    if isinstance(value, bool):
        raise ValueError(f"{column} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    raise ValueError(f"{column} must be an integer, got {value!r}")


def _check_paths(rows: list[tuple[Sample, str]], base: str, manifest: Path, allow_outside_root: bool) -> None:
    """Every listed path stays under ``base`` (unless allowed) and, where it exists, is a regular file."""
    root = os.path.realpath(base)
    outside, irregular = [], []
    for sample, _ in rows:
        parts = sample.relpath.split("/")
        if not allow_outside_root and (sample.relpath.startswith("/") or ".." in parts):
            outside.append(sample.relpath)
            continue
        full = os.path.join(base, sample.relpath)
        try:
            st = os.stat(full)  # follows links; does not open (a FIFO would block)
        except OSError:
            continue  # missing: reported when the image is read
        if not stat.S_ISREG(st.st_mode):
            irregular.append(sample.relpath)
        elif not allow_outside_root and os.path.commonpath([root, os.path.realpath(full)]) != root:
            outside.append(f"{sample.relpath} (a link to {os.path.realpath(full)})")
    if outside:
        raise DatasetError(f"manifest {manifest}: {len(outside)} path(s) leave the image root {base}: {first(outside)}; "
                           "paths must be relative and stay under it (data.options.allow_outside_root: true "
                           "allows otherwise)")
    if irregular:
        raise DatasetError(f"manifest {manifest}: {len(irregular)} path(s) are not regular files (folders, FIFOs, "
                           f"sockets or devices): {first(irregular)}; expected image files")


@functools.lru_cache(maxsize=4)
def _parse(path_str: str, mtime: float) -> tuple[tuple[Sample, str], ...]:
    path = Path(path_str)
    out = []
    seen: dict[str, int] = {}
    for number, row in _read_rows(path):
        missing = [c for c in COLUMNS if row.get(c) in (None, "")]
        if missing:
            raise DatasetError(f"manifest {path} line {number}: missing value(s) for {missing}")
        raw = str(row["path"]).strip()
        relpath = ("/" if _ABSOLUTE.match(raw) else "") + "/".join(split_relpath(raw))
        split = str(row["split"]).strip().lower()
        if split not in SPLITS:
            raise DatasetError(f"manifest {path} line {number}: split must be one of {SPLITS}, got {row['split']!r}")
        try:
            pid, camid = _integer(row["identity"], "identity"), _integer(row["camera"], "camera")
            modality = Modality.parse(row["modality"])
        except ValueError as exc:
            raise DatasetError(f"manifest {path} line {number}: {exc}") from exc
        if relpath in seen:
            raise DatasetError(f"manifest {path} line {number}: path {relpath!r} already listed "
                               f"on line {seen[relpath]}")
        seen[relpath] = number
        out.append((Sample(relpath, pid, camid, modality), split))
    if not out:
        raise DatasetError(f"manifest {path} has no rows; expected {ManifestDataset.layout}")
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _lookup(path_str: str, mtime: float) -> dict[str, Sample]:
    """relpath -> row of a manifest (cached per file version; never mutated)."""
    return {s.relpath: s for s, _ in _parse(path_str, mtime)}


class ManifestDataset(ReIDDataset):
    """Any dataset listed in a manifest file (``root`` is the file, or a folder holding manifest.csv/.jsonl)."""

    name = "manifest"
    layout = ("a manifest file (CSV with header, or JSON lines) with columns path, identity, camera, modality, "
              "split (train|query|gallery|test); ROOT is the file or a folder holding manifest.csv or manifest.jsonl")

    def __init__(self, root: str, train: list[Sample], test: list[Sample], splits: list[str], manifest: str) -> None:
        super().__init__(root, train, test)
        self.splits = splits  # split of each test sample: query, gallery or test
        self.manifest = manifest

    @classmethod
    def load(cls, root: str, image_root: str | None = None, allow_outside_root: bool = False) -> "ManifestDataset":
        """Read the manifest; image paths are relative to ``image_root`` (default: the manifest's folder).

        Paths must stay under that folder (no ``..``, not absolute, no link out of it) unless
        ``allow_outside_root``, and listed files that exist must be regular files.
        """
        path = _manifest_file(root)
        rows = _parse(str(path), path.stat().st_mtime)
        base = str(image_root) if image_root is not None else str(path.parent)
        _check_paths(list(rows), base, path, allow_outside_root)
        train = [Sample(s.relpath, s.pid, s.camid, s.modality, base) for s, sp in rows if sp == "train"]
        test_rows = [(Sample(s.relpath, s.pid, s.camid, s.modality, base), sp) for s, sp in rows if sp != "train"]
        kinds = {sp for _, sp in test_rows}
        if "test" in kinds and kinds & {"query", "gallery"}:
            raise DatasetError(f"manifest {path}: mixes 'test' rows with 'query'/'gallery' rows; use one scheme")
        if kinds & {"query", "gallery"} and kinds != {"query", "gallery"}:
            raise DatasetError(f"manifest {path}: has {sorted(kinds)} rows but needs both 'query' and 'gallery'")
        return cls(base, train, [s for s, _ in test_rows], [sp for _, sp in test_rows], str(path))

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        """The manifest row of ``relpath`` (``root``: the manifest file or its folder)."""
        path = _manifest_file(root)
        sample = _lookup(str(path), path.stat().st_mtime).get("/".join(split_relpath(relpath)))
        if sample is None:
            raise DatasetError(f"manifest {path}: path {relpath!r} is not listed")
        return Sample(sample.relpath, sample.pid, sample.camid, sample.modality, str(path.parent))

    def eval_plan(self, exclusion: str = "same-id-same-camera", cmc_mode: Literal["identity", "image"] = "image",
                  direction: Literal["infrared-to-visible", "visible-to-infrared"] = "infrared-to-visible") -> EvalPlan:
        """One trial: query vs gallery rows, or ``direction`` over the ``test`` rows."""
        if cmc_mode not in CMC_MODES:
            raise ConfigError(f"manifest: cmc_mode must be one of {CMC_MODES}, got {cmc_mode!r}")
        try:
            excl = Exclusion.parse(exclusion)
        except ValueError as exc:
            raise ConfigError(f"manifest: {exc}") from exc
        if not self.test:
            raise DatasetError(f"manifest {self.manifest}: no query/gallery or test rows")
        settings: dict[str, Any] = {"protocol": f"manifest {self.manifest}"}
        if "test" in self.splits:
            if direction not in DIRECTIONS:
                raise ConfigError(f"manifest: direction must be one of {list(DIRECTIONS)}, got {direction!r}")
            q_mod, g_mod = DIRECTIONS[direction]
            q = [i for i, s in enumerate(self.test) if s.modality == q_mod]
            g = [i for i, s in enumerate(self.test) if s.modality == g_mod]
            settings.update(direction=direction, query=f"{q_mod.name.lower()} test rows",
                            gallery=f"{g_mod.name.lower()} test rows")
        else:
            q = [i for i, sp in enumerate(self.splits) if sp == "query"]
            g = [i for i, sp in enumerate(self.splits) if sp == "gallery"]
            settings.update(query="query rows", gallery="gallery rows")
        if not q or not g:
            raise DatasetError(f"manifest {self.manifest}: the plan has {len(q)} queries and {len(g)} gallery images; "
                               f"first test rows: {first(s.relpath for s in self.test)}")
        return EvalPlan(self.name, settings, [Trial(np.array(q), np.array(g))], cmc_mode=cmc_mode, exclusion=excl)
