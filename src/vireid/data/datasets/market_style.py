"""Single-modality image re-ID in the Market-1501 layout: Market-1501, DukeMTMC-reID,
Occluded-DukeMTMC and CUHK03-NP (PROTOCOLS.md "Single-modality, occluded, partial and
text-based re-ID").

Layout ``ROOT/{bounding_box_train,query,bounding_box_test}/<pid>_c<cam>...jpg`` (ROOT may also be
the folder holding the dataset's own top folder, e.g. ``Market-1501-v15.09.15``). Identity and
camera come from the file name's ``([-\\d]+)_c(\\d+)`` tokens. Identity -1 ("junk") is dropped;
identity 0 (distractors) stays in the gallery as negatives. Protocol (Market-style): every query
against the whole gallery, gallery images of the query's identity AND camera removed, image-level
CMC (first true match), non-interpolated AP, queries without a true match skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import list_images, require_root, split_relpath
from vireid.data.datasets.counts import check_count_mode, check_counts, split_counts
from vireid.errors import DatasetError
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial
from vireid.types import Modality, Sample

NAME_TOKENS = re.compile(r"([-\d]+)_c(\d+)")
JUNK_PID = -1
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
PROTOCOL = ("Market-style: query vs whole gallery, same identity AND same camera removed, identity -1 "
            "(junk) dropped, identity 0 (distractors) kept as negatives, image-level CMC, "
            "non-interpolated AP over valid queries")


def parse_market_name(name: str, dataset: str, num_cameras: int) -> tuple[int, int]:
    """(pid, camid) from ``0001_c1s1_001051_00.jpg``-style names; :class:`DatasetError` otherwise."""
    m = NAME_TOKENS.match(name)
    if m is None or not m.group(1).lstrip("-").isdigit():
        raise DatasetError(f"{dataset}: file name {name!r} does not start with '<pid>_c<camera>' "
                           f"(e.g. 0001_c1s1_001051_00.jpg)")
    pid, cam = int(m.group(1)), int(m.group(2))
    if not 1 <= cam <= num_cameras:
        raise DatasetError(f"{dataset}: file name {name!r} has camera {cam}, expected 1..{num_cameras}")
    return pid, cam


class SplitDataset(ReIDDataset):
    """A single-modality dataset with query and gallery splits and a counts check.

    ``splits[i]`` is "query" or "gallery" for ``test[i]``; ``counts_status`` is the counts check's
    verdict; ``extra`` holds reader-specific figures (junk images dropped, distractors kept).
    """

    modalities: ClassVar[tuple[Modality, ...]] = (Modality.VISIBLE,)
    protocol: ClassVar[str] = PROTOCOL

    def __init__(self, root: str, train: list[Sample], test: list[Sample], splits: list[str],
                 counts_status: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(root, train, test)
        self.splits = splits
        self.counts_status = counts_status
        self.extra = dict(extra or {})

    def eval_plan(self) -> EvalPlan:
        """One trial: every query against every gallery image (the dataset has no other settings)."""
        q = np.array([i for i, s in enumerate(self.splits) if s == "query"], dtype=np.int64)
        g = np.array([i for i, s in enumerate(self.splits) if s == "gallery"], dtype=np.int64)
        if q.size == 0 or g.size == 0:
            raise DatasetError(f"{self.name}: {q.size} queries and {g.size} gallery images under {self.root}")
        settings: dict[str, Any] = {"protocol": self.protocol, "query": f"{q.size} images",
                                    "gallery": f"{g.size} images", "counts": self.counts_status}
        settings.update(self.extra)
        return EvalPlan(self.name, settings, [Trial(q, g)], cmc_mode="image",
                        exclusion=Exclusion.SAME_ID_SAME_CAMERA)


class MarketStyleDataset(SplitDataset):
    """Base of the readers of ``{bounding_box_train,query,bounding_box_test}`` folders."""

    containers: ClassVar[tuple[str, ...]] = ()
    num_cameras: ClassVar[int] = 6
    official: ClassVar[dict[str, dict[str, int]]] = {}
    example: ClassVar[str] = "0001_c1s1_001051_00.jpg"

    @classmethod
    def _layout(cls) -> str:
        inside = f" (or ROOT/{{{','.join(cls.containers)}}}/...)" if cls.containers else ""
        return (f"{cls.name} layout ROOT/{{bounding_box_train,query,bounding_box_test}}/<pid>_c<cam>... images, "
                f"e.g. query/{cls.example}{inside}")

    @classmethod
    def resolve(cls, root: str, **options: Any) -> Path:
        """The folder holding the three split folders (ROOT or one of ``containers`` under it)."""
        path = require_root(root, cls.name, cls._layout())
        for cand in [path] + [path / c for c in cls.containers]:
            if all((cand / f).is_dir() for f in SPLIT_FOLDERS.values()):
                return cand
        present = sorted(p.name for p in path.iterdir())[:8]
        raise DatasetError(f"{cls.name}: no bounding_box_train/query/bounding_box_test folders under {path} "
                           f"(found {present}); expected {cls._layout()}")

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        if len(parts) < 2 or parts[-2] not in SPLIT_FOLDERS.values():
            raise DatasetError(f"{cls.name}: path {relpath!r} is not <split folder>/<image>, split folder one of "
                               f"{list(SPLIT_FOLDERS.values())}")
        pid, cam = parse_market_name(parts[-1], cls.name, cls.num_cameras)
        return Sample("/".join(parts[-2:]), pid, cam, Modality.VISIBLE, str(root))

    @classmethod
    def load(cls, root: str, counts: str = "warn") -> "MarketStyleDataset":
        """Read ``root``; ``counts``: warn | strict | off (the check against the official counts)."""
        check_count_mode(cls.name, counts)
        return cls._read(cls.resolve(root), counts)

    @classmethod
    def _read(cls, base: Path, counts: str) -> "MarketStyleDataset":
        groups: dict[str, list[Sample]] = {}
        junk = {"train": 0, "query": 0, "gallery": 0}
        for split, folder in SPLIT_FOLDERS.items():
            names = list_images(base / folder)
            if not names:
                raise DatasetError(f"{cls.name}: folder {base / folder} holds no images; expected {cls._layout()}")
            kept = []
            for name in names:
                sample = cls.parse_relpath(f"{folder}/{name}", str(base))
                if sample.pid == JUNK_PID:
                    junk[split] += 1
                else:
                    kept.append(sample)
            groups[split] = kept
        test = groups["query"] + groups["gallery"]
        splits = ["query"] * len(groups["query"]) + ["gallery"] * len(groups["gallery"])
        found = {s: split_counts([x.pid for x in groups[s]]) for s in SPLIT_FOLDERS}
        found["gallery"]["junk"] = junk["gallery"]
        status = check_counts(cls.name, found, cls.official, counts, str(base))
        distractors = sum(1 for s in groups["gallery"] if s.pid == 0)
        extra = {"junk_dropped": sum(junk.values()), "distractor_images": distractors}
        return cls(str(base), groups["train"], test, splits, status, extra)


class Market1501(MarketStyleDataset):
    """Market-1501 (Zheng et al., ICCV'15): 6 cameras; 751 train ids, 750 query ids."""

    name = "market1501"
    containers = ("Market-1501-v15.09.15", "Market-1501")
    official = {"train": {"images": 12936, "ids": 751}, "query": {"images": 3368, "ids": 750},
                "gallery": {"images": 15913, "junk": 3819}}


class DukeMTMCReID(MarketStyleDataset):
    """DukeMTMC-reID (Ristani et al. ECCVW'16; Zheng et al. ICCV'17): 8 cameras. Withdrawn in 2019."""

    name = "dukemtmc"
    containers = ("DukeMTMC-reID",)
    num_cameras = 8
    example = "0005_c2_f0046985.jpg"
    official = {"train": {"images": 16522, "ids": 702}, "query": {"images": 2228},
                "gallery": {"images": 17661, "ids": 1110}}


class OccludedDuke(MarketStyleDataset):
    """Occluded-DukeMTMC (Miao et al., ICCV'19): Duke rebuilt with occluded queries; Duke protocol."""

    name = "occluded-duke"
    containers = ("Occluded_Duke", "Occluded-DukeMTMC")
    num_cameras = 8
    example = "0005_c2_f0046985.jpg"
    official = {"train": {"images": 15618, "ids": 702}, "query": {"images": 2210, "ids": 519},
                "gallery": {"images": 17661, "ids": 1110}}


for _cls in (Market1501, DukeMTMCReID, OccludedDuke):
    _cls.layout = _cls._layout()


__all__ = ["DukeMTMCReID", "Market1501", "MarketStyleDataset", "OccludedDuke", "SplitDataset", "parse_market_name"]
