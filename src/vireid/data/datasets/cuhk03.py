"""CUHK03-NP (Li et al. CVPR'14; new protocol of Zhong et al. CVPR'17), labeled or detected boxes.

Two layouts (PROTOCOLS.md "Single-modality, occluded, partial and text-based re-ID"):

- the Market-style copy ``ROOT/{labeled,detected}/{bounding_box_train,query,bounding_box_test}``
  (also ``ROOT/cuhk03-np/{labeled,detected}/...``), names ``0001_c1_01.png``;
- the protocol file ``ROOT/cuhk03_new_protocol_config_{labeled,detected}.mat`` (MATLAB v5: ``filelist``,
  ``labels``, ``camId``, ``train_idx``, ``query_idx``, ``gallery_idx``, 1-based) with the images of
  ``filelist`` extracted into ``ROOT/images_{labeled,detected}/`` (the layout torchreid extracts
  ``cuhk-03.mat`` into): ``vireid prepare-cuhk03 --root ROOT`` extracts them from the HDF5 archive
  (:mod:`vireid.data.datasets.cuhk03_mat`).

2 cameras; train 767 ids, test 700; Market protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vireid.data.datasets.common import first, missing_files, require_root, split_relpath
from vireid.data.datasets.counts import check_count_mode, check_counts, split_counts
from vireid.data.datasets.market_style import SPLIT_FOLDERS, MarketStyleDataset
from vireid.errors import ConfigError, DatasetError
from vireid.types import Modality, Sample

VERSIONS = ("labeled", "detected")
OFFICIAL = {
    "labeled": {"train": {"images": 7368, "ids": 767}, "query": {"images": 1400, "ids": 700},
                "gallery": {"images": 5328, "ids": 700}},
    "detected": {"train": {"images": 7365, "ids": 767}, "query": {"images": 1400, "ids": 700},
                 "gallery": {"images": 5332, "ids": 700}},
}
MAT_KEYS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")


def _check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ConfigError(f"cuhk03-np: version must be one of {VERSIONS}, got {version!r}")
    return version


def _mat_strings(cell: np.ndarray) -> list[str]:
    out = []
    for item in np.asarray(cell, dtype=object).reshape(-1):
        while isinstance(item, np.ndarray):
            item = item.reshape(-1)[0] if item.size else ""
        out.append(str(item))
    return out


class CUHK03NP(MarketStyleDataset):
    """CUHK03-NP; ``version`` labeled|detected picks the boxes."""

    name = "cuhk03-np"
    num_cameras = 2
    example = "0001_c1_01.png"
    layout = ("cuhk03-np layout ROOT/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/<pid>_c<cam>_*.png "
              "(or ROOT/cuhk03-np/{labeled,detected}/...), or ROOT/cuhk03_new_protocol_config_{labeled,detected}.mat "
              "with the images of its filelist in ROOT/images_{labeled,detected}/")
    official: ClassVar[dict[str, dict[str, int]]] = OFFICIAL["labeled"]

    @classmethod
    def _layout(cls) -> str:
        return cls.layout

    @classmethod
    def load(cls, root: str, version: str = "labeled", counts: str = "warn") -> "CUHK03NP":  # type: ignore[override]
        """Read ``root`` (either layout); ``counts``: warn | strict | off."""
        check_count_mode(cls.name, counts)
        _check_version(version)
        path = require_root(root, cls.name, cls.layout)
        mat = path / f"cuhk03_new_protocol_config_{version}.mat"
        if mat.is_file():
            return cls._read_mat(path, mat, version, counts)
        for cand in (path / version, path / "cuhk03-np" / version, path):
            if all((cand / f).is_dir() for f in SPLIT_FOLDERS.values()):
                data = cls._read(cand, "off")
                found = {"train": split_counts([s.pid for s in data.train])}
                for sp in ("query", "gallery"):
                    found[sp] = split_counts([s.pid for s, x in zip(data.test, data.splits) if x == sp])
                data.counts_status = check_counts(f"{cls.name} {version}", found, OFFICIAL[version], counts, str(cand))
                data.extra = {"version": version, "form": "market-style copy"}
                return data
        raise DatasetError(f"cuhk03-np: neither {mat.name} nor {version}/{{bounding_box_train,query,"
                           f"bounding_box_test}} under {path}; expected {cls.layout}")

    @classmethod
    def for_relpaths(cls, relpaths: Any, root: str = "", **options: Any) -> "CUHK03NP":
        if not root:
            raise ConfigError("cuhk03-np: no vendored split files; pass the dataset root")
        return cls.load(root, **options)

    @classmethod
    def _read_mat(cls, root: Path, mat: Path, version: str, counts: str) -> "CUHK03NP":
        import scipy.io

        try:
            data = scipy.io.loadmat(str(mat))
        except (OSError, ValueError, NotImplementedError) as exc:
            raise DatasetError(f"cuhk03-np: cannot read {mat} as a MATLAB v5 file ({exc})") from exc
        missing = [k for k in MAT_KEYS if k not in data]
        if missing:
            raise DatasetError(f"cuhk03-np: {mat} lacks {missing}; expected the keys {list(MAT_KEYS)} of the "
                               f"new-protocol config")
        files = _mat_strings(data["filelist"])
        labels = np.asarray(data["labels"]).reshape(-1).astype(np.int64)
        if len(labels) != len(files):
            raise DatasetError(f"cuhk03-np: {mat} has {len(files)} files but {len(labels)} labels")
        cams = (np.asarray(data["camId"]).reshape(-1).astype(np.int64) if "camId" in data
                else np.array([int(f.split("_")[2]) for f in files], dtype=np.int64))
        folder = f"images_{version}"
        rel = [f"{folder}/{f}" for f in files]
        idx = {k: np.asarray(data[f"{k}_idx"]).reshape(-1).astype(np.int64) - 1 for k in ("train", "query", "gallery")}
        bad = {k: v for k, v in idx.items() if v.size and (v.min() < 0 or v.max() >= len(files))}
        if bad:
            raise DatasetError(f"cuhk03-np: {mat}: indices of {sorted(bad)} fall outside 1..{len(files)}")
        needed = sorted({rel[i] for v in idx.values() for i in v})
        absent = missing_files(root, needed)
        if absent:
            raise DatasetError(f"cuhk03-np: {len(absent)} images of {mat.name} are missing under {root}: "
                               f"{first(absent)}; extract cuhk-03.mat into {folder}/ first: vireid prepare-cuhk03 --root {root}")

        def make(i: int) -> Sample:
            return Sample(rel[i], int(labels[i]), int(cams[i]), Modality.VISIBLE, str(root))

        groups = {k: [make(int(i)) for i in v] for k, v in idx.items()}
        found = {k: split_counts([s.pid for s in v]) for k, v in groups.items()}
        status = check_counts(f"{cls.name} {version}", found, OFFICIAL[version], counts, str(mat))
        test = groups["query"] + groups["gallery"]
        splits = ["query"] * len(groups["query"]) + ["gallery"] * len(groups["gallery"])
        out = cls(str(root), groups["train"], test, splits, status, {"version": version, "form": mat.name})
        return out

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        parts = split_relpath(relpath)
        if len(parts) >= 2 and parts[-2].startswith("images_"):
            fields = parts[-1].split("_")  # 1_001_1_01.png: campair, pid, camera, image
            if len(fields) < 4 or not all(f.isdigit() for f in fields[:3]):
                raise DatasetError(f"cuhk03-np: file name {parts[-1]!r} is not <campair>_<pid>_<cam>_<n>.png")
            return Sample("/".join(parts[-2:]), int(fields[0]) * 1000 + int(fields[1]), int(fields[2]),
                          Modality.VISIBLE, str(root))
        return super().parse_relpath(relpath, root)
