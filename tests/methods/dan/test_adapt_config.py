"""Adaptation recipes (``vireid adapt``): strict loading, views, variants; target batch plans; output slicing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vireid.config import TrainConfig
from vireid.types import Modality, Sample
from vireid.methods.dan.trainer import anonymise, random_target_plan, slice_output
from vireid.methods.dan.config import (ABLATIONS, VARIANTS, AdaptConfig, components, load_adapt_config, source_config,
                                        target_view, variant_overrides)
from vireid.errors import ConfigError
from vireid.types import ModelOutput

RECIPE = """
name: dan_test
data: {dataset: sysu-mm01, root: /data/src, height: 64, width: 32}
target: {dataset: regdb, root: /data/tgt, options: {trial: 2}, protocol: {direction: visible-to-thermal}}
dan: {lambda1: 0.2, num_neighbours: 3}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_load_embeds_the_train_sections_and_applies_overrides(tmp_path: Path) -> None:
    cfg = load_adapt_config(_write(tmp_path, RECIPE), ["dan.cma=false", "optim.lr=0.05", "losses.0.weight=2"])
    assert isinstance(cfg, AdaptConfig) and isinstance(cfg, TrainConfig)
    assert cfg.dan.lambda1 == 0.2 and cfg.dan.num_neighbours == 3 and cfg.dan.cma is False
    assert cfg.dan.lambda2 == 1.0 and cfg.dan.lambda3 == 0.5 and cfg.dan.eta == 1.0 and cfg.dan.soft_lambda == 0.5
    assert cfg.optim.lr == 0.05 and cfg.losses[0].weight == 2.0 and cfg.data.height == 64
    assert cfg.target.options == {"trial": 2}


@pytest.mark.parametrize("text, message", [
    (RECIPE + "dan: {lamda1: 0.1}\n", "unknown config key dan.lamda1; valid keys of dan: method, daa"),
    (RECIPE.replace("root: /data/tgt", "root: /data/tgt, bogus: 1"), "unknown config key target.bogus"),
    (RECIPE + "dan: {method: adda}\n", "dan.method: input should be 'source_only', 'target_supervised', 'dbscan' or"),
    (RECIPE + "dan: {soft_lambda: 1.5}\n", r"dan.soft_lambda: input should be less than or equal to 1"),
    (RECIPE + "dan: {daa: false, soft_label: false, cma: false}\n", "use dan.method=source_only"),
    (RECIPE + "dan: {target_feature: logits}\n", "dan.target_feature: feature='logits'"),
    (RECIPE.replace("root: /data/tgt, ", ""), "target.root: required key is missing"),
    ("name: x\n", "target: required key is missing"),
    (RECIPE + "data: {num_ids: 1}\n", r"data.num_ids: input should be greater than or equal to 2"),
    (RECIPE.replace("direction: visible-to-thermal", "direction: up"),
     r"target.protocol.direction: input should be 'visible-to-thermal' or 'thermal-to-visible', got 'up'"),
])
def test_strict_loading_names_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_adapt_config(path)
    assert str(path) in str(info.value)


def test_views_variants_and_components(tmp_path: Path) -> None:
    cfg = load_adapt_config(_write(tmp_path, RECIPE))
    view = target_view(cfg)
    assert type(view) is TrainConfig
    assert (view.data.dataset, view.data.root, view.data.options) == ("regdb", "/data/tgt", {"trial": 2})
    assert view.data.height == 64 and view.eval.protocol == {"direction": "visible-to-thermal"}
    src = source_config(cfg)
    assert type(src) is TrainConfig and src.data.root == "/data/src" and src.model == cfg.model
    assert components(cfg) == ["source", "daa", "soft", "cma"]
    assert variant_overrides("daa") == ["dan.method=dan", "dan.daa=true", "dan.hard_label=false",
                                        "dan.soft_label=false", "dan.cma=false"]
    for name in VARIANTS:
        loaded = load_adapt_config(_write(tmp_path, RECIPE), variant_overrides(name))
        assert loaded.dan.method == VARIANTS[name]["method"]
    assert components(load_adapt_config(_write(tmp_path, RECIPE), variant_overrides("hard"))) == ["source", "hard"]
    assert components(load_adapt_config(_write(tmp_path, RECIPE), variant_overrides("dbscan"))) == ["source", "dbscan"]
    assert components(load_adapt_config(_write(tmp_path, RECIPE), variant_overrides("target"))) == ["target-labels"]
    assert set(ABLATIONS) == {"+DAA", "+hard label", "+soft label", "+CMA", "full"}
    with pytest.raises(ConfigError, match="unknown variant 'adda'"):
        variant_overrides("adda")


def test_random_target_plan_is_seeded_and_balanced_per_modality() -> None:
    modality = np.array([0] * 5 + [1] * 7)
    plan = random_target_plan(modality, per_modality=3, num_batches=4, seed=1, epoch=2)
    assert plan == random_target_plan(modality, 3, 4, seed=1, epoch=2)
    assert plan != random_target_plan(modality, 3, 4, seed=1, epoch=3)
    assert all(len(b) == 6 and all(modality[b[:3]] == 0) and all(modality[b[3:]] == 1) for b in plan)
    visible = [i for b in plan for i in b[:3]]
    assert sorted(visible[:5]) == [0, 1, 2, 3, 4]  # one full pass before any repeat
    with pytest.raises(Exception, match="no infrared images"):
        random_target_plan(np.zeros(4, dtype=int), 2, 1, 0, 0)


def test_anonymise_and_slice_output() -> None:
    samples = [Sample("a.jpg", 17, 1, Modality.VISIBLE, "/r"), Sample("b.jpg", 17, 3, Modality.INFRARED, "/r")]
    assert [(s.relpath, s.pid, s.camid, s.modality, s.root) for s in anonymise(samples)] == \
           [("a.jpg", 0, 1, Modality.VISIBLE, "/r"), ("b.jpg", 1, 3, Modality.INFRARED, "/r")]
    out = ModelOutput(torch.arange(10.0).view(5, 2), torch.arange(10.0).view(5, 2) + 1, torch.zeros(5, 3),
                      {"map": torch.ones(5, 1, 2, 2), "scalar": torch.tensor(3.0), "other": torch.ones(2)})
    part = slice_output(out, 3, None)
    assert part.features.tolist() == [[6.0, 7.0], [8.0, 9.0]] and part.logits.shape == (2, 3)
    assert part.extras["map"].shape == (2, 1, 2, 2) and float(part.extras["scalar"]) == 3.0
    assert part.extras["other"].shape == (2,)
