"""``<root>/aux/<key>/<relpath>.npz`` and the error / fallback / skip policies (METHODS.md §0)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from vireid.data.aux_store import AuxStore, band_parsing, uniform_heatmaps
from vireid.errors import DatasetError


def test_policies(tmp_path, caplog):
    store = AuxStore(tmp_path)
    target = store.path("pose_heatmap", "query/0001_c1.jpg")
    target.parent.mkdir(parents=True)
    np.savez(target, pose_heatmap=np.ones((17, 4, 2), np.float32))
    assert store.get("pose_heatmap", "query/0001_c1.jpg").shape == (17, 4, 2)
    with pytest.raises(DatasetError, match=r"missing aux file .*aux/parsing/query/0001_c1\.jpg\.npz"):
        store.get("parsing", "query/0001_c1.jpg")
    with caplog.at_level(logging.WARNING):
        assert store.get("parsing", "a.jpg", "skip") is None and store.skipped["parsing"] == 1
        maps = store.get("pose_heatmap", "b.jpg", "fallback", uniform_heatmaps(17, 4, 2))
    assert maps.shape == (17, 4, 2) and np.allclose(maps.sum(axis=(1, 2)), 1.0)
    assert store.fallbacks["pose_heatmap"] == 1 and "expect lower accuracy" in caplog.text
    with pytest.raises(DatasetError, match="defines no fallback"):
        store.get("caption", "c.jpg", "fallback")
    with pytest.raises(DatasetError, match="unknown aux key 'pose'"):
        store.get("pose", "c.jpg")


def test_band_teacher():
    bands = band_parsing(8, 3, bands=4)("x.jpg")
    assert bands[:, 0].tolist() == [1, 1, 2, 2, 3, 3, 4, 4] and (bands == bands[:, :1]).all()
