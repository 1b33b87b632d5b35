"""SYSU-MM01 (Wu et al., ICCV'17) reader and its official protocol (PROTOCOLS.md "SYSU-MM01").

- Query: every infrared image (cams 3, 6) of the test identities, in both modes.
- Gallery: visible cams 1, 2, 4, 5 (all-search) or 1, 2 (indoor-search), ``shots`` images per
  (identity, camera), 10 trials.
- ``sampling="official"``: the kit's ``rand_perm_cam.mat`` (``get_testing_set.m``); the table
  shipped with the dataset (``ROOT/exp/rand_perm_cam.mat``) when there is one, else the vendored
  official table, in which case the test images per camera must equal the official counts.
- ``sampling="seeded"``: ``process_gallery_sysu`` of mangye16/Cross-Modal-Re-ID-baseline
  (``random.seed(trial)`` for trial 0..9; ids in ascending order, cameras in order,
  ``random.choice`` of the sorted files per (id, camera); multi-shot ``random.sample(files, 10)``
  as in the forks that offer it).
- Exclusion: a cam-3 query ignores every cam-2 gallery image (kit camera labels ``[1 2 2 4 5 6]``).
- CMC identity-level (kit ``get_cmc_multi_cam.m``).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import (cam_folder_number, first, list_images, read_id_line, require_paths,
                                         require_root, resource_path, split_relpath)
from vireid.data.datasets.sysu_table import OFFICIAL_TEST_COUNTS, PermTable, official_table
from vireid.types import Modality, Sample
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial

logger = logging.getLogger(__name__)

CAMERAS = (1, 2, 3, 4, 5, 6)
INFRARED_CAMS = (3, 6)
GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
NUM_TRIALS = 10
SHOTS = (1, 10)


def _modality(cam: int) -> Modality:
    return Modality.INFRARED if cam in INFRARED_CAMS else Modality.VISIBLE


class SYSUMM01(ReIDDataset):
    """SYSU-MM01: ``cam{1..6}/{pid:04d}/*.jpg`` and ``exp/{train_id,val_id,test_id}.txt``."""

    name = "sysu-mm01"
    layout = ("SYSU-MM01 layout ROOT/cam{1..6}/{pid:04d}/*.jpg and ROOT/exp/{train_id,val_id,test_id}.txt "
              "(one comma-separated line of ids each), optionally ROOT/exp/rand_perm_cam.mat")

    def __init__(self, root: str, train: list[Sample], test: list[Sample], test_ids: Sequence[int],
                 table: PermTable, reference: str) -> None:
        super().__init__(root, train, test)
        self.test_ids = sorted(set(int(i) for i in test_ids))
        self.table = table
        self.reference = reference  # "disk" (files listed from ROOT) or a note on what the counts are checked against

    # ----------------------------------------------------------------- reading
    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        cam = cam_folder_number(parts[-3]) if len(parts) >= 3 else None
        if cam is None or not parts[-2].isdigit() or cam not in CAMERAS:
            raise DatasetError(f"sysu-mm01: path {relpath!r} is not cam{{1..6}}/{{pid:04d}}/<file>")
        return Sample("/".join(parts), int(parts[-2]), cam, _modality(cam), str(root))

    @staticmethod
    def _table_for(root: Path | None) -> PermTable:
        own = root / "exp" / "rand_perm_cam.mat" if root is not None else None
        if own is not None and own.is_file():
            return PermTable.load(own, f"table shipped with the dataset ({own})", official=False)
        return official_table()

    @classmethod
    def load(cls, root: str) -> "SYSUMM01":
        path = require_root(root, cls.name, cls.layout)
        exp = path / "exp"
        require_paths([exp], cls.name, cls.layout)
        require_paths([exp / f"{s}.txt" for s in ("train_id", "val_id", "test_id")], cls.name, cls.layout, "file")
        require_paths([path / f"cam{c}" for c in CAMERAS], cls.name, cls.layout)
        train_ids = sorted(set(read_id_line(exp / "train_id.txt", cls.name))
                           | set(read_id_line(exp / "val_id.txt", cls.name)))
        test_ids = sorted(set(read_id_line(exp / "test_id.txt", cls.name)))
        overlap = sorted(set(train_ids) & set(test_ids))
        if overlap:
            raise DatasetError(f"sysu-mm01: ids in both the train/val and the test split of {exp}: {first(overlap)}")

        def collect(ids: list[int]) -> list[Sample]:
            out = []
            for pid in ids:
                for cam in CAMERAS:
                    for name in list_images(path / f"cam{cam}" / f"{pid:04d}"):
                        out.append(Sample(f"cam{cam}/{pid:04d}/{name}", pid, cam, _modality(cam), str(root)))
            return out

        train, test = collect(train_ids), collect(test_ids)
        have = {s.pid for s in test}
        absent = [pid for pid in test_ids if pid not in have]
        if test and absent:
            raise DatasetError(f"sysu-mm01: {len(absent)} test id(s) of {exp / 'test_id.txt'} have no images in any "
                               f"{path}/cam*/{{pid:04d}}/ folder: {first(f'{p:04d}' for p in absent)}; "
                               f"expected {cls.layout}")
        if not test:
            raise DatasetError(f"sysu-mm01: no images of the {len(test_ids)} test ids under {path}/cam*/{{pid:04d}}/; "
                               f"expected {cls.layout}")
        return cls(str(root), train, test, test_ids, cls._table_for(path), "disk")

    @classmethod
    def for_relpaths(cls, relpaths: Sequence[str], root: str = "") -> "SYSUMM01":
        """The disk dataset under ``root`` when it holds the camera folders; else the features' own
        test paths, checked in :meth:`eval_plan` against the image counts of the gallery table
        (the root's ``exp/rand_perm_cam.mat``, or the vendored official one)."""
        path = Path(root) if root else None
        if path is not None and any((path / f"cam{c}").is_dir() for c in CAMERAS):
            return cls.load(root)
        id_file = path / "exp" / "test_id.txt" if path is not None else None
        if id_file is None or not id_file.is_file():
            if path is not None and not path.is_dir():
                raise DatasetError(f"sysu-mm01: dataset root {path} does not exist; expected {cls.layout}")
            id_file = resource_path("sysu-mm01", "exp", "test_id.txt")
        test_ids = set(read_id_line(id_file, cls.name))
        table = cls._table_for(path)
        test = []
        for p in relpaths:
            try:
                sample = cls.parse_relpath(p, root)
            except DatasetError:
                continue  # reported by the caller as a path outside the protocol
            if sample.pid in test_ids:
                test.append(sample)
        return cls(str(root), [], test, sorted(test_ids), table, f"image counts of the {table.source}")

    # ---------------------------------------------------------------- protocol
    def _groups(self) -> dict[tuple[int, int], list[int]]:
        """(cam, pid) -> indices into ``self.test``, in sorted file-name order."""
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, s in enumerate(self.test):
            groups[(s.camid, s.pid)].append(i)
        for key, idx in groups.items():
            idx.sort(key=lambda i: split_relpath(self.test[i].relpath)[-1])
        return groups

    def _check_counts(self, groups: dict[tuple[int, int], list[int]], cams: Sequence[int]) -> None:
        """Image counts per (camera, identity) must equal the table's (the kit indexes into them)."""
        bad = []
        for cam in cams:
            for pid in self.test_ids:
                have, want = len(groups.get((cam, pid), [])), self.table.count(cam, pid)
                if have != want:
                    bad.append(f"cam{cam}/{pid:04d} ({have} images, table {want})")
        if not bad:
            return
        totals = {c: sum(len(groups.get((c, p), [])) for p in self.test_ids) for c in cams}
        msg = (f"sysu-mm01: the test images disagree with the {self.table.source} in {len(bad)} camera/identity "
               f"folders: {first(bad)}")
        if self.table.official:
            msg += ("; the official test counts per camera are "
                    + ", ".join(f"cam{c} {OFFICIAL_TEST_COUNTS[c]:,}" for c in cams)
                    + ", found " + ", ".join(f"cam{c} {totals[c]:,}" for c in cams)
                    + " (data in the SYSU layout with its own table: pass its root)")
        raise DatasetError(msg)

    def eval_plan(self, mode: Literal["all", "indoor"] = "all", shots: Literal[1, 10] = 1,
                  sampling: Literal["official", "seeded"] = "official",
                  trials: int = NUM_TRIALS) -> EvalPlan:
        """SYSU-MM01 protocol: ``mode`` all|indoor, ``shots`` 1|10, ``sampling`` official|seeded, ``trials`` draws."""
        if mode not in GALLERY_CAMS:
            raise ConfigError(f"sysu-mm01: mode must be one of {list(GALLERY_CAMS)}, got {mode!r}")
        if shots not in SHOTS:
            raise ConfigError(f"sysu-mm01: shots must be 1 (single-shot) or 10 (multi-shot), got {shots!r}")
        if sampling not in ("official", "seeded"):
            raise ConfigError(f"sysu-mm01: sampling must be 'official' or 'seeded', got {sampling!r}")
        max_trials = self.table.num_trials if sampling == "official" else 10**6
        if not isinstance(trials, int) or not 1 <= trials <= max_trials:
            raise ConfigError(f"sysu-mm01: trials must be an integer in 1..{max_trials}, got {trials!r}")
        gallery_cams = GALLERY_CAMS[mode]
        groups = self._groups()
        if sampling == "official" or self.reference != "disk":
            self._check_counts(groups, sorted(INFRARED_CAMS + gallery_cams))
        query = np.array([i for cam in INFRARED_CAMS for pid in self.test_ids for i in groups.get((cam, pid), [])])
        if query.size == 0:
            raise DatasetError(f"sysu-mm01: no infrared (cam3/cam6) test images of the {len(self.test_ids)} test ids")
        plan_trials = []
        for t in range(trials):
            gallery: list[int] = []
            if sampling == "official":  # get_testing_set.m: cameras, then ids ascending, then table order
                for cam in gallery_cams:
                    for pid in self.test_ids:
                        files = groups.get((cam, pid), [])
                        gallery.extend(files[k] for k in self.table.draw(cam, pid, t, shots))
            else:  # process_gallery_sysu: random.seed(trial); ids ascending, then cameras
                rng = random.Random(t)
                for pid in self.test_ids:
                    for cam in gallery_cams:
                        files = groups.get((cam, pid), [])
                        if files and shots == 1:
                            gallery.append(rng.choice(files))
                        elif files:
                            gallery.extend(rng.sample(files, min(shots, len(files))))
            plan_trials.append(Trial(query, np.array(gallery, dtype=np.int64)))
        settings: dict[str, Any] = {
            "protocol": "SYSU-MM01 (Wu et al., ICCV'17)",
            "mode": f"{mode}-search",
            "shots": shots,
            "query": f"infrared cams 3, 6 of {len(self.test_ids)} test ids ({len(query)} images)",
            "gallery": f"visible cams {', '.join(map(str, gallery_cams))}, {shots} per identity and camera",
            "sampling": sampling,
        }
        if sampling == "official":
            settings["gallery_table"] = self.table.source
            settings["table_rows"] = list(range(1, trials + 1))
        else:
            settings["gallery_table"] = None
            settings["seeds"] = list(range(trials))
            draw = "random.choice" if shots == 1 else "random.sample(files, 10)"
            settings["seeded_scheme"] = ("mangye16/Cross-Modal-Re-ID-baseline process_gallery_sysu: "
                                         f"random.seed(trial), {draw} per identity and camera")
        return EvalPlan(self.name, settings, plan_trials, cmc_mode="identity", exclusion=Exclusion.SYSU_SAME_LOCATION)
