"""Synthetic target domains written in the source's layout: same relpaths, split files, protocol; atomic; CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vireid.commands import domains as domains_command
from vireid.methods.dan import domains
from vireid.data.datasets import build_dataset
from vireid.data.synthetic import SyntheticConfig, generate_dataset
from vireid.errors import ConfigError, DatasetError


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("domains") / "src"
    generate_dataset(root, SyntheticConfig(num_ids=6, seed=2, images_per_camera=2, height=48, width=24))
    return root


@pytest.mark.parametrize("kind", domains.KINDS)
def test_domain_copy_keeps_layout_split_files_and_protocol(source: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / kind
    meta = domains.transform_dataset(source, out, kind, seed=7, sheet_per_modality=2)
    before, after = tree(source), tree(out)
    assert set(after) == set(before) | {domains.META_FILE, domains.SHEET_FILE}
    for rel in ("exp/train_id.txt", "exp/val_id.txt", "exp/test_id.txt", "exp/rand_perm_cam.mat", "meta.json"):
        assert after[rel] == before[rel]  # non-image files copied byte for byte
    src_ds, dst_ds = build_dataset("sysu-mm01", source), build_dataset("sysu-mm01", out)
    assert [(s.relpath, s.pid, s.camid, s.modality) for s in src_ds.train + src_ds.test] == \
           [(s.relpath, s.pid, s.camid, s.modality) for s in dst_ds.train + dst_ds.test]
    plan_a, plan_b = src_ds.eval_plan(), dst_ds.eval_plan()
    assert all(np.array_equal(a.gallery, b.gallery) for a, b in zip(plan_a.trials, plan_b.trials))
    changed = 0
    for s in dst_ds.train + dst_ds.test:
        with Image.open(source / s.relpath) as a, Image.open(out / s.relpath) as b:
            assert a.size == b.size and a.mode == b.mode
        changed += after[s.relpath] != before[s.relpath]
        if kind == "color" and s.camid in (3, 6):
            assert after[s.relpath] == before[s.relpath]  # infrared untouched by the colour domain
    n = len(dst_ds.train) + len(dst_ds.test)
    n_ir = sum(s.camid in (3, 6) for s in dst_ds.train + dst_ds.test)
    assert changed == (n - n_ir if kind == "color" else n)
    assert meta["images"] == n and meta["transformed"] == changed and meta["kind"] == kind
    assert json.loads((out / domains.META_FILE).read_text())["seed"] == 7
    with Image.open(out / domains.SHEET_FILE) as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > sheet.size[1]


def test_same_seed_same_bytes_other_seed_differs(source: Path, tmp_path: Path) -> None:
    domains.transform_dataset(source, tmp_path / "a", "occlusion", seed=1)
    domains.transform_dataset(source, tmp_path / "b", "occlusion", seed=1)
    domains.transform_dataset(source, tmp_path / "c", "occlusion", seed=2)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b
    assert a != c and a["exp/test_id.txt"] == c["exp/test_id.txt"]


def test_refuses_foreign_folders_replaces_its_own_and_leaves_nothing_on_failure(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not empty; pass --force"):
        domains.transform_dataset(source, foreign, "noise")
    with pytest.raises(DatasetError, match="only replaces a folder this command wrote"):
        domains.transform_dataset(source, foreign, "noise", force=True)
    ours = tmp_path / "ours"
    domains.transform_dataset(source, ours, "noise", seed=1)
    domains.transform_dataset(source, ours, "lighting", seed=1, force=True)
    assert json.loads((ours / domains.META_FILE).read_text())["kind"] == "lighting"
    with pytest.raises(DatasetError, match="must lie outside"):
        domains.transform_dataset(source, source / "inner", "noise")

    calls = {"n": 0}
    real = domains.transform_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(domains, "transform_image", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        domains.transform_dataset(source, tmp_path / "broken", "noise")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "ours"]  # no output, no temporary


def test_unreadable_source_names_every_reader(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no dataset reader recognises .*sysu-mm01: .*regdb: .*manifest: "):
        domains.transform_dataset(tmp_path / "empty", tmp_path / "out", "noise")
    with pytest.raises(DatasetError, match="is not a folder"):
        domains.transform_dataset(tmp_path / "missing", tmp_path / "out", "noise")


def test_manifest_dataset_domain(tmp_path: Path) -> None:
    root = tmp_path / "tw"
    rows = ["path,identity,camera,modality,split"]
    for pid in range(3):
        for mod, mode in (("visible", "RGB"), ("thermal", "L")):
            rel = f"{mod}/{pid}.png"
            (root / mod).mkdir(parents=True, exist_ok=True)
            shape = (16, 8, 3) if mode == "RGB" else (16, 8)
            Image.fromarray(np.full(shape, 40 + 50 * pid, np.uint8), mode).save(root / rel)
            rows.append(f"{rel},{pid},{1 if mod == 'visible' else 2},{mod},{'train' if pid else 'test'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    meta = domains.transform_dataset(root, tmp_path / "tw_color", "color", seed=0)
    assert meta["dataset"] == "manifest" and meta["transformed"] == 3 and meta["unchanged_images"] == 3
    assert (tmp_path / "tw_color" / "manifest.csv").read_text() == (root / "manifest.csv").read_text()
    with Image.open(tmp_path / "tw_color" / "thermal" / "1.png") as im:
        assert im.mode == "L" and im.size == (8, 16)


def test_domains_command(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    domains_command.add_arguments(parser)
    args = parser.parse_args(["--source", str(source), "--kind", "noise", "--out", str(tmp_path / "n"),
                              "--seed", "3", "--param", "std=0.2", "--quiet"])
    assert domains_command.run(args) == 0
    assert "wrote the noise domain" in capsys.readouterr().out
    assert json.loads((tmp_path / "n" / domains.META_FILE).read_text())["params"] == {"std": 0.2}
    with pytest.raises(ConfigError, match="must look like key=value"):
        domains_command.parse_params(["std"])
    with pytest.raises(ConfigError, match="is not a number"):
        domains_command.parse_params(["std=abc"])
