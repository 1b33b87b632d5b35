"""The adaptation trainer end to end on tiny synthetic data (source -> its noise domain), CPU, seconds."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from vireid.commands import adapt as adapt_command
from vireid.config import load_config
from vireid.methods.dan.domains import transform_dataset
from vireid.data.synthetic import SyntheticConfig, generate_dataset
from vireid.methods.dan.trainer import AdaptTrainer, evaluate_on_target, read_result, run_adaptation
from vireid.config import config_from_dict
from vireid.methods.dan.config import AdaptConfig


def adapt_config_from_dict(values: dict) -> AdaptConfig:
    return config_from_dict(values, AdaptConfig)
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.evaluate import evaluate_model, load_trained_model
from vireid.engine.runtime import setup_runtime
from vireid.errors import ConfigError




@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adapt")
    generate_dataset(root / "src", SyntheticConfig(num_ids=8, seed=1, images_per_camera=2, height=48, width=24))
    transform_dataset(root / "src", root / "noise", "noise", seed=0, sheet_per_modality=0)
    return root / "src", root / "noise"


def _cfg(data: tuple[Path, Path], run_root: Path, **dan) -> dict:
    src, tgt = data
    return {
        "name": "t", "output_dir": str(run_root),
        "data": {"dataset": "sysu-mm01", "root": str(src), "height": 32, "width": 16, "num_ids": 2,
                 "num_instances": 2, "pad": 2, "num_workers": 0, "val_fraction": 0.0, "batches_per_epoch": 2,
                 "in_memory": True},
        "model": {"name": "agw", "params": {"arch": "resnet18", "pretrained": None, "non_local": False}},
        "losses": [{"name": "cross_entropy", "params": {"epsilon": 0.1}},
                   {"name": "triplet_hard", "params": {"margin": 0.3}}],
        "optim": {"lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": [], "backbone_lr_mult": 1.0},
        "eval": {"batch_size": 64},
        "runtime": {"device": "cpu", "seed": 0},
        "target": {"dataset": "sysu-mm01", "root": str(tgt), "num_per_modality": 2, "num_ids": 2,
                   "num_instances": 2, "protocol": {"trials": 2}},
        "dan": {"soft_start_epoch": 0, "dbscan_start_epoch": 0, "num_neighbours": 2, "discriminator_hidden": [8],
                "pad_max_samples": 20, **dan},
    }


@pytest.mark.slow
def test_full_dan_runs_one_epoch_end_to_end(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = adapt_config_from_dict(_cfg(data, tmp_path, hard_label=True))
    runtime = setup_runtime("cpu", seed=0)
    trainer = AdaptTrainer(cfg, tmp_path / "run", runtime)
    disc_before = [p.detach().clone() for p in trainer.discriminators.parameters()]
    assert trainer.sampling == "pseudo" and [g["name"] for g in trainer.optimizer.param_groups][-1] == "discriminator"
    summary = trainer.fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("cross_entropy", "triplet_hard", "daa", "hard", "soft", "cma", "disc_acc", "grl_coeff",
                "hard_nmi", "pad_visible", "pad_infrared"):
        assert key in record and math.isfinite(record[key]), key
    d = cfg.dan  # the logged total is Eq. 15's weighted sum of the logged terms (epoch means)
    expected = (record["cross_entropy"] + record["triplet_hard"] + d.lambda1 * record["daa"]
                + d.hard_weight * record["hard"] + d.lambda2 * record["soft"] + d.lambda3 * record["cma"])
    assert record["loss"] == pytest.approx(expected, rel=1e-5)
    assert 0 <= record["grl_coeff"] < 1 and summary["epochs"] == 1
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, trainer.discriminators.parameters()))
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["dan"]["memory"]["features"].shape[0] == len(trainer.target_samples)
    assert ckpt["dan"]["hard_labels"].shape == (len(trainer.target_samples),)
    # the retrieval model in the checkpoint is the plain model (no discriminator keys)
    assert not any(k.startswith("discriminators") for k in ckpt["model"])
    # pseudo-class batches: P x (K visible + K infrared) of one hard label at positions i and P*K + i
    trainer.hard_labels = torch.from_numpy(trainer.target_true_ids)  # labels with both modalities, for the test
    batch = next(iter(trainer.target_loader(0, 0, 1)))
    labels = trainer.hard_labels[batch.index]
    assert len(batch) == 8 and batch.modality.tolist() == [0] * 4 + [1] * 4 and torch.equal(labels[:4], labels[4:])
    # fewer pseudo classes with both modalities than P: random batches (per_modality visible + infrared)
    trainer.hard_labels = torch.zeros_like(trainer.hard_labels)
    batch = next(iter(trainer.target_loader(0, 0, 1)))
    assert len(batch) == 4 and batch.modality.tolist() == [0, 0, 1, 1]


@pytest.mark.slow
def test_run_adaptation_scores_the_target_and_resume_is_exact(data: tuple[Path, Path], tmp_path: Path) -> None:
    values = _cfg(data, tmp_path, hard_label=False)
    values["optim"]["epochs"] = 2
    runtime = setup_runtime("cpu", seed=0)
    result = run_adaptation(adapt_config_from_dict(values), tmp_path / "full", runtime)
    assert result["method"] == "dan" and result["components"] == ["source", "daa", "soft", "cma"]
    assert set(result["mean"]) >= {"rank1", "rank5", "rank10", "mAP"} and len(result["trials"]) == 2
    assert set(result["domain_gap"]) == {"pad_visible", "pad_infrared"}
    assert read_result(tmp_path / "full")["mean"] == result["mean"]
    # config.yaml is the target view: `vireid test --run` scores the target
    view = load_config(tmp_path / "full" / "config.yaml")
    assert view.data.root == str(data[1])
    model, _ = load_trained_model(view, tmp_path / "full" / "last.pt", runtime)
    rescored = evaluate_model(model, view, runtime)
    assert rescored["mean"] == result["mean"]  # the reported numbers are those of last.pt on the target
    # interrupted (Ctrl-C) in the middle of epoch 2, resumed: the same weights as the straight run
    def interrupt(epoch: int, iteration: int) -> None:
        if (epoch, iteration) == (1, 1):
            raise KeyboardInterrupt

    first = AdaptTrainer(adapt_config_from_dict(values), tmp_path / "split", setup_runtime("cpu", seed=0),
                         on_iteration=interrupt)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    again = AdaptTrainer(adapt_config_from_dict(values), tmp_path / "split", setup_runtime("cpu", seed=0))
    again.resume(tmp_path / "split" / "last.pt")
    again.fit()
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_baselines_and_the_command(data: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    runtime = setup_runtime("cpu", seed=0)
    for method in ("dbscan", "source_only", "target_supervised"):
        values = _cfg(data, tmp_path, method=method, proxy_a_distance=False)
        result = run_adaptation(adapt_config_from_dict(values), tmp_path / method, runtime)
        assert result["method"] == method and "domain_gap" not in result
        model, _ = load_trained_model(load_config(tmp_path / method / "config.yaml"), tmp_path / method / "last.pt",
                                      runtime)
        assert evaluate_on_target(model, adapt_config_from_dict(values), runtime)["mean"] == result["mean"]
    record = json.loads((tmp_path / "dbscan" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"dbscan", "clusters", "dbscan_eps"} <= set(record)

    recipe = tmp_path / "recipe.json"  # JSON is YAML
    recipe.write_text(json.dumps(_cfg(data, tmp_path, proxy_a_distance=False)))
    parser = argparse.ArgumentParser()
    adapt_command.add_arguments(parser)
    args = parser.parse_args(["--config", str(recipe), "--variant", "cma", "--run-dir", str(tmp_path / "cmd"),
                              "--json"])
    assert adapt_command.run(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["components"] == ["source", "cma"]
    with pytest.raises(ConfigError, match="already holds a run"):
        adapt_command.run(args)


@pytest.mark.slow
def test_dan_adapts_to_a_manifest_target_and_scores_its_protocol(data: tuple[Path, Path], tmp_path: Path) -> None:
    """Source and target may be different readers: SYSU-MM01 layout -> a manifest (CSV) dataset."""
    from vireid.data.datasets import build_dataset
    from vireid.types import Modality

    noise = build_dataset("sysu-mm01", data[1])
    rows = [(s.relpath, s.pid, s.camid, s.modality.name.lower(), split)
            for split, samples in (("train", noise.train), ("test", noise.test)) for s in samples]
    manifest = data[1] / "manifest.csv"  # beside the images: its paths are relative to its folder
    manifest.write_text("path,identity,camera,modality,split\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    try:
        values = _cfg(data, tmp_path, proxy_a_distance=False)
        values["target"] = {"dataset": "manifest", "root": str(manifest), "num_per_modality": 2, "num_ids": 2,
                            "num_instances": 2}
        cfg = adapt_config_from_dict(values)
        result = run_adaptation(cfg, tmp_path / "run", setup_runtime("cpu", seed=0))
    finally:
        manifest.unlink()
    assert result["method"] == "dan"
    # scored on the manifest's own protocol: its infrared test images against its visible ones
    num_ir = sum(s.modality == Modality.INFRARED for s in noise.test)
    assert result["settings"]["direction"] == "infrared-to-visible"
    assert result["trials"][0]["num_query"] == num_ir and result["dataset"] == "manifest"
    view = load_config(tmp_path / "run" / "config.yaml")
    assert (view.data.dataset, view.data.root) == ("manifest", str(manifest))
