"""Text-to-image person retrieval sets: CUHK-PEDES, ICFG-PEDES, RSTPReid (PROTOCOLS.md
"Single-modality, occluded, partial and text-based re-ID").

- CUHK-PEDES (Li et al., CVPR'17): ``ROOT/imgs/`` + ``ROOT/reid_raw.json``, entries ``{split,
  captions[], file_path, id (1-based), processed_tokens}``.
- ICFG-PEDES (Ding et al., 2021): ``ROOT/imgs/{train,test}`` + ``ROOT/ICFG-PEDES.json`` (0-based ids, no val).
- RSTPReid (Zhu et al., ACM MM'21): ``ROOT/imgs/`` + ``ROOT/data_captions.json`` with ``img_path``.

The test samples of the chosen split are its images (``imgs/<file_path>``, visible) and its
captions (``imgs/<file_path>#<k>``, :attr:`Modality.TEXT`, the k-th caption of that image): a
features file holds both, keyed by those paths. Protocol: every caption a query against every
image of the split (each image once), no camera filtering, image-level CMC, all same-identity
images relevant (:mod:`vireid.evaluation.text_to_image`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import first, missing_files, require_root, split_relpath
from vireid.data.datasets.counts import check_count_mode, check_counts
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import EvalPlan
from vireid.evaluation.text_to_image import CAPTION_SEPARATOR, text_to_image_plan
from vireid.types import Modality, Sample

IMAGE_FOLDER = "imgs"


@functools.lru_cache(maxsize=4)
def _read_json(path_str: str, mtime: float) -> tuple[dict[str, Any], ...]:
    path = Path(path_str)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path} as JSON ({exc})") from exc
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
    return tuple(data)


class TextReIDDataset(ReIDDataset):
    """Base of the caption + image readers; ``split`` picks the evaluated split (test or val)."""

    modalities: ClassVar[tuple[Modality, ...]] = (Modality.VISIBLE, Modality.TEXT)
    json_name: ClassVar[str] = ""
    path_key: ClassVar[str] = "file_path"
    splits_available: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    official: ClassVar[dict[str, dict[str, int]]] = {}

    def __init__(self, root: str, train: list[Sample], test: list[Sample], captions: dict[str, list[str]],
                 split: str, counts_status: str) -> None:
        super().__init__(root, train, test)
        self.captions = captions  # image relpath -> its captions (every split)
        self.split = split
        self.counts_status = counts_status

    @classmethod
    def _entries(cls, path: Path) -> list[tuple[str, str, int, list[str]]]:
        """(split, image relpath, pid, captions) of every entry, checked."""
        rows = _read_json(str(path), path.stat().st_mtime)
        out = []
        for number, entry in enumerate(rows):
            if not isinstance(entry, dict):
                raise DatasetError(f"{cls.name}: {path} entry {number}: expected an object")
            missing = [k for k in ("split", "captions", cls.path_key, "id") if k not in entry]
            if missing:
                raise DatasetError(f"{cls.name}: {path} entry {number} lacks {missing}; expected {cls.layout}")
            caps = entry["captions"]
            if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
                raise DatasetError(f"{cls.name}: {path} entry {number}: 'captions' must be a non-empty list of strings")
            split = str(entry["split"]).strip().lower()
            if split not in cls.splits_available:
                raise DatasetError(f"{cls.name}: {path} entry {number}: split {entry['split']!r} is not one of "
                                   f"{cls.splits_available}")
            rel = "/".join([IMAGE_FOLDER] + split_relpath(str(entry[cls.path_key])))
            out.append((split, rel, int(entry["id"]), [str(c) for c in caps]))
        return out

    @classmethod
    def load(cls, root: str, split: str = "test", counts: str = "warn") -> "TextReIDDataset":
        """Read ``root``; ``split`` is the split evaluated (test, or val for model selection)."""
        check_count_mode(cls.name, counts)
        if split not in cls.splits_available or split == "train":
            raise ConfigError(f"{cls.name}: split must be one of {[s for s in cls.splits_available if s != 'train']}, "
                              f"got {split!r}")
        path = require_root(root, cls.name, cls.layout)
        ann = path / cls.json_name
        if not ann.is_file() or not (path / IMAGE_FOLDER).is_dir():
            raise DatasetError(f"{cls.name}: missing {ann.name} or {IMAGE_FOLDER}/ under {path}; expected {cls.layout}")
        entries = cls._entries(ann)
        seen: set[str] = set()
        for _, rel, _, _ in entries:
            if rel in seen:
                raise DatasetError(f"{cls.name}: {ann}: image {rel!r} is listed twice")
            seen.add(rel)
        absent = missing_files(path, sorted(seen))
        if absent:
            raise DatasetError(f"{cls.name}: {len(absent)} images of {ann.name} are missing under {path}: {first(absent)}")
        found: dict[str, dict[str, int]] = {}
        for sp in cls.splits_available:
            rows = [e for e in entries if e[0] == sp]
            found[sp] = {"images": len(rows), "ids": len({e[2] for e in rows}), "captions": sum(len(e[3]) for e in rows)}
        status = check_counts(cls.name, found, cls.official, counts, str(path))
        captions = {rel: caps for _, rel, _, caps in entries}
        train = [Sample(rel, pid, 0, Modality.VISIBLE, str(path)) for sp, rel, pid, _ in entries if sp == "train"]
        rows = [e for e in entries if e[0] == split]
        if not rows:
            raise DatasetError(f"{cls.name}: no {split} entries in {ann}")
        images = [Sample(rel, pid, 0, Modality.VISIBLE, str(path)) for _, rel, pid, _ in rows]
        texts = [Sample(f"{rel}{CAPTION_SEPARATOR}{k}", pid, 0, Modality.TEXT, str(path))
                 for _, rel, pid, caps in rows for k in range(len(caps))]
        return cls(str(path), train, images + texts, captions, split, status)

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        """The image or caption sample ``relpath`` names (needs the annotation file under ``root``)."""
        path = require_root(root, cls.name, cls.layout)
        ann = path / cls.json_name
        if not ann.is_file():
            raise DatasetError(f"{cls.name}: missing {ann}; expected {cls.layout}")
        image, _, k = "/".join(split_relpath(relpath)).partition(CAPTION_SEPARATOR)
        for _, rel, pid, caps in cls._entries(ann):
            if rel == image:
                if k and not (k.isdigit() and int(k) < len(caps)):
                    raise DatasetError(f"{cls.name}: {relpath!r}: image {rel!r} has {len(caps)} captions")
                return Sample(relpath, pid, 0, Modality.TEXT if k else Modality.VISIBLE, str(path))
        raise DatasetError(f"{cls.name}: {relpath!r} is not an image of {ann}")

    @classmethod
    def for_relpaths(cls, relpaths: Any, root: str = "", **options: Any) -> "TextReIDDataset":
        if not root:
            raise ConfigError(f"{cls.name}: no vendored split files; pass the dataset root")
        return cls.load(root, **options)

    def caption(self, sample: Sample) -> str:
        """The text of a caption sample."""
        image, _, k = sample.relpath.partition(CAPTION_SEPARATOR)
        return self.captions[image][int(k)]

    def eval_plan(self) -> EvalPlan:
        """Every caption of the split against every image of the split."""
        return text_to_image_plan(self.name, self.test, {"split": self.split, "counts": self.counts_status})


class CUHKPEDES(TextReIDDataset):
    name = "cuhk-pedes"
    json_name = "reid_raw.json"
    layout = ("cuhk-pedes layout ROOT/imgs/<file_path> + ROOT/reid_raw.json (a list of {split, captions, file_path, "
              "id, processed_tokens})")
    official = {"train": {"images": 34054, "ids": 11003},
                "val": {"images": 3078, "ids": 1000, "captions": 6158},
                "test": {"images": 3074, "ids": 1000, "captions": 6156}}


class ICFGPEDES(TextReIDDataset):
    name = "icfg-pedes"
    json_name = "ICFG-PEDES.json"
    splits_available = ("train", "test")
    layout = ("icfg-pedes layout ROOT/imgs/{train,test}/... + ROOT/ICFG-PEDES.json (a list of {split, captions, "
              "file_path, id, processed_tokens}, 0-based ids)")
    official = {"train": {"images": 34674, "ids": 3102}, "test": {"images": 19848, "ids": 1000}}


class RSTPReid(TextReIDDataset):
    name = "rstpreid"
    json_name = "data_captions.json"
    path_key = "img_path"
    layout = "rstpreid layout ROOT/imgs/<img_path> + ROOT/data_captions.json (a list of {id, img_path, captions, split})"
    official = {"train": {"images": 18505, "ids": 3701, "captions": 37010},
                "val": {"images": 1000, "ids": 200, "captions": 2000},
                "test": {"images": 1000, "ids": 200, "captions": 2000}}
