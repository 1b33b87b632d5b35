"""RegDB (Nguyen et al., Sensors'17) reader and protocol (PROTOCOLS.md "RegDB").

10 trials, each a random identity split (206/206 on the real dataset) given by ``idx/{train,test}_{visible,thermal}_{t}.txt``
(vendored in ``vireid/resources/regdb/idx``). Trial ``t``: query = its 2,060 test visible images,
gallery = its 2,060 test thermal images (visible-to-thermal), or the reverse; nothing removed;
image-level CMC (``eval_regdb`` of mangye16/Cross-Modal-Re-ID-baseline).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.common import (first, missing_files, read_index_file, require_paths, require_root,
                                         resource_path, split_relpath)
from vireid.types import Modality, Sample
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.protocols import EvalPlan, Exclusion, Trial

logger = logging.getLogger(__name__)

TRIALS = tuple(range(1, 11))
MODALITY_FOLDERS = {"visible": Modality.VISIBLE, "thermal": Modality.INFRARED}
CAMERA = {Modality.VISIBLE: 1, Modality.INFRARED: 2}  # one camera per modality, as eval_regdb assumes
DIRECTIONS = ("visible-to-thermal", "thermal-to-visible")
_LIST_KEYS = [(split, mod, t) for split in ("train", "test") for mod in ("visible", "thermal") for t in TRIALS]

Lists = dict[tuple[str, str, int], list[str]]


def _read_lists(idx: Path) -> Lists:
    lists = {}
    for split, mod, t in _LIST_KEYS:
        file = idx / f"{split}_{mod}_{t}.txt"
        lists[(split, mod, t)] = _check_list([p for p, _ in read_index_file(file, RegDB.name)], mod, file)
    return lists


def _check_list(paths: list[str], mod: str, file: Path) -> list[str]:
    """An index list's paths: inside the dataset, of the list's modality, each listed once."""
    seen: set[str] = set()
    for number, p in enumerate(paths, start=1):
        parts = p.split("/")
        if ".." in parts or p.startswith("/") or (len(p) > 1 and p[1] == ":"):
            raise DatasetError(f"regdb: {file} entry {number}: path {p!r} leaves the dataset root; "
                               "expected Visible/{pid}/<file> or Thermal/{pid}/<file>")
        folder = parts[-3].lower() if len(parts) >= 3 else ""
        if folder in MODALITY_FOLDERS and folder != mod:
            raise DatasetError(f"regdb: {file} entry {number}: {p!r} is a {folder} image in a {mod} list")
        if p in seen:
            raise DatasetError(f"regdb: {file} entry {number}: {p!r} is listed twice (it would enter the "
                               "gallery twice)")
        seen.add(p)
    return paths


@functools.lru_cache(maxsize=1)
def _vendored_lists() -> dict[tuple[str, str, int], tuple[str, ...]]:
    return {k: tuple(v) for k, v in _read_lists(resource_path("regdb", "idx")).items()}


def _parse_trials(trials: Any) -> list[int]:
    if trials == "all":
        return list(TRIALS)
    values = [trials] if isinstance(trials, int) else list(trials)
    if not values or any(not isinstance(t, (int, np.integer)) or t not in TRIALS for t in values):
        raise ConfigError(f"regdb: trials must be 'all' or integers in 1..10, got {trials!r}")
    return [int(t) for t in values]


class RegDB(ReIDDataset):
    """RegDB: ``Visible/{pid}/*.bmp``, ``Thermal/{pid}/*.bmp`` and the ``idx/`` trial lists."""

    name = "regdb"
    layout = ("RegDB layout ROOT/Visible/{pid}/*.bmp, ROOT/Thermal/{pid}/*.bmp and "
              "ROOT/idx/{train,test}_{visible,thermal}_{1..10}.txt ('relative/path label' per line; "
              "vireid's vendored copy is used when ROOT/idx is absent)")

    def __init__(self, root: str, train: list[Sample], test: list[Sample], lists: Lists, trial: int,
                 lists_source: str) -> None:
        super().__init__(root, train, test)
        self.lists = lists
        self.trial = trial
        self.lists_source = lists_source

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        modality = MODALITY_FOLDERS.get(parts[-3].lower()) if len(parts) >= 3 else None
        if modality is None or not parts[-2].isdigit() or ".." in parts:
            raise DatasetError(f"regdb: path {relpath!r} is not {{Visible,Thermal}}/{{pid}}/<file>")
        return Sample("/".join(parts), int(parts[-2]), CAMERA[modality], modality, str(root))

    @classmethod
    def _build(cls, root: str, lists: Lists, trial: int, source: str) -> "RegDB":
        if trial not in TRIALS:
            raise ConfigError(f"regdb: trial must be in 1..10, got {trial!r}")
        train = [cls.parse_relpath(p, root) for mod in ("visible", "thermal") for p in lists[("train", mod, trial)]]
        seen: dict[str, Sample] = {}
        for t in [trial] + [t for t in TRIALS if t != trial]:  # the chosen trial's images first
            for mod in ("visible", "thermal"):
                for p in lists[("test", mod, t)]:
                    if p not in seen:
                        seen[p] = cls.parse_relpath(p, root)
        return cls(root, train, list(seen.values()), lists, trial, source)

    @classmethod
    def load(cls, root: str, trial: int = 1) -> "RegDB":
        """Read ``root``; ``trial`` (1..10) selects the training split."""
        path = require_root(root, cls.name, cls.layout)
        require_paths([path / "Visible", path / "Thermal"], cls.name, cls.layout)
        idx = path / "idx"
        if idx.is_dir():
            require_paths([idx / f"{s}_{m}_{t}.txt" for s, m, t in _LIST_KEYS], cls.name, cls.layout, "file")
            lists, source = _read_lists(idx), f"{idx} (the dataset's)"
        else:
            lists, source = {k: list(v) for k, v in _vendored_lists().items()}, "vendored idx files (DMM-CDCN copy)"
        missing = missing_files(path, sorted({p for v in lists.values() for p in v}))
        if missing:
            raise DatasetError(f"regdb: {len(missing)} images listed in the idx files are missing under {path}: "
                               f"{first(missing)}; expected {cls.layout}")
        return cls._build(str(root), lists, trial, source)

    @classmethod
    def vendored(cls, trial: int = 1) -> "RegDB":
        lists = {k: list(v) for k, v in _vendored_lists().items()}
        return cls._build("", lists, trial, "vendored idx files (DMM-CDCN copy)")

    def eval_plan(self, direction: Literal["visible-to-thermal", "thermal-to-visible"] = "visible-to-thermal",
                  trials: int | Sequence[int] | str | None = None, allow_other_trials: bool = False) -> EvalPlan:
        """``direction`` visible-to-thermal|thermal-to-visible over ``trials`` (default: the dataset's trial).

        A model trained on trial ``t`` has seen the test identities of every other trial (each trial
        is its own random split), so scoring it on them inflates the numbers; trials other than
        ``self.trial`` are refused unless ``allow_other_trials`` (e.g. features of a model trained
        elsewhere, or one model per trial scored by the caller).
        """
        if direction not in DIRECTIONS:
            raise ConfigError(f"regdb: direction must be one of {DIRECTIONS}, got {direction!r}")
        chosen = _parse_trials(self.trial if trials is None else trials)
        others = [t for t in chosen if t != self.trial]
        if others and not allow_other_trials:
            raise ConfigError(
                f"regdb: refusing to score trials {others} with the split of trial {self.trial}: each RegDB trial "
                f"is its own random identity split, so a model trained on trial {self.trial} has trained on most "
                f"test identities of the others and its numbers there are inflated. Train one model per trial "
                f"(data.options.trial=N) and test each on its own trial; pass allow_other_trials=true "
                f"(--protocol allow_other_trials=true) only if the model never saw trial {self.trial}'s training split")
        index = {s.relpath: i for i, s in enumerate(self.test)}
        q_mod, g_mod = ("visible", "thermal") if direction == "visible-to-thermal" else ("thermal", "visible")
        plan_trials = []
        for t in chosen:
            q = np.array([index[p] for p in self.lists[("test", q_mod, t)]], dtype=np.int64)
            g = np.array([index[p] for p in self.lists[("test", g_mod, t)]], dtype=np.int64)
            plan_trials.append(Trial(q, g))
        n_test = len({self.parse_relpath(p).pid for p in self.lists[("test", q_mod, chosen[0])]})
        n_train = len({self.parse_relpath(p).pid for p in self.lists[("train", "visible", chosen[0])]})
        settings = {
            "protocol": f"RegDB (Nguyen et al., Sensors'17), random {n_train}/{n_test} (train/test) identity split "
                        f"per trial",
            "direction": direction,
            "query": f"test {q_mod} images of the trial",
            "gallery": f"test {g_mod} images of the trial",
            "trials": chosen,
            "train_trial": self.trial,
            "other_trials_allowed": bool(others),
            "idx_files": self.lists_source,
        }
        return EvalPlan(self.name, settings, plan_trials, cmc_mode="image", exclusion=Exclusion.NONE)
