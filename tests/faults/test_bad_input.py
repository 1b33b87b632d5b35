"""Bad data, features and file-system failures: each is exit 2 with one line naming the file and what
was expected, and leaves no half-written output. Also the inputs that used to be read wrongly
(16-bit PNGs, identity 12.7) are now read right or refused."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vireid.data.datasets import build_dataset
from vireid.data.datasets.common import resource_path
from vireid.data.loader import decode_image
from vireid.errors import DatasetError

from .cli_helpers import assert_clear_error, assert_nothing_half_written, run_cli
from .conftest import tiny_values

HEADER = "path,identity,camera,modality,split\n"


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (no pixel data needed to trip the size check)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def manifest_folder(tmp_path: Path, lines: list[str] | bytes) -> Path:
    """data/manifest.csv with real 8x4 images for the rows named img*.png."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    text = lines if isinstance(lines, bytes) else (HEADER + "".join(line + "\n" for line in lines)).encode()
    for line in text.decode("utf-8", "replace").splitlines()[1:]:
        name = line.split(",")[0]
        if name.startswith("img"):
            Image.new("RGB", (4, 8), (10, 20, 30)).save(folder / name)
    (folder / "manifest.csv").write_bytes(text)
    return folder


def train_on(tmp_path: Path, capsys, dataset: str, root: Path, **data) -> tuple[int, str, Path]:
    values = tiny_values(root)
    values["data"].update(dataset=dataset, root=str(root), **data)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(values))
    run_dir = tmp_path / "run"
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", run_dir)
    return rc, err, run_dir


GOOD = ["img1.png,1,1,visible,train", "img2.png,1,2,infrared,train"]
MANIFEST_CASES = [
    ("parent-path", GOOD + ["../../outside.png,2,1,visible,train"], ["leave the image root", "../../outside.png",
                                                                     "allow_outside_root"]),
    ("absolute-path", GOOD + ["/etc/hostname,2,1,visible,train"], ["leave the image root", "/etc/hostname"]),
    ("identity-12.7", GOOD + ["img3.png,12.7,1,visible,train"], ["line 4", "identity must be an integer", "12.7"]),
    ("camera-text", GOOD + ["img3.png,3,two,visible,train"], ["line 4", "camera must be an integer", "two"]),
]


@pytest.mark.parametrize(("lines", "words"), [c[1:] for c in MANIFEST_CASES], ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifest_rows(tmp_path, capsys, lines, words):
    rc, err, run_dir = train_on(tmp_path, capsys, "manifest", manifest_folder(tmp_path, lines))
    assert_clear_error(rc, err, "train", "manifest", *words)
    assert not run_dir.exists()


def test_manifest_path_that_is_a_fifo_or_folder(tmp_path, capsys):
    folder = manifest_folder(tmp_path, GOOD + ["pipe.png,2,1,visible,train", "sub,2,2,infrared,train"])
    os.mkfifo(folder / "pipe.png")
    (folder / "sub").mkdir()
    rc, err, run_dir = train_on(tmp_path, capsys, "manifest", folder)
    assert_clear_error(rc, err, "train", "2 path(s) are not regular files", "pipe.png", "sub")
    assert not run_dir.exists()


def test_manifest_link_out_of_the_root(tmp_path, capsys):
    folder = manifest_folder(tmp_path, GOOD + ["link.png,2,1,visible,train"])
    outside = tmp_path / "secret.png"
    Image.new("L", (4, 8)).save(outside)
    (folder / "link.png").symlink_to(outside)
    rc, err, _ = train_on(tmp_path, capsys, "manifest", folder)
    assert_clear_error(rc, err, "train", "leave the image root", f"a link to {outside}")
    ds = build_dataset("manifest", folder, allow_outside_root=True)  # the explicit option allows it
    assert [s.relpath for s in ds.train][-1] == "link.png"


def test_manifest_outside_root_with_the_option(tmp_path):
    folder = manifest_folder(tmp_path, GOOD + ["../other/img9.png,2,1,visible,train"])
    ds = build_dataset("manifest", folder, allow_outside_root=True)
    assert ds.train[-1].path == os.path.join(str(folder), "../other/img9.png")


def test_manifest_json_identity_12_7(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.png", "identity": 12.7, "camera": 1,
                                                  "modality": "visible", "split": "train"}) + "\n")
    with pytest.raises(DatasetError, match=r"line 1: identity must be an integer, got 12\.7"):
        build_dataset("manifest", tmp_path / "m.jsonl")
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.png", "identity": 12.0, "camera": 1,
                                                  "modality": "visible", "split": "train"}) + "\n")
    assert build_dataset("manifest", tmp_path / "m.jsonl").train[0].pid == 12  # an integral float is fine


def test_non_utf8_manifest(tmp_path, capsys):
    text = (HEADER + GOOD[0] + "\n" + "caf\xe9.png,2,1,visible,train\n").encode("latin-1")
    rc, err, run_dir = train_on(tmp_path, capsys, "manifest", manifest_folder(tmp_path, text))
    assert_clear_error(rc, err, "train", "manifest.csv line 3", "not UTF-8")
    assert not run_dir.exists()


# ---------------------------------------------------------------------------- images


def test_16_bit_png_keeps_its_range(tmp_path):
    """A 12-bit infrared frame in a 16-bit PNG: stretched min..max to 0..255, not clipped to white."""
    raw = (np.arange(16 * 8).reshape(16, 8) * 29 + 100).astype(np.uint16)  # 100 .. 3783
    Image.fromarray(raw).save(tmp_path / "ir16.png")
    assert Image.open(tmp_path / "ir16.png").mode.startswith("I")
    img = decode_image(str(tmp_path / "ir16.png"))
    expected = np.rint((raw.astype(np.float64) - 100) * 255.0 / (3783 - 100)).astype(np.uint8)
    assert img.mode == "L" and np.array_equal(np.asarray(img), expected)
    flat = np.full((4, 4), 40000, dtype=np.uint16)
    Image.fromarray(flat).save(tmp_path / "flat16.png")
    assert np.asarray(decode_image(str(tmp_path / "flat16.png"))).max() == 0  # constant: no division by zero


def test_decompression_bomb_header_is_refused(tmp_path, capsys):
    bomb = png_header_only(tmp_path / "bomb.png", 30000, 30000)
    with pytest.raises(DatasetError, match=r"bomb\.png is too large to decode safely"):
        decode_image(str(bomb))
    between = png_header_only(tmp_path / "big.png", 9500, 9500)  # over the limit, under PIL's own 2x refusal
    with pytest.raises(DatasetError, match=r"big\.png is too large .* the header says 9500 x 9500"):
        decode_image(str(between))
    folder = manifest_folder(tmp_path, GOOD + ["img3.png,2,1,infrared,train", "bomb.png,2,1,visible,train"])
    shutil.copy(bomb, folder / "bomb.png")
    rc, err, run_dir = train_on(tmp_path, capsys, "manifest", folder, in_memory=True, val_fraction=0.0)
    assert_clear_error(rc, err, "train", "bomb.png is too large to decode safely", "pixels")
    assert_nothing_half_written(run_dir)
    assert not (run_dir / "last.pt").exists()


def test_fifo_image_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    signal.alarm(20)  # a blocking open would hang the suite: fail it instead
    try:
        with pytest.raises(DatasetError, match="is not a regular file"):
            decode_image(str(tmp_path / "pipe.png"))
    finally:
        signal.alarm(0)


# ---------------------------------------------------------------------------- dataset index files


@pytest.fixture
def regdb_root(tmp_path):
    """A RegDB tree with its own idx files (first 10 lines of the vendored ones) and empty images."""
    root = tmp_path / "RegDB"
    (root / "idx").mkdir(parents=True)
    blank = tmp_path / "blank.bmp"
    blank.touch()
    paths = set()
    for f in resource_path("regdb", "idx").iterdir():
        lines = f.read_text().splitlines()[:10]
        (root / "idx" / f.name).write_text("\n".join(lines) + "\n")
        paths.update(line.split()[0] for line in lines)
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        os.link(blank, root / p)
    return root


def _edit_idx(root: Path, name: str, edit) -> None:  # type: ignore[no-untyped-def]
    path = root / "idx" / name
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


REGDB_CASES = [
    ("duplicated-line", "test_visible_1.txt", lambda ls: ls + ls[:1], ["test_visible_1.txt", "listed twice"]),
    ("visible-in-thermal-list", "test_thermal_2.txt",
     lambda ls: ls + [ls[0].replace("Thermal/", "Visible/").replace("_t_", "_v_")],
     ["test_thermal_2.txt", "visible image in a thermal list"]),
    ("parent-path", "train_visible_1.txt", lambda ls: ls + ["../SYSU/cam1/0001/0001.jpg 0"],
     ["train_visible_1.txt", "leaves the dataset root"]),
]


@pytest.mark.parametrize(("name", "edit", "words"), [c[1:] for c in REGDB_CASES], ids=[c[0] for c in REGDB_CASES])
def test_bad_regdb_index_files(regdb_root, tmp_path, capsys, name, edit, words):
    build_dataset("regdb", regdb_root)  # the untouched tree reads
    _edit_idx(regdb_root, name, edit)
    rc, err, run_dir = train_on(tmp_path, capsys, "regdb", regdb_root)
    assert_clear_error(rc, err, "train", "regdb", *words)
    assert not run_dir.exists()


def test_sysu_test_id_without_a_folder(tiny_sysu, tmp_path, capsys):
    root = tmp_path / "sysu"
    shutil.copytree(tiny_sysu, root)
    ids = (root / "exp" / "test_id.txt").read_text().strip()
    (root / "exp" / "test_id.txt").write_text(ids + ",9999\n")
    rc, err, run_dir = train_on(tmp_path, capsys, "sysu-mm01", root)
    assert_clear_error(rc, err, "train", "sysu-mm01", "1 test id(s)", "test_id.txt", "9999")
    assert not run_dir.exists()


# ---------------------------------------------------------------------------- features files


def _features(tmp_path: Path, features: np.ndarray, name: str = "feats.npz") -> Path:
    paths = [f"cam3/0001/{i:04d}.jpg" for i in range(len(features))]
    out = tmp_path / name
    if name.endswith(".npy"):
        np.save(out, features)
    else:
        np.savez(out, features=features, paths=np.asarray(paths))
    return out


FEATURE_CASES = [
    ("D=0", np.zeros((3, 0)), "feats.npz", [], ["'features' has 0 columns", "D >= 1"]),
    ("1e200", np.full((3, 4), 1e200), "feats.npz", [], ["3 feature rows are too large", "overflows", "1e+200"]),
    ("1e200-normalize", np.full((3, 4), -1e200), "feats.npz", ["--normalize"], ["too large", "--normalize"]),
    ("npy", np.ones((3, 4)), "feats.npy", [], ["not a .npz archive", "np.savez"]),
    ("device-banana", np.ones((3, 4)), "feats.npz", ["--device", "banana"], ["--device", "'banana'", "expected auto"]),
]


@pytest.mark.parametrize(("features", "name", "flags", "words"), [c[1:] for c in FEATURE_CASES],
                         ids=[c[0] for c in FEATURE_CASES])
def test_bad_features_file(tmp_path, capsys, features, name, flags, words):
    path = _features(tmp_path, features, name)
    rc, err = run_cli(capsys, "evaluate-features", path, "--dataset", "sysu-mm01", *flags)
    assert_clear_error(rc, err, "evaluate-features", *words)


# ---------------------------------------------------------------------------- file-system failures


def test_run_dir_that_is_a_file(tiny_sysu, tmp_path, capsys):
    (tmp_path / "taken").write_text("not a folder")
    values = tiny_values(tiny_sysu)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(values))
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", tmp_path / "taken")
    assert_clear_error(rc, err, "train", str(tmp_path / "taken"), "File exists")
    rc, err = run_cli(capsys, "train", "--config", recipe, "--run-dir", tmp_path / "taken" / "run")
    assert_clear_error(rc, err, "train", "Not a directory", "a component of the path is a file")
    assert (tmp_path / "taken").read_text() == "not a folder"


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, ["No space left on device", "free some space"]),
                                              (errno.EROFS, ["Read-only file system", "writable output folder"])],
                         ids=["disk-full", "read-only"])
def test_disk_full_or_read_only_while_writing(finished_run, tmp_path, capsys, monkeypatch, code, words):
    """The write fails half-way: one line, exit 2, the half-written temporary file removed, no output."""
    _, run_dir = finished_run
    real = Path.write_bytes

    def fail_half_way(self, data):  # type: ignore[no-untyped-def]
        real(self, data[: len(data) // 2])
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "write_bytes", fail_half_way)
    out = tmp_path / "result.json"
    rc, err = run_cli(capsys, "test", "--run", run_dir, "--out", out)
    assert_clear_error(rc, err, "test", ".result.json.", *words)
    assert not out.exists()
    assert_nothing_half_written(tmp_path)


def test_output_path_that_is_a_folder(finished_run, tmp_path, capsys):
    _, run_dir = finished_run
    (tmp_path / "out.npz").mkdir()
    rc, err = run_cli(capsys, "extract", "--run", run_dir, "--out", tmp_path / "out.npz")
    assert_clear_error(rc, err, "extract", "out.npz")
    assert (tmp_path / "out.npz").is_dir() and list((tmp_path / "out.npz").iterdir()) == []
    assert_nothing_half_written(tmp_path)
