"""What the trainer offers methods: a trainer registry (config ``trainer``), loss state in
checkpoints, auxiliary inputs (``data.aux`` + ``aux_inputs``), and single-modality training with
the identity sampler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from vireid.cli import main
from vireid.config import load_config
from vireid.data.aux import COCO_FLIP, KeypointSidecar, keypoint_heatmaps
from vireid.data.identity_sampler import IdentitySampler
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.inference import flip_aux
from vireid.engine.runtime import Runtime
from vireid.engine.trainer import Trainer, trainer_class
from vireid.errors import ConfigError
from vireid.methods import Method, register_method, unregister_method
from vireid.types import Batch, ModelOutput


class AuxToyModel(nn.Module):
    """Mean colour + the mean of each keypoint heatmap -> embedding; records the aux it was given."""

    aux_inputs: ClassVar[tuple[str, ...]] = ("heatmaps",)

    def __init__(self, num_classes: int, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(3 + 17, dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, images: torch.Tensor, modality: torch.Tensor, aux: dict | None = None) -> ModelOutput:
        heat = aux["heatmaps"]  # (B, 17, h, w)
        self.seen.append(tuple(heat.shape))
        f = self.embed(torch.cat([images.mean(dim=(2, 3)), heat.float().mean(dim=(2, 3))], 1))  # (B, dim)
        return ModelOutput(features=f, bn_features=f, logits=self.classifier(f))


class CountingLoss(nn.Module):
    """Cross-entropy that also counts its calls and keeps the last 3 labels in a FIFO buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("fifo", torch.full((3,), -1, dtype=torch.int64))

    def forward(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        self.calls += 1
        self.fifo.copy_(torch.cat([self.fifo, batch.pids[:1]])[-3:])
        return nn.functional.cross_entropy(out.logits, batch.pids)


class MarkingTrainer(Trainer):
    """A method trainer: counts its ``after_step`` calls."""

    steps = 0

    def after_step(self, batch: Batch) -> None:
        MarkingTrainer.steps += 1


@pytest.fixture(scope="module", autouse=True)
def _plumbing_method() -> Iterator[None]:
    register_method(Method(name="plumbing_toy", paper="(test)", seed="(test)",
                           models={"aux_toy": AuxToyModel}, losses={"counting_ce": CountingLoss},
                           trainers={"marking": MarkingTrainer}))
    yield
    unregister_method("plumbing_toy")


@pytest.fixture(scope="module")
def extras(tiny_sysu: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vireid synth --extras` with the arguments of the tiny SYSU-layout set."""
    from vireid.data.synthetic import SyntheticConfig
    from vireid.data.synthetic.extras import generate_extras

    out = tmp_path_factory.mktemp("extras") / "x"
    generate_extras(out, SyntheticConfig(num_ids=12, seed=5, images_per_camera=3, height=64, width=32))
    return out


def _recipe(tmp: Path, root: Path, **over) -> Path:
    cfg = {
        "name": "run", "output_dir": str(tmp),
        "data": {"dataset": "sysu-mm01", "root": str(root), "height": 64, "width": 32, "num_ids": 2,
                 "num_instances": 2, "num_workers": 0, "val_fraction": 0.25, "batches_per_epoch": 2},
        "model": {"name": "aux_toy"},
        "losses": [{"name": "counting_ce"}],
        "optim": {"name": "adamw", "lr": 0.01, "epochs": 1, "warmup_epochs": 0, "milestones": []},
        "eval": {"protocol": {"mode": "all", "shots": 1, "sampling": "official"}},
        "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
    }
    for key, value in over.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    return recipe


def test_synthetic_extras_cover_every_image_of_the_sysu_layout_set(tiny_sysu: Path, extras: Path) -> None:
    sidecar = KeypointSidecar(extras / "SYSU-layout" / "annotations" / "person_keypoints.json")
    images = sorted(p.relative_to(tiny_sysu).as_posix() for p in tiny_sysu.glob("cam*/*/*.jpg"))
    assert images and sorted(sidecar.keypoints) == images
    for rel in images:  # the same people in the same pose: the parsing map is the image's size
        from PIL import Image

        with Image.open(tiny_sysu / rel) as img, Image.open(extras / "SYSU-layout" / "parsing" /
                                                           rel.replace(".jpg", ".png")) as lab:
            assert lab.size == img.size and lab.mode == "L"
    # the CUHK-PEDES copy is the same image bytes as the SYSU-layout one (cam 3: infrared)
    assert (extras / "CUHK-PEDES/imgs/cam3/0001_01.jpg").read_bytes() == (tiny_sysu / "cam3/0001/0001.jpg").read_bytes()


def test_aux_model_trains_and_tests_with_keypoint_heatmaps(tiny_sysu: Path, extras: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    kp = str(extras / "SYSU-layout" / "annotations" / "person_keypoints.json")
    recipe = _recipe(tmp_path, tiny_sysu, **{"data.aux": {"keypoints": kp}, "trainer": "marking"})
    MarkingTrainer.steps = 0
    assert main(["train", "--config", str(recipe)]) == 0
    assert MarkingTrainer.steps == 2  # the config's trainer ran the steps
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    state = ckpt["losses_state"]["counting_ce"]
    assert int(state["calls"]) == 2 and int(state["fifo"][0]) == -1 and (state["fifo"][1:] >= 0).all()
    assert main(["test", "--run", str(tmp_path / "run"), "--json", "--flip"]) == 0
    assert '"rank1"' in capsys.readouterr().out


def test_resume_restores_loss_buffers(tiny_sysu: Path, extras: Path, tmp_path: Path) -> None:
    kp = str(extras / "SYSU-layout" / "annotations" / "person_keypoints.json")
    recipe = _recipe(tmp_path, tiny_sysu, **{"data.aux": {"keypoints": kp}})
    assert main(["train", "--config", str(recipe)]) == 0
    cfg = load_config(recipe)
    trainer = Trainer(cfg, tmp_path / "again", Runtime(device=torch.device("cpu")))
    loss = trainer.losses[0].fn
    assert int(loss.calls) == 0
    trainer.resume(tmp_path / "run" / "last.pt")
    saved = load_checkpoint(tmp_path / "run" / "last.pt")["losses_state"]["counting_ce"]
    assert int(loss.calls) == 2 and torch.equal(loss.fifo, saved["fifo"])


def test_a_model_with_aux_inputs_is_called_with_the_batch_aux(tiny_sysu: Path, extras: Path, tmp_path: Path) -> None:
    kp = str(extras / "SYSU-layout" / "annotations" / "person_keypoints.json")
    cfg = load_config(_recipe(tmp_path, tiny_sysu, **{"data.aux": {"keypoints": kp, "heatmap_stride": 4}}))
    trainer = Trainer(cfg, tmp_path / "r", Runtime(device=torch.device("cpu")))
    batch = next(iter(trainer._train_loader(0)))
    assert batch.aux["heatmaps"].shape == (len(batch), 17, 16, 8)
    trainer.compute_losses(batch)
    assert trainer.model.seen[-1] == (len(batch), 17, 16, 8)


def test_unknown_trainer_is_a_config_error_listing_the_valid_ones(tmp_path: Path, tiny_sysu: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer: unknown trainer 'nope'; valid: default, .*marking"):
        load_config(_recipe(tmp_path, tiny_sysu, trainer="nope"))
    assert trainer_class(load_config(_recipe(tmp_path, tiny_sysu, trainer="marking"))) is MarkingTrainer
    assert trainer_class(load_config(_recipe(tmp_path, tiny_sysu))) is Trainer


def test_unknown_aux_key_is_a_config_error(tmp_path: Path, tiny_sysu: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key data\.aux\.pose"):
        load_config(_recipe(tmp_path, tiny_sysu, **{"data.aux": {"pose": "x.json"}}))


def test_flipped_heatmaps_equal_the_heatmaps_of_the_mirrored_keypoints() -> None:
    rng = np.random.default_rng(0)
    h, w, stride = 64, 32, 4
    kp = np.stack([rng.uniform(0, w, 17), rng.uniform(0, h, 17), rng.integers(0, 3, 17)], 1).astype(np.float32)
    mirrored = kp[list(COCO_FLIP)].copy()
    mirrored[:, 0] = w - mirrored[:, 0]
    want = keypoint_heatmaps(mirrored, h, w, stride)
    got = flip_aux({"heatmaps": keypoint_heatmaps(kp, h, w, stride)[None]})["heatmaps"][0]
    assert torch.allclose(got, want, atol=1e-6)


def test_identity_sampler_ranks_split_one_plan() -> None:
    pids = [p for p in range(10) for _ in range(5)]
    one = IdentitySampler(pids, 3, 2, seed=1, batches_per_epoch=4)
    ranks = [IdentitySampler(pids, 3, 2, seed=1, batches_per_epoch=2, num_replicas=2, rank=r) for r in (0, 1)]
    assert [len(r) for r in ranks] == [2, 2]
    assert ranks[0].plan(0) + ranks[1].plan(0) == one.plan(0)[0::2] + one.plan(0)[1::2]
    with pytest.raises(ValueError, match="rank 2 is not in"):
        IdentitySampler(pids, 3, 2, num_replicas=2, rank=2)


def test_single_modality_dataset_trains_with_the_identity_sampler(extras: Path, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, extras / "Market-1501", **{
        "data.dataset": "market1501", "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
        "losses": [{"name": "cross_entropy"}, {"name": "triplet_hard", "params": {"margin": 0.3}}],
        "data.num_ids": 3, "eval.protocol": {}})
    cfg = load_config(recipe)
    trainer = Trainer(cfg, tmp_path / "run", Runtime(device=torch.device("cpu")))
    assert trainer.steps_per_epoch == 2 and type(trainer._sampler).__name__ == "IdentitySampler"
    batch = next(iter(trainer._train_loader(0)))
    pids = batch.pids.tolist()
    assert len(batch) == 6 and len(set(pids)) == 3 and all(pids.count(p) == 2 for p in set(pids))
    summary = trainer.fit()
    assert summary["best"]["value"] is not None and np.isfinite(summary["best"]["value"])
    # cross-domain: the Market-trained model on the occluded set of the same world (its own protocol)
    assert main(["test", "--run", str(tmp_path / "run"), "--json", "--set", "data.dataset=occluded-reid",
                 "--set", f"data.root={extras / 'Occluded_REID'}"]) == 0


def test_method_aux_declaration_is_checked_and_listed() -> None:
    from vireid.methods import describe_methods

    with pytest.raises(ValueError, match="requires_aux \\['pose'\\] must be data.aux keys"):
        register_method(Method(name="bad_aux", paper="-", seed="-", requires_aux=("pose",)))
    register_method(Method(name="aux_decl", paper="-", seed="-", requires_aux=("keypoints",), aux_policy="fallback"))
    try:
        row = next(m for m in describe_methods() if m["name"] == "aux_decl")
        assert row["requires_aux"] == ["keypoints"] and row["aux_policy"] == "fallback"
    finally:
        unregister_method("aux_decl")
