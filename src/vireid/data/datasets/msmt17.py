"""MSMT17 (Wei et al., CVPR'18), V1 and V2 (PROTOCOLS.md "Single-modality, occluded, partial and
text-based re-ID").

Layout ``ROOT/{train,test,list_train.txt,list_val.txt,list_query.txt,list_gallery.txt}`` (V1) or
``ROOT/{mask_train_v2,mask_test_v2,list_*.txt}`` (V2); ROOT may also hold ``MSMT17_V1``/``MSMT17_V2``.
List lines ``<pid>/<name>.jpg <pid>``, paths relative to the train (train, val lists) or test
folder (query, gallery lists). The camera is the third ``_`` field of the name, 1..15 (two digits:
parsing one character is a known bug of some code). Train = ``list_train`` only (``combine_val``
adds ``list_val``). Test pids restart at 0. Market protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vireid.data.datasets.common import first, missing_files, read_index_file, require_root, split_relpath
from vireid.data.datasets.counts import check_count_mode, check_counts, split_counts
from vireid.data.datasets.market_style import SplitDataset
from vireid.errors import ConfigError, DatasetError
from vireid.types import Modality, Sample

FOLDERS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
NUM_CAMERAS = 15
OFFICIAL = {"train": {"images": 32621, "ids": 1041}, "query": {"images": 11659}, "gallery": {"images": 82161},
            "test": {"ids": 3060}}


def msmt_camera(name: str) -> int:
    """The camera of ``0000_000_01_0303morning_0015_0.jpg``: the third ``_`` field (1..15)."""
    fields = name.split("_")
    if len(fields) < 3 or not fields[2].isdigit() or not 1 <= int(fields[2]) <= NUM_CAMERAS:
        raise DatasetError(f"msmt17: file name {name!r}: the third '_' field must be the camera 1..{NUM_CAMERAS} "
                           f"(e.g. 0000_000_01_0303morning_0015_0.jpg)")
    return int(fields[2])


class MSMT17(SplitDataset):
    """MSMT17 V1 or V2 (the version is read from the folder names)."""

    name = "msmt17"
    layout = ("msmt17 layout ROOT/{train,test}/<pid>/<name>.jpg (V1) or ROOT/{mask_train_v2,mask_test_v2}/... (V2) "
              "with ROOT/list_{train,val,query,gallery}.txt ('<pid>/<name>.jpg <pid>' per line); ROOT may also "
              "hold MSMT17_V1/ or MSMT17_V2/")

    @classmethod
    def _resolve(cls, root: str) -> tuple[Path, str]:
        path = require_root(root, cls.name, cls.layout)
        for cand in (path, path / "MSMT17_V1", path / "MSMT17_V2", path / "MSMT17"):
            for version, folders in FOLDERS.items():
                if all((cand / f).is_dir() for f in folders):
                    return cand, version
        present = sorted(p.name for p in path.iterdir())[:8]
        raise DatasetError(f"msmt17: no train/test (V1) or mask_train_v2/mask_test_v2 (V2) folders under {path} "
                           f"(found {present}); expected {cls.layout}")

    @classmethod
    def load(cls, root: str, combine_val: bool = False, counts: str = "warn") -> "MSMT17":
        """Read ``root``; ``combine_val`` adds list_val to train; ``counts``: warn | strict | off."""
        check_count_mode(cls.name, counts)
        base, version = cls._resolve(root)
        missing = [n for n in LISTS if not (base / n).is_file()]
        if missing:
            raise DatasetError(f"msmt17: missing list file(s) {missing} under {base}; expected {cls.layout}")
        train_dir, test_dir = FOLDERS[version]
        groups: dict[str, list[Sample]] = {}
        for key, folder in (("train", train_dir), ("val", train_dir), ("query", test_dir), ("gallery", test_dir)):
            rows = read_index_file(base / f"list_{key}.txt", cls.name)
            samples = []
            for rel, pid in rows:
                name = split_relpath(rel)[-1]
                samples.append(Sample(f"{folder}/{rel}", pid, msmt_camera(name), Modality.VISIBLE, str(base)))
            groups[key] = samples
        absent = missing_files(base, [s.relpath for v in groups.values() for s in v])
        if absent:
            raise DatasetError(f"msmt17: {len(absent)} listed images are missing under {base}: {first(absent)}")
        found = {k: split_counts([s.pid for s in v]) for k, v in groups.items()}
        found["test"] = {"ids": len({s.pid for s in groups["query"] + groups["gallery"]})}
        status = check_counts(f"{cls.name} {version}", found, OFFICIAL, counts, str(base))
        train = groups["train"] + (groups["val"] if combine_val else [])
        test = groups["query"] + groups["gallery"]
        splits = ["query"] * len(groups["query"]) + ["gallery"] * len(groups["gallery"])
        return cls(str(base), train, test, splits, status,
                   {"version": version, "train_lists": "list_train + list_val" if combine_val else "list_train"})

    @classmethod
    def for_relpaths(cls, relpaths: Any, root: str = "", **options: Any) -> "MSMT17":
        if not root:
            raise ConfigError("msmt17: no vendored split files; pass the dataset root")
        return cls.load(root, **options)

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        if len(parts) < 2 or not parts[-2].isdigit():
            raise DatasetError(f"msmt17: path {relpath!r} is not <folder>/<pid>/<name>.jpg")
        return Sample("/".join(parts), int(parts[-2]), msmt_camera(parts[-1]), Modality.VISIBLE, str(root))
