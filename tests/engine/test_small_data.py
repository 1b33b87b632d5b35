"""Small-data choices: schedules that follow the epoch count, validation by images, labelled summaries,
and a clear error for a protocol setting the dataset does not take."""

from __future__ import annotations

import pytest

from vireid.config import OptimConfig, load_config
from vireid.data.datasets import RegDB
from vireid.engine import build
from vireid.errors import ConfigError
from vireid.types import Modality, Sample


def test_schedule_scales_with_epochs():
    demo = OptimConfig(epochs=16, warmup_epochs=2, milestones=[11, 14], schedule_for_epochs=16)
    assert build.scaled_schedule(demo) == (2, [11, 14])
    half = OptimConfig(epochs=8, warmup_epochs=2, milestones=[11, 14], schedule_for_epochs=16)
    assert build.scaled_schedule(half) == (1, [6, 7])  # 5.5 -> 6, 7.0 -> 7 (half up)
    assert [build.lr_factor(e, half) for e in range(8)] == pytest.approx([1, 1, 1, 1, 1, 1, 0.1, 0.01])
    long = OptimConfig(epochs=48, warmup_epochs=2, milestones=[11, 14], schedule_for_epochs=16)
    assert build.scaled_schedule(long) == (6, [33, 42])
    assert build.lr_factor(0, long) == pytest.approx(1 / 6)
    plain = OptimConfig(epochs=8, warmup_epochs=2, milestones=[11, 14])
    assert build.scaled_schedule(plain) == (2, [11, 14])  # not set: as written


def test_recipe_with_a_scaled_schedule_loads_with_fewer_epochs(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("optim: {epochs: 16, warmup_epochs: 10, milestones: [11, 14], schedule_for_epochs: 16}\n")
    assert load_config(path, ["optim.epochs=4"]).optim.epochs == 4  # warm-up 10 > 4 epochs: scaled, not refused
    bare = tmp_path / "bare.yaml"
    bare.write_text("optim: {epochs: 16, warmup_epochs: 10, milestones: [11, 14]}\n")
    with pytest.raises(ConfigError, match=r"optim: warmup_epochs \(10\) must be <= epochs \(4\)"):
        load_config(bare, ["optim.epochs=4"])


def _samples():
    out = []
    for pid in range(4):
        for m, n in ((Modality.VISIBLE, 6), (Modality.INFRARED, 4 if pid else 1)):
            out += [Sample(f"{m.name}/{pid}/{i}.jpg", pid, 1 + int(m), m) for i in range(n)]
    return out


def test_validation_by_images_keeps_every_identity():
    samples = _samples()
    train, val = build.split_train_val(samples, 0.25, seed=0, by="images")
    assert {s.pid for s in train} == {0, 1, 2, 3}
    assert {s.pid for s in val} == {1, 2, 3}  # identity 0 has one infrared image: nothing to spare
    for pid in (1, 2, 3):
        vis = [s for s in val if s.pid == pid and s.modality == Modality.VISIBLE]
        ir = [s for s in val if s.pid == pid and s.modality == Modality.INFRARED]
        assert (len(vis), len(ir)) == (2, 1)  # round(0.25 * 6) and round(0.25 * 4)
    assert not {s.path for s in train} & {s.path for s in val}
    assert len(train) + len(val) == len(samples)
    assert build.split_train_val(samples, 0.25, seed=0, by="images") == (train, val)  # seeded
    ids_train, ids_val = build.split_train_val(samples, 0.25, seed=0)
    assert not {s.pid for s in ids_train} & {s.pid for s in ids_val}
    with pytest.raises(ConfigError, match="val_split=images: no identity has 2 or more images in both modalities"):
        build.split_train_val([s for s in samples if s.pid == 0], 0.25, seed=0, by="images")


def test_best_block_says_it_is_validation():
    samples = _samples()
    from vireid.config import DataConfig

    best = {"metric": "mAP", "value": 90.0, "epoch": 3, "rank1": 91.0}
    by_ids = build.label_best(best, [s for s in samples if s.pid in (1, 2)], DataConfig())
    assert by_ids["split"] == "validation" and by_ids["rank1"] == 91.0
    assert "2 training identities held out" in by_ids["selected_by"] and "chance rank-1 about 50.0%" in by_ids["selected_by"]
    assert "Not test-set numbers" in by_ids["selected_by"]
    by_images = build.label_best(best, samples[:3], DataConfig(val_split="images"))
    assert "held-out images of 1 training identities (identities also trained on)" in by_images["selected_by"]
    none = build.label_best({"metric": "mAP", "value": None, "epoch": None}, [], DataConfig(val_fraction=0.0))
    assert "the last epoch is the model" in none["selected_by"]


def test_a_sysu_protocol_on_regdb_is_a_clear_error():
    ds = RegDB.vendored()
    with pytest.raises(ConfigError, match=r"unknown config key eval.protocol.mode; valid keys: direction, trials, "
                                          r"allow_other_trials"):
        build.build_eval_plan(ds, {"mode": "all", "shots": 1, "sampling": "official"})
    assert build.build_eval_plan(ds, {"direction": "thermal-to-visible"}).settings["direction"] == "thermal-to-visible"


def test_every_shipped_recipe_loads_with_every_section_checked():
    """A SYSU recipe copied to RegDB kept `{mode, shots, sampling}`: every shipped recipe must load cleanly
    (protocol against its dataset, parameter tables against the registered constructors)."""
    from pathlib import Path

    from vireid.config import load_config, read_yaml_mapping
    from vireid.methods.dan.config import load_adapt_config
    from vireid.methods.mcma.config import load_mcma_config

    recipes = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert len(recipes) >= 10
    for path in recipes:
        values = read_yaml_mapping(path)  # adapt recipes have `target`, train-text (MCMA) recipes `loss`
        (load_adapt_config if "target" in values else load_mcma_config if "loss" in values else load_config)(path)
