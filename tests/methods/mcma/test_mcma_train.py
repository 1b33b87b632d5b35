"""MCMA's training schedule and optimiser groups (``vireid.methods.mcma.train``) and its recipe checks."""

import math

import pytest
from pydantic import ValidationError

from vireid.methods.mcma.config import MCMAConfig
from vireid.methods.mcma.model import MCMA
from vireid.methods.mcma.train import build_optimizer, image_folder, lr_factor


def test_lr_factor_warmup_then_cosine_hand_values():
    # 10 steps, 2 of warm-up: 1/2, 2/2, then cos over the 8 remaining steps (t = 0, 1/8, ..., 7/8)
    got = [lr_factor(s, 10, 2, "cosine") for s in range(10)]
    want = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert got == pytest.approx(want)
    assert got[2] == 1.0 and got[6] == pytest.approx(0.5)
    assert [lr_factor(s, 10, 0, "constant") for s in range(10)] == [1.0] * 10
    assert [lr_factor(s, 4, 3, "constant") for s in range(4)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])


def test_optimizer_groups_backbone_and_the_rest():
    cfg = MCMAConfig.model_validate({"data": {"root": "x"}, "optim": {"lr": 0.002, "backbone_lr_mult": 0.25}})
    model = MCMA(4, vocab_size=30, arch="resnet18", dim=16, text_heads=2, max_length=8)
    opt = build_optimizer(model, cfg)
    backbone, rest = opt.param_groups
    assert backbone["lr"] == pytest.approx(0.0005) and rest["lr"] == pytest.approx(0.002)
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.image.backbone.parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in rest["params"]} == trainable - {id(p) for p in backbone["params"]}
    assert not any(id(p) in trainable for p in model.teacher.parameters())  # the EMA teacher is never optimised


def test_warmup_must_end_before_the_last_epoch():
    with pytest.raises(ValidationError, match=r"warmup_epochs \(4.0\) must be < epochs \(4\)"):
        MCMAConfig.model_validate({"data": {"root": "x"}, "optim": {"epochs": 4, "warmup_epochs": 4}})


def test_image_folder():
    assert image_folder("imgs/cam3/0001_01.jpg#1") == "cam3" and image_folder("imgs\\a\\b.png") == "a"
    assert image_folder("cam3/0001_01.jpg") == "cam3"
