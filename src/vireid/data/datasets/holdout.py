"""Test-only occluded and partial re-ID sets: Occluded-REID, Partial-REID, Partial-iLIDS, P-ETHZ
(PROTOCOLS.md "Single-modality, occluded, partial and text-based re-ID").

Each has a query folder (occluded or partial bodies) and a gallery folder (whole bodies), no
training split; they are scored cross-domain with a model trained on Market-1501. There are no
cameras in the names, so query images get camera 1 and gallery images camera 2: the Market rule
(same identity AND same camera removed) then removes nothing, where one camera id for all would
delete every true match. Repackaged copies name the folders differently; every name in
``query_folders``/``gallery_folders`` is accepted (or use the manifest reader).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from vireid.data.datasets.common import first, require_root, split_relpath
from vireid.data.datasets.counts import check_count_mode, check_counts, split_counts
from vireid.data.datasets.market_style import SplitDataset
from vireid.errors import ConfigError, DatasetError
from vireid.types import Modality, Sample

QUERY_CAMERA, GALLERY_CAMERA = 1, 2
EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
PROTOCOL = ("cross-domain test set (train on Market-1501): occluded/partial queries vs whole-body gallery, query "
            "camera 1, gallery camera 2 (so same-id-same-camera removal removes nothing), image-level CMC, "
            "non-interpolated AP over valid queries")


def _pid_from_folder(parts: list[str]) -> str:
    return parts[-2]


def _pid_from_prefix(parts: list[str]) -> str:
    return parts[-1].split("_")[0]


def _pid_from_stem(parts: list[str]) -> str:
    return os.path.splitext(parts[-1])[0]


class HoldoutDataset(SplitDataset):
    """Base of the query-folder / gallery-folder test sets."""

    query_folders: ClassVar[tuple[str, ...]] = ()
    gallery_folders: ClassVar[tuple[str, ...]] = ()
    nested: ClassVar[bool] = False   # images in <pid>/ subfolders
    pid_of: ClassVar[Callable[[list[str]], str]] = staticmethod(_pid_from_prefix)
    official: ClassVar[dict[str, dict[str, int]]] = {}
    protocol = PROTOCOL

    @classmethod
    def _folder_split(cls, folder: str) -> str | None:
        if folder in cls.query_folders:
            return "query"
        if folder in cls.gallery_folders:
            return "gallery"
        return None

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        depth = 3 if cls.nested else 2
        split = cls._folder_split(parts[-depth]) if len(parts) >= depth else None
        if split is None:
            raise DatasetError(f"{cls.name}: path {relpath!r} is not in {cls.layout}")
        token = cls.pid_of(parts)
        if not token.isdigit():
            raise DatasetError(f"{cls.name}: cannot read an identity from {relpath!r} (got {token!r}); "
                               f"expected {cls.layout}")
        cam = QUERY_CAMERA if split == "query" else GALLERY_CAMERA
        return Sample("/".join(parts[-depth:]), int(token), cam, Modality.VISIBLE, str(root))

    @classmethod
    def _list(cls, base: Path, folder: str) -> list[str]:
        out = []
        if cls.nested:
            for sub in sorted(p for p in (base / folder).iterdir() if p.is_dir()):
                out += [f"{folder}/{sub.name}/{e.name}" for e in sorted(os.scandir(sub), key=lambda e: e.name)
                        if e.is_file() and os.path.splitext(e.name)[1].lower() in EXTENSIONS]
        else:
            out = [f"{folder}/{e.name}" for e in sorted(os.scandir(base / folder), key=lambda e: e.name)
                   if e.is_file() and os.path.splitext(e.name)[1].lower() in EXTENSIONS]
        return out

    @classmethod
    def load(cls, root: str, counts: str = "warn") -> "HoldoutDataset":
        """Read ``root``; ``counts``: warn | strict | off (the check against the official counts)."""
        check_count_mode(cls.name, counts)
        path = require_root(root, cls.name, cls.layout)
        chosen: dict[str, str] = {}
        for split, names in (("query", cls.query_folders), ("gallery", cls.gallery_folders)):
            found = [n for n in names if (path / n).is_dir()]
            if len(found) != 1:
                raise DatasetError(f"{cls.name}: need exactly one {split} folder of {list(names)} under {path}, "
                                   f"found {found}; expected {cls.layout}")
            chosen[split] = found[0]
        groups = {}
        for split, folder in chosen.items():
            rel = cls._list(path, folder)
            if not rel:
                raise DatasetError(f"{cls.name}: folder {path / folder} holds no images; expected {cls.layout}")
            groups[split] = [cls.parse_relpath(p, str(path)) for p in rel]
        found_counts = {k: split_counts([s.pid for s in v]) for k, v in groups.items()}
        found_counts["all"] = split_counts([s.pid for v in groups.values() for s in v])
        status = check_counts(cls.name, found_counts, cls.official, counts, str(path))
        lonely = sorted({s.pid for s in groups["query"]} - {s.pid for s in groups["gallery"]})
        if lonely:
            raise DatasetError(f"{cls.name}: {len(lonely)} query identities have no gallery image under {path}: "
                               f"{first(lonely)}")
        test = groups["query"] + groups["gallery"]
        splits = ["query"] * len(groups["query"]) + ["gallery"] * len(groups["gallery"])
        extra = {"train": "none (cross-domain: a model trained on Market-1501)",
                 "cameras": f"query {QUERY_CAMERA}, gallery {GALLERY_CAMERA} (no cameras in the names)"}
        return cls(str(path), [], test, splits, status, extra)

    @classmethod
    def for_relpaths(cls, relpaths: Any, root: str = "", **options: Any) -> "HoldoutDataset":
        if not root:
            raise ConfigError(f"{cls.name}: no vendored split files; pass the dataset root")
        return cls.load(root, **options)


class OccludedREID(HoldoutDataset):
    """Occluded-REID (Zhuo et al., ICME'18): 200 ids x (5 occluded + 5 whole), .tif (or .jpg copies)."""

    name = "occluded-reid"
    query_folders = ("occluded_body_images", "Occluded_REID_occluded", "occluded")
    gallery_folders = ("whole_body_images", "Occluded_REID_whole", "whole")
    nested = True
    pid_of = staticmethod(_pid_from_folder)
    layout = "occluded-reid layout ROOT/{occluded_body_images,whole_body_images}/NNN/NNN_XX.tif (or .jpg)"
    official = {"query": {"images": 1000, "ids": 200}, "gallery": {"images": 1000, "ids": 200}}


class PartialREID(HoldoutDataset):
    """Partial-REID (Zheng et al., ICCV'15): 60 ids, 300 partial queries, 300 whole-body gallery images."""

    name = "partial-reid"
    query_folders = ("partial_body_images", "Partial", "probe")
    gallery_folders = ("whole_body_images", "Whole", "gallery")
    layout = "partial-reid layout ROOT/{partial_body_images,whole_body_images}/NNN_XX.jpg"
    official = {"query": {"images": 300, "ids": 60}, "gallery": {"images": 300, "ids": 60}}


class PartialILIDS(HoldoutDataset):
    """Partial-iLIDS (Zheng et al., ICCV'15): 119 ids, one partial query and one whole gallery image each."""

    name = "partial-ilids"
    query_folders = ("partial_body_images", "Partial", "Probe", "probe")
    gallery_folders = ("whole_body_images", "Whole", "Gallery", "gallery")
    pid_of = staticmethod(_pid_from_stem)
    layout = "partial-ilids layout ROOT/{partial_body_images,whole_body_images}/NNN.jpg"
    official = {"query": {"images": 119, "ids": 119}, "gallery": {"images": 119, "ids": 119}}


class PETHZ(HoldoutDataset):
    """P-ETHZ (Zhuo et al., ICME'18, from ETHZ): 85 ids, 3,897 images over occluded and whole folders."""

    name = "p-ethz"
    query_folders = ("occluded_body_images", "occluded")
    gallery_folders = ("whole_body_images", "whole")
    nested = True
    pid_of = staticmethod(_pid_from_folder)
    layout = "p-ethz layout ROOT/{occluded_body_images,whole_body_images}/<pid>/*.png"
    official = {"all": {"images": 3897, "ids": 85}}
