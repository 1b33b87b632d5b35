"""The synthetic dataset: layout, determinism, split files, permutation table, atomicity, CLI."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from vireid.cli import main as cli_main
from vireid.data.synthetic import SyntheticConfig, generate_dataset, plan_dataset, render_dataset_image
from vireid.data.synthetic import generator as gen_module
from vireid.errors import ConfigError, DatasetError

CONFIG = SyntheticConfig(num_ids=6, seed=3, images_per_camera=3, height=64, width=32)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate_dataset(out, CONFIG)
    return out


def images_of(root: Path, cam: int, pid: int) -> list[Path]:
    folder = root / f"cam{cam}" / f"{pid:04d}"
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def test_same_seed_gives_identical_bytes_and_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_dataset(again, CONFIG)
    first, second = tree_hashes(dataset), tree_hashes(again)
    assert first == second
    assert sum(name.endswith(".jpg") for name in first) == json.loads((dataset / "meta.json").read_text())["num_images"]
    other = render_dataset_image(SyntheticConfig(**{**CONFIG.__dict__, "seed": 4}), 1, 3, 0)
    assert not np.array_equal(other, render_dataset_image(CONFIG, 1, 3, 0))


def test_identity_does_not_depend_on_the_number_of_ids() -> None:
    bigger = SyntheticConfig(**{**CONFIG.__dict__, "num_ids": 9})
    for cam in (1, 3):
        np.testing.assert_array_equal(render_dataset_image(CONFIG, 2, cam, 1), render_dataset_image(bigger, 2, cam, 1))
    # and images of one identity in one camera are not identical (per-image jitter)
    assert not np.array_equal(render_dataset_image(CONFIG, 2, 1, 0), render_dataset_image(CONFIG, 2, 1, 1))


def test_layout_modalities_and_counts(dataset: Path) -> None:
    meta = json.loads((dataset / "meta.json").read_text())
    plan = plan_dataset(CONFIG)
    assert meta["generator"] == gen_module.GENERATOR_NAME and meta["version"] == gen_module.GENERATOR_VERSION
    assert meta["config"]["seed"] == 3
    for cam in range(1, 7):
        pid_dirs = sorted(p.name for p in (dataset / f"cam{cam}").iterdir())
        assert pid_dirs == [f"{pid:04d}" for pid in sorted(plan.counts[cam])]
        assert meta["cameras"][f"cam{cam}"]["images"] == plan.num_images(cam)
        for pid, n in plan.counts[cam].items():
            files = images_of(dataset, cam, pid)
            assert [f.name for f in files] == [f"{k:04d}.jpg" for k in range(1, n + 1)]
            assert 2 <= n <= 3  # in [ceil(M / 2), M]
            with Image.open(files[0]) as img:
                assert img.size == (32, 64)
                assert img.mode == ("L" if cam in (3, 6) else "RGB")
                assert img.format == "JPEG"
    assert (dataset / "README.txt").read_text().startswith("Synthetic visible-infrared")


def test_every_identity_is_queryable_in_both_search_modes(dataset: Path) -> None:
    for pid in range(1, CONFIG.num_ids + 1):
        has = {cam for cam in range(1, 7) if images_of(dataset, cam, pid)}
        assert has & {3, 6}, pid          # an infrared query
        assert has & {1, 2}, pid          # an indoor-search gallery image
        assert has & {1, 4, 5}, pid       # a match for cam-3 queries, which ignore cam 2


def test_split_files_parse_are_disjoint_and_cover_available(dataset: Path) -> None:
    ids = {}
    for name in ("train_id", "val_id", "test_id", "available_id"):
        text = (dataset / "exp" / f"{name}.txt").read_text()
        assert text.endswith("\n") and text.count("\n") == 1, name
        ids[name] = [int(x) for x in text.strip().split(",")]
        assert ids[name] == sorted(ids[name]), name
    train, val, test = set(ids["train_id"]), set(ids["val_id"]), set(ids["test_id"])
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(ids["available_id"]) == set(range(1, CONFIG.num_ids + 1))
    assert (len(train), len(val), len(test)) == (4, 1, 1)  # round(0.2 * 6) = 1 each


def test_split_proportions_like_sysu() -> None:
    plan = plan_dataset(SyntheticConfig(num_ids=200))
    assert (len(plan.train_ids), len(plan.val_ids), len(plan.test_ids)) == (120, 40, 40)


def test_rand_perm_cam_has_the_official_structure(dataset: Path) -> None:
    mat = scipy.io.loadmat(dataset / "exp" / "rand_perm_cam.mat")
    assert mat["__header__"].startswith(b"MATLAB 5.0 MAT-file")
    table = mat["rand_perm_cam"]
    assert table.shape == (6, 1) and table.dtype == object
    for cam in range(1, 7):
        cell = table[cam - 1, 0]
        assert cell.shape == (CONFIG.num_ids, 1) and cell.dtype == object
        for pid in range(1, CONFIG.num_ids + 1):
            perm = cell[pid - 1, 0]
            n = len(images_of(dataset, cam, pid))
            assert perm.dtype == np.uint8
            assert perm.shape == (10, n), (cam, pid)
            for row in perm:
                assert sorted(row.tolist()) == list(range(1, n + 1))


def test_contact_sheet_is_written(dataset: Path) -> None:
    with Image.open(dataset / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG"
        rows = len(json.loads((dataset / "meta.json").read_text())["contact_sheet_ids"])
        assert rows >= 1
        assert sheet.size[1] == 16 + rows * (128 + 2) + 2
        assert sheet.size[0] > 6 * 64


def test_refuses_non_empty_folder_and_force_replaces_only_our_own(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"ds is not empty \(10 entries, e.g. README.txt, cam1, cam2\); pass --force"):
        generate_dataset(dataset, CONFIG)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="only replaces a folder written by this generator"):
        generate_dataset(foreign, CONFIG, force=True)
    assert (foreign / "notes.txt").read_text() == "mine"
    replaced = tmp_path / "replaced"
    generate_dataset(replaced, SyntheticConfig(**{**CONFIG.__dict__, "num_ids": 5}))
    generate_dataset(replaced, CONFIG, force=True)
    assert json.loads((replaced / "meta.json").read_text())["config"]["num_ids"] == 6
    assert sorted(os.listdir(tmp_path)) == ["foreign", "replaced"]  # no temporary folders left
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_dataset(empty, SyntheticConfig(**{**CONFIG.__dict__, "num_ids": 5}))  # an empty folder is fine
    assert (empty / "meta.json").is_file()


def test_interrupted_run_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = gen_module.render_dataset_image

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gen_module, "render_dataset_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "ds", CONFIG)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("field,value", [("num_ids", 2), ("seed", -1), ("height", 8), ("images_per_camera", 0),
                                         ("width", 3.5)])
def test_config_validation_names_the_argument(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        SyntheticConfig(**{**CONFIG.__dict__, field: value}).validate()


def test_cli_writes_then_refuses_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--ids", "5", "--seed", "1", "--images-per-camera", "1",
            "--height", "48", "--width", "24", "--quiet"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "contact_sheet.png" in printed
    assert json.loads((out / "meta.json").read_text())["config"] == {
        "num_ids": 5, "seed": 1, "images_per_camera": 1, "height": 48, "width": 24}
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "vireid synth: error:" in err and str(out) in err and "--force" in err
    assert cli_main([*argv, "--force"]) == 0
    assert cli_main(["synth", "--out", str(tmp_path / "bad"), "--ids", "1"]) == 2
    assert "num_ids" in capsys.readouterr().err


def _structure(table: np.ndarray) -> list[tuple]:
    cells = [table[c, 0] for c in range(6)]
    kinds = [sorted({(type(x[0]).__name__, x[0].ndim, x[0].shape[0], x[0].dtype.str) for x in cell}) for cell in cells]
    return [(table.shape, table.dtype.str)] + [(c.ndim, c.shape[1], c.dtype.str, k) for c, k in zip(cells, kinds)]


def test_rand_perm_cam_loads_like_the_vendored_official_table(dataset: Path) -> None:
    import importlib.resources

    official = importlib.resources.files("vireid").joinpath("resources", "sysu-mm01", "official-eval",
                                                            "rand_perm_cam.mat")
    with importlib.resources.as_file(official) as path:
        real = scipy.io.loadmat(path)
    ours = scipy.io.loadmat(dataset / "exp" / "rand_perm_cam.mat")
    assert sorted(ours) == sorted(real)
    assert _structure(ours["rand_perm_cam"]) == _structure(real["rand_perm_cam"])
    # empty entries look the same too, raw and squeezed
    empty_real = next(x[0] for x in real["rand_perm_cam"][0, 0] if x[0].size == 0)
    empties = [x[0] for c in range(6) for x in ours["rand_perm_cam"][c, 0] if x[0].size == 0]
    assert empties and all(e.shape == empty_real.shape == (10, 0) and e.dtype == empty_real.dtype for e in empties)


def test_the_sysu_reader_and_protocol_serve_the_dataset(dataset: Path) -> None:
    from vireid.data.datasets.sysu import SYSUMM01

    meta = json.loads((dataset / "meta.json").read_text())
    ds = SYSUMM01.load(str(dataset))
    assert len(ds.train) + len(ds.test) == meta["num_images"]
    for mode in ("all", "indoor"):
        plan = ds.eval_plan(mode=mode)  # official sampling: the table shipped with the dataset
        assert len(plan.trials) == 10
        assert len(plan.trials[0].query) == meta["test_infrared_queries"]
        assert str(dataset) in plan.settings["gallery_table"]
