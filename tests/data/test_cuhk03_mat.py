"""Extracting the original cuhk-03.mat (HDF5, MATLAB v7.3 layout) into the new-protocol folders."""

from __future__ import annotations

from pathlib import Path

import h5py  # a dev dependency (vireid[cuhk03]), installed by make test
import numpy as np
import pytest
from PIL import Image

from vireid.cli import main
from vireid.data.datasets.cuhk03_mat import extract_cuhk03, image_name
from vireid.errors import DatasetError



def _write_archive(path: Path, images: dict[tuple[str, int, int, int], np.ndarray], ids: list[int]) -> None:
    """MATLAB's v7.3 storage: a (1, pairs) cell of references per version, each pair a cell stored as
    (10, ids) references (column-major), each image stored as (3, W, H); a missing view is a 2-vector."""
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        ref_dtype = h5py.special_dtype(ref=h5py.Reference)
        for version in ("labeled", "detected"):
            pair_refs = []
            for pair, n in enumerate(ids):
                cell = np.empty((10, n), dtype=object)
                for pid in range(n):
                    for view in range(10):
                        img = images.get((version, pair, pid, view))
                        data = np.zeros(2, np.uint64) if img is None else img.transpose(2, 1, 0)
                        cell[view, pid] = refs.create_dataset(f"{version}_{pair}_{pid}_{view}", data=data).ref
                pair_refs.append(refs.create_dataset(f"{version}_pair{pair}", data=cell, dtype=ref_dtype).ref)
            f.create_dataset(version, data=np.array([pair_refs], dtype=object), dtype=ref_dtype)


def test_extraction_writes_every_view_under_its_protocol_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = {}
    for version in ("labeled", "detected"):
        for pair, n in enumerate((2, 3)):
            for pid in range(n):
                for view in (0, 1, 5, 6, 7) if pid else (0, 5):  # identity 0: one view per camera
                    h, w = 6 + pid, 4 + view % 3
                    images[(version, pair, pid, view)] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    _write_archive(tmp_path / "cuhk-03.mat", images, [2, 3])
    assert main(["prepare-cuhk03", "--root", str(tmp_path)]) == 0
    for (version, pair, pid, view), img in images.items():
        got = np.asarray(Image.open(tmp_path / f"images_{version}" / image_name(pair, pid, view)))
        assert got.shape == img.shape and (got == img).all()
    assert len(list((tmp_path / "images_labeled").iterdir())) == sum(k[0] == "labeled" for k in images)
    assert image_name(1, 2, 6) == "2_003_2_07.png" and image_name(0, 0, 4) == "1_001_1_05.png"
    with pytest.raises(DatasetError, match="images_labeled exists; pass --overwrite"):
        extract_cuhk03(tmp_path, ("labeled",))
    assert extract_cuhk03(tmp_path, ("labeled",), overwrite=True) == {"labeled": 19}  # pair 1: 2 + 5 views, pair 2: 2 + 5 + 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".images_")]  # no temporary folder left


def test_missing_or_unreadable_archive_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare-cuhk03", "--root", str(tmp_path)]) == 2
    assert "no cuhk-03.mat or cuhk03_release/cuhk-03.mat under" in capsys.readouterr().err
    (tmp_path / "cuhk-03.mat").write_bytes(b"not hdf5")
    assert main(["prepare-cuhk03", "--root", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err and not (tmp_path / "images_labeled").exists()
