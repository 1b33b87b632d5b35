"""Helpers shared by the dataset readers: vendored split files, id/index files, folder listings.

Identity, camera and modality always come from path *tokens* of the dataset-relative path (a
folder named ``cam3``, a ``c05`` field of the file name), never from character positions, and
never from the root, so a root such as ``/data/camera_ready/`` changes nothing.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from vireid.errors import DatasetError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_CAM_FOLDER = re.compile(r"cam(\d+)", re.IGNORECASE)


def resource_path(*parts: str) -> Path:
    """A vendored file under ``vireid/resources/`` (split files of the benchmarks, see its README)."""
    return Path(str(importlib.resources.files("vireid").joinpath("resources", *parts)))


def first(items: Iterable[object], n: int = 5) -> str:
    """The first ``n`` items, comma-separated, for error messages."""
    items = list(items)
    text = ", ".join(str(x) for x in items[:n])
    return text + (f", ... ({len(items)} in all)" if len(items) > n else "")


def split_relpath(relpath: str) -> list[str]:
    """Path components of a dataset-relative path (either slash)."""
    return [p for p in str(relpath).replace("\\", "/").split("/") if p not in ("", ".")]


def cam_folder_number(component: str) -> int | None:
    """3 for a folder named ``cam3`` (any case), else ``None``."""
    m = _CAM_FOLDER.fullmatch(component)
    return int(m.group(1)) if m else None


def require_root(root: str | os.PathLike[str], dataset: str, layout: str) -> Path:
    """The root as a Path; :class:`DatasetError` naming the layout if it is not a folder."""
    path = Path(root)
    if not str(root):
        raise DatasetError(f"{dataset}: no dataset root given; expected {layout}")
    if not path.is_dir():
        raise DatasetError(f"{dataset}: dataset root {path} does not exist or is not a folder; expected {layout}")
    return path


def require_paths(paths: Sequence[Path], dataset: str, layout: str, kind: str = "folder") -> None:
    """:class:`DatasetError` naming the missing ones among ``paths`` (folders or files)."""
    check = Path.is_dir if kind == "folder" else Path.is_file
    missing = [str(p) for p in paths if not check(p)]
    if missing:
        raise DatasetError(f"{dataset}: missing {kind}(s) {first(missing)}; expected {layout}")


def read_id_line(path: Path, dataset: str) -> list[int]:
    """Identity ids of a SYSU-style id file: comma-separated integers (on one or more lines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{dataset}: cannot read id file {path}: {exc}") from exc
    tokens = [t.strip() for t in re.split(r"[,\s]+", text) if t.strip()]
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise DatasetError(f"{dataset}: id file {path} holds non-integer entries: {first(bad)}")
    return [int(t) for t in tokens]


def read_index_file(path: Path, dataset: str) -> list[tuple[str, int]]:
    """Lines ``relative/path label`` of an index file, as (normalised path, label)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{dataset}: cannot read index file {path}: {exc}") from exc
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise DatasetError(f"{dataset}: {path} line {number}: expected 'relative/path label', got {line!r}")
        out.append(("/".join(split_relpath(fields[0])), int(fields[1])))
    return out


def list_images(folder: Path) -> list[str]:
    """Image file names in ``folder``, sorted (empty if the folder does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


def missing_files(root: Path, relpaths: Iterable[str]) -> list[str]:
    """The relpaths under ``root`` that are not files."""
    return [p for p in relpaths if not (root / p).is_file()]
