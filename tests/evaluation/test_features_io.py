"""The features file: save/load round trip and the errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.errors import FeaturesError
from vireid.evaluation.features import load_features, save_features


def test_round_trip_with_metadata(tmp_path):
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "sub" / "f.npz"
    save_features(path, feats, ["cam3/0006/0001.jpg", ".\\cam3\\0006\\0002.jpg", "./cam6/0006/0001.jpg"],
                  metadata={"flip": True})
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.npz"]  # no temporary left behind
    loaded = load_features(path)
    np.testing.assert_array_equal(loaded.features, feats)
    assert loaded.features.dtype == np.float32
    assert loaded.paths == ["cam3/0006/0001.jpg", "cam3/0006/0002.jpg", "cam6/0006/0001.jpg"]
    assert loaded.metadata == {"flip": True}
    features, paths, metadata = loaded  # unpacks like a tuple
    assert len(paths) == 3


def test_hand_written_npz_without_metadata(tmp_path):
    np.savez(tmp_path / "f.npz", features=np.zeros((2, 3)), paths=np.array(["a/1.jpg", "a/2.jpg"]))
    assert load_features(tmp_path / "f.npz").metadata == {}


@pytest.mark.parametrize("arrays,message", [
    ({"feats": np.zeros((1, 2)), "paths": np.array(["a"])},
     r"missing key\(s\) \['features'\]; found \['feats', 'paths'\]"),
    ({"features": np.zeros((2, 2)), "paths": np.array(["a", "b", "c"])}, "2 feature rows but 3 paths"),
    ({"features": np.zeros(3), "paths": np.array(["a", "b", "c"])}, r"must be 2-D \(N, D\)"),
    ({"features": np.zeros((2, 2), dtype=np.int64), "paths": np.array(["a", "b"])}, "must be floating point"),
    ({"features": np.array([[0.0, 1.0], [np.nan, 0.0], [np.inf, 1.0]]), "paths": np.array(["a", "b", "c"])},
     "2 feature rows have NaN/inf values, first: 'b', 'c'"),
    ({"features": np.zeros((3, 2)), "paths": np.array(["a/1", "b", "./a/1"])}, "1 duplicate paths, first: 'a/1'"),
    ({"features": np.zeros((1, 2)), "paths": np.array(["/data/a.jpg"])}, "paths must be relative to the dataset root"),
    ({"features": np.zeros((1, 2)), "paths": np.array([1])}, "'paths' must be a 1-D array of strings"),
])
def test_bad_files_raise_features_error(tmp_path, arrays, message):
    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(FeaturesError, match=message):
        load_features(tmp_path / "f.npz")


def test_unreadable_or_missing_file(tmp_path):
    with pytest.raises(FeaturesError, match="does not exist"):
        load_features(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FeaturesError, match="not a readable .npz features file"):
        load_features(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", features=np.zeros((1, 2)), paths=np.array(["a"], dtype=object))
    with pytest.raises(FeaturesError, match="not a readable"):  # object arrays need pickle: refused
        load_features(tmp_path / "obj.npz")


def test_save_refuses_bad_input_and_writes_nothing(tmp_path):
    with pytest.raises(FeaturesError, match="duplicate paths"):
        save_features(tmp_path / "f.npz", np.zeros((2, 2)), ["a", "a"])
    with pytest.raises(FeaturesError, match="NaN/inf"):
        save_features(tmp_path / "f.npz", np.full((1, 2), np.nan), ["a"])
    assert not list(tmp_path.iterdir())


def test_checks_run_in_row_blocks_and_still_name_the_bad_rows(tmp_path, monkeypatch):
    import vireid.evaluation.features as features_module

    monkeypatch.setattr(features_module, "_CHECK_ROWS", 2)  # rows 0-1, 2-3, 4: the bad rows in later blocks
    feats = np.zeros((5, 3))
    feats[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", features=feats, paths=np.array(list("abcde")))
    with pytest.raises(FeaturesError, match="1 feature rows have NaN/inf values, first: 'd'"):
        load_features(tmp_path / "nan.npz")
    feats = np.zeros((5, 3))
    feats[4] = 1e200  # finite, but the squared norm overflows float64
    np.savez(tmp_path / "big.npz", features=feats, paths=np.array(list("abcde")))
    with pytest.raises(FeaturesError, match=r"1 feature rows are too large.*largest \|value\| 1e\+200.*First: 'e'"):
        load_features(tmp_path / "big.npz")
