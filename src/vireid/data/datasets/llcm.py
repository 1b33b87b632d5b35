"""LLCM (Zhang & Wang, CVPR'23, DEEN) reader and protocol (PROTOCOLS.md "LLCM").

Two layouts circulate, both read here:

- index-file form: ``idx/{train_vis,train_nir,test_vis,test_nir}.txt`` with lines
  ``vis/0250/0250_c03_s200519_f13770_vis.jpg 0`` (images under ``vis/`` and ``nir/``);
- folder form (DEEN's code): ``idx/{train_vis,train_nir,test_id}.txt``, ``test_vis/cam{1..9}/{pid}/``,
  ``test_nir/cam{1,2,4..9}/{pid}/``.

Protocol as DEEN's ``process_query_llcm`` / ``process_gallery_llcm`` (ZYK100/LLCM ``DEEN/data_manager.py``):
query = every test image of the query modality (ids ascending, cameras in DEEN's lists); gallery =
one image per (identity, camera) of the other modality, ``random.seed(trial)`` for trial 0..9,
ids ascending, cameras in order, ``random.choice`` of the files sorted by name; remove gallery
entries with the query's identity and camera; identity-level CMC (DEEN's ``eval_llcm``).
"""

from __future__ import annotations

from typing import Literal

import functools
import logging
import random
import re
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import (cam_folder_number, first, list_images, missing_files, read_id_line,
                                         read_index_file, require_root, resource_path, split_relpath)
from vireid.types import Modality, Sample
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial

logger = logging.getLogger(__name__)

CAMS = {Modality.VISIBLE: (1, 2, 3, 4, 5, 6, 7, 8, 9), Modality.INFRARED: (1, 2, 4, 5, 6, 7, 8, 9)}
DIRECTIONS = {"infrared-to-visible": (Modality.INFRARED, Modality.VISIBLE),
              "visible-to-infrared": (Modality.VISIBLE, Modality.INFRARED)}
NUM_TRIALS = 10
_MODALITY_TOKENS = {"vis": Modality.VISIBLE, "nir": Modality.INFRARED}
_MODALITY_FOLDERS = {"vis": Modality.VISIBLE, "nir": Modality.INFRARED, "test_vis": Modality.VISIBLE,
                     "test_nir": Modality.INFRARED, "train_vis": Modality.VISIBLE, "train_nir": Modality.INFRARED}
_CAM_TOKEN = re.compile(r"c(\d+)", re.IGNORECASE)


def _agree(relpath: str, what: str, a: int | Modality | None, b: int | Modality | None) -> int | Modality:
    if a is not None and b is not None and a != b:
        raise DatasetError(f"llcm: path {relpath!r}: the folder and the file name disagree on the {what} ({a} vs {b})")
    value = a if a is not None else b
    if value is None:
        raise DatasetError(f"llcm: path {relpath!r}: no {what} token (expected e.g. "
                           f"vis/0250/0250_c03_s200519_f13770_vis.jpg or test_vis/cam3/0250/<file>)")
    return value


@functools.lru_cache(maxsize=1)
def _vendored_samples() -> tuple[tuple[Sample, ...], tuple[Sample, ...], tuple[int, ...]]:
    """Train samples, test samples and test ids of the vendored idx files (parsed once)."""
    idx = resource_path("llcm", "idx")
    names = ("train_vis", "train_nir", "test_vis", "test_nir")
    lists = {n: read_index_file(idx / f"{n}.txt", LLCM.name) for n in names}
    ds = LLCM._from_lists("", lists, [], "index-file (vendored idx files)")
    return tuple(ds.train), tuple(ds.test), tuple(LLCM._test_ids(idx / "test_id.txt", ds.test))


class LLCM(ReIDDataset):
    """LLCM in the index-file or the folder form."""

    name = "llcm"
    layout = ("LLCM layout, index-file form ROOT/idx/{train_vis,train_nir,test_vis,test_nir}.txt "
              "('vis/0250/0250_c03_..._vis.jpg label' per line) with images under ROOT/vis/ and ROOT/nir/, "
              "or folder form ROOT/idx/{train_vis,train_nir,test_id}.txt, ROOT/test_vis/cam{1..9}/{pid}/, "
              "ROOT/test_nir/cam{1,2,4..9}/{pid}/")

    def __init__(self, root: str, train: list[Sample], test: list[Sample], test_ids: Sequence[int], form: str) -> None:
        super().__init__(root, train, test)
        self.test_ids = sorted(set(int(i) for i in test_ids))
        self.form = form

    # ----------------------------------------------------------------- reading
    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        """Identity, camera and modality from tokens: ``c05``/``_vis`` in the file name, ``cam5``/``test_vis``/
        ``{pid}`` folders; the two sources must agree."""
        parts = split_relpath(relpath)
        if len(parts) < 2:
            raise DatasetError(f"llcm: path {relpath!r} has no identity folder")
        stem = parts[-1].rsplit(".", 1)[0]
        tokens = stem.split("_")
        folders = parts[:-1]
        mod_file = _MODALITY_TOKENS.get(tokens[-1].lower())
        mod_dirs = [_MODALITY_FOLDERS[f.lower()] for f in folders if f.lower() in _MODALITY_FOLDERS]
        modality = _agree(relpath, "modality", mod_dirs[-1] if mod_dirs else None, mod_file)
        cam_tokens = [int(m.group(1)) for t in tokens[1:] if (m := _CAM_TOKEN.fullmatch(t))]
        cam_dirs = [c for f in folders if (c := cam_folder_number(f)) is not None]
        camid = _agree(relpath, "camera", cam_dirs[-1] if cam_dirs else None, cam_tokens[0] if cam_tokens else None)
        pid_dir = int(parts[-2]) if parts[-2].isdigit() else None
        pid_file = int(tokens[0]) if tokens[0].isdigit() and len(tokens) > 1 else None
        pid = _agree(relpath, "identity", pid_dir, pid_file)
        return Sample("/".join(parts), int(pid), int(camid), Modality(modality), str(root))

    def sample_key(self, sample: Sample) -> Hashable:
        """(modality, identity, camera, file name): the same image in either layout."""
        return (int(sample.modality), sample.pid, sample.camid, split_relpath(sample.relpath)[-1])

    def key_for_relpath(self, relpath: str) -> Hashable | None:
        try:
            return self.sample_key(self.parse_relpath(relpath))
        except DatasetError:
            return None

    @classmethod
    def _from_lists(cls, root: str, lists: dict[str, list[tuple[str, int]]], test_ids: list[int], form: str) -> "LLCM":
        parse = lambda rows: [cls.parse_relpath(p, root) for p, _ in rows]  # noqa: E731
        train = parse(lists["train_vis"]) + parse(lists["train_nir"])
        test = parse(lists["test_vis"]) + parse(lists["test_nir"]) if "test_vis" in lists else []
        return cls(root, train, test, test_ids, form)

    @classmethod
    def _test_ids(cls, id_file: Path, test: list[Sample]) -> list[int]:
        ids = read_id_line(id_file, cls.name) if id_file.is_file() else []
        return sorted(set(ids or {s.pid for s in test}))  # test_id.txt may be empty in the index-file form

    @classmethod
    def load(cls, root: str) -> "LLCM":
        path = require_root(root, cls.name, cls.layout)
        idx = path / "idx"
        if (path / "test_vis").is_dir() and (path / "test_nir").is_dir():
            return cls._load_folder_form(path, str(root))
        names = ("train_vis", "train_nir", "test_vis", "test_nir")
        form = "index-file"
        if not all((idx / f"{n}.txt").is_file() for n in names):
            if not ((path / "vis").is_dir() and (path / "nir").is_dir()):
                missing = [str(idx / f"{n}.txt") for n in names if not (idx / f"{n}.txt").is_file()]
                raise DatasetError(f"llcm: neither form found under {path}: no test_vis/ and test_nir/ folders, "
                                   f"no vis/ and nir/ folders, missing {first(missing)}; expected {cls.layout}")
            idx, form = resource_path("llcm", "idx"), "index-file (vendored idx files)"
        lists = {n: read_index_file(idx / f"{n}.txt", cls.name) for n in names}
        missing = missing_files(path, [p for rows in lists.values() for p, _ in rows])
        if missing:
            raise DatasetError(f"llcm: {len(missing)} images listed in {idx} are missing under {path}: "
                               f"{first(missing)}; expected {cls.layout}")
        ds = cls._from_lists(str(root), lists, [], form)
        ds.test_ids = cls._test_ids(idx / "test_id.txt", ds.test)
        return ds

    @classmethod
    def _load_folder_form(cls, path: Path, root: str) -> "LLCM":
        idx = path / "idx"
        need = [idx / "train_vis.txt", idx / "train_nir.txt"]
        if not all(p.is_file() for p in need):
            missing = first([str(p) for p in need if not p.is_file()])
            raise DatasetError(f"llcm: folder form under {path} lacks {missing}; expected {cls.layout}")
        lists = {n: read_index_file(idx / f"{n}.txt", cls.name) for n in ("train_vis", "train_nir")}
        missing = missing_files(path, [p for rows in lists.values() for p, _ in rows])
        if missing:
            raise DatasetError(f"llcm: {len(missing)} training images listed in {idx} are missing under {path}: "
                               f"{first(missing)}")
        ds = cls._from_lists(root, lists, [], "folder")
        test = []
        for folder, modality in (("test_vis", Modality.VISIBLE), ("test_nir", Modality.INFRARED)):
            for cam_dir in sorted((path / folder).iterdir()):
                cam = cam_folder_number(cam_dir.name)
                if cam is None or not cam_dir.is_dir():
                    continue
                for pid_dir in sorted(cam_dir.iterdir()):
                    if pid_dir.is_dir() and pid_dir.name.isdigit():
                        test.extend(cls.parse_relpath(f"{folder}/{cam_dir.name}/{pid_dir.name}/{n}", root)
                                    for n in list_images(pid_dir))
        if not test:
            raise DatasetError(f"llcm: no images under {path}/test_vis/cam*/{{pid}}/ or test_nir/; "
                               f"expected {cls.layout}")
        ds.test = test
        ds.test_ids = cls._test_ids(idx / "test_id.txt", test)
        return ds

    @classmethod
    def vendored(cls) -> "LLCM":
        train, test, test_ids = _vendored_samples()
        return cls("", list(train), list(test), test_ids, "index-file (vendored idx files)")

    # ---------------------------------------------------------------- protocol
    def eval_plan(self, direction: Literal["infrared-to-visible", "visible-to-infrared"] = "infrared-to-visible",
                  trials: int = NUM_TRIALS) -> EvalPlan:
        """``direction`` infrared-to-visible|visible-to-infrared; ``trials`` single-shot galleries (seeds 0..)."""
        if direction not in DIRECTIONS:
            raise ConfigError(f"llcm: direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"llcm: trials must be a positive integer, got {trials!r}")
        q_mod, g_mod = DIRECTIONS[direction]
        groups: dict[tuple[Modality, int, int], list[int]] = defaultdict(list)
        for i, s in enumerate(self.test):
            groups[(s.modality, s.pid, s.camid)].append(i)
        for idx in groups.values():
            idx.sort(key=lambda i: split_relpath(self.test[i].relpath)[-1])
        query = np.array([i for pid in self.test_ids for cam in CAMS[q_mod] for i in groups.get((q_mod, pid, cam), [])],
                         dtype=np.int64)
        if query.size == 0:
            raise DatasetError(f"llcm: no {q_mod.name.lower()} test images of the {len(self.test_ids)} test ids")
        plan_trials = []
        for t in range(trials):
            rng = random.Random(t)  # DEEN: random.seed(trial) before the loop
            gallery = [rng.choice(files) for pid in self.test_ids for cam in CAMS[g_mod]
                       if (files := groups.get((g_mod, pid, cam)))]
            plan_trials.append(Trial(query, np.array(gallery, dtype=np.int64)))
        settings = {
            "protocol": "LLCM (Zhang & Wang, CVPR'23) as DEEN evaluates it",
            "direction": direction,
            "query": f"all {q_mod.name.lower()} test images ({len(query)})",
            "gallery": f"{g_mod.name.lower()} test images, 1 per identity and camera",
            "sampling": "seeded (DEEN process_gallery_llcm: random.seed(trial), random.choice per identity and camera)",
            "seeds": list(range(trials)),
            "layout": self.form,
        }
        return EvalPlan(self.name, settings, plan_trials, cmc_mode="identity", exclusion=Exclusion.SAME_ID_SAME_CAMERA)
