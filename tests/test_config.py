import pytest

from vireid.config import TrainConfig, apply_overrides, config_from_dict, dump_config, load_config
from vireid.errors import ConfigError


def test_defaults_are_the_agw_recipe():
    cfg = TrainConfig()
    assert cfg.optim.lr == 0.1 and cfg.optim.warmup_epochs == 10 and cfg.optim.milestones == [20, 50]
    assert [l.name for l in cfg.losses] == ["cross_entropy", "wrt"]


def test_unknown_key_names_dotted_path_and_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key optim\.learning_rate; valid keys of optim: name, lr"):
        config_from_dict({"optim": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError, match="unknown config key bogus"):
        config_from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match=r"unknown config key losses\[1\]\.wieght"):
        config_from_dict({"losses": [{"name": "a"}, {"name": "b", "wieght": 2}]})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"optim": {"lr": "fast"}}, r"optim\.lr: input should be a valid number, got 'fast'"),
        ({"optim": {"epochs": 2.5}}, r"optim\.epochs: input should be a valid integer, got 2\.5"),
        ({"optim": {"epochs": "3"}}, r"optim\.epochs: input should be a valid integer, got '3'"),
        ({"data": {"flip": "yes"}}, r"data\.flip: input should be a valid boolean, got 'yes'"),
        ({"optim": {"name": "rmsprop"}}, r"optim\.name: input should be 'sgd' or 'adamw', got 'rmsprop'"),
        ({"optim": {"implementation": "fast"}},
         r"optim\.implementation: input should be 'auto', 'for-loop', 'foreach' or 'fused', got 'fast'"),
        ({"runtime": {"precision": "fp8"}}, r"runtime\.precision"),
        ({"data": {"num_ids": 1}}, r"data\.num_ids: input should be greater than or equal to 2, got 1"),
        ({"optim": {"milestones": [50, 20]}}, "milestones must be increasing"),
        ({"optim": {"warmup_epochs": 70}}, r"warmup_epochs \(70\) must be <= epochs \(60\)"),
        ({"data": "x"}, r"data: input should be a valid dictionary"),
        ({"optim": {"lr": -1}}, r"optim\.lr: input should be greater than 0, got -1"),
        ({"optim": {"gamma": -1}}, r"optim\.gamma: input should be greater than 0"),
        ({"optim": {"backbone_lr_mult": -1}}, r"optim\.backbone_lr_mult: input should be greater than or equal to 0"),
        ({"optim": {"weight_decay": -1}}, r"optim\.weight_decay: input should be greater than or equal to 0"),
        ({"runtime": {"num_threads": 0}}, r"runtime\.num_threads: input should be greater than or equal to 1"),
        ({"runtime": {"seed": -1}}, r"runtime\.seed: input should be greater than or equal to 0"),
        ({"runtime": {"device": "banana"}}, r"runtime\.device: expected auto, cpu, cuda, cuda:N or mps"),
        ({"eval": {"batch_size": 0}}, r"eval\.batch_size: input should be greater than or equal to 1"),
        ({"data": {"batches_per_epoch": 0}}, r"data\.batches_per_epoch: input should be greater than or equal to 1"),
        ({"model": {"name": "agw", "params": {"arch": 5}}}, r"model\.params\.arch: input should be a valid string"),
        ({"model": {"name": "agwx"}}, r"model\.name: unknown model 'agwx'; valid: agw, baseline, "),
        ({"losses": [{"name": "cross_entropy", "params": {"epsilon": "x"}}]},
         r"losses\[0\]\.params\.epsilon: input should be a valid number"),
        ({"data": {"augment": [{"name": "flip"}]}}, r"data\.augment\[0\]\.name: unknown image augmentation 'flip'"),
        ({"data": {"batch_augment": "mixup"}}, r"data\.batch_augment: unknown batch augmentation 'mixup'"),
    ],
)
def test_type_and_range_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_optional_and_int_to_float():
    cfg = config_from_dict({"optim": {"lr": 1, "clip_grad_norm": None}, "data": {"batches_per_epoch": 3}})
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == 1.0
    assert cfg.optim.clip_grad_norm is None and cfg.data.batches_per_epoch == 3


def test_yaml_roundtrip_and_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("optim:\n  lr: 0.05\nlosses:\n  - name: cross_entropy\n    params: {epsilon: 0.1}\n")
    cfg = load_config(path, ["optim.lr=0.2", "data.dataset=regdb", "data.options.trial=3", "losses.0.weight=0.5", "model.params.arch=resnet18"])
    assert cfg.optim.lr == 0.2 and cfg.data.options == {"trial": 3}
    assert cfg.losses[0].weight == 0.5 and cfg.model.params == {"arch": "resnet18"}
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg


def test_override_errors(tmp_path):
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match=r"unknown config key optim\.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="is not an index of a list of 2"):
        apply_overrides({"losses": [{}, {}]}, ["losses.5.weight=1"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)


def test_every_problem_is_reported_at_once_with_its_dotted_key():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"optim": {"lr": -1, "lrr": 1, "epochs": "3"}, "data": {"num_ids": 1}})
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert {line.split(":")[0].split(";")[0] for line in lines} == {
        "optim.lr", "optim.epochs", "data.num_ids", "unknown config key optim.lrr"}


def test_schema_and_registry_problems_are_reported_together():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"optim": {"lr": -1}, "model": {"name": "agw", "params": {"gemp": 3}},
                          "eval": {"protocol": {"mode": "al"}}})
    assert str(info.value).splitlines() == [
        "optim.lr: input should be greater than 0, got -1",
        "unknown config key model.params.gemp; valid keys: arch, num_specific_stages, last_stride, non_local, gem_p, "
        "gem_learnable, pretrained",
        "eval.protocol.mode: input should be 'all' or 'indoor', got 'al'"]


def test_yaml_floats_without_a_dot_load_as_numbers(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-4\n  gamma: +1e-1\n")
    cfg = load_config(path)
    assert cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 0.0005 and cfg.optim.gamma == 0.1
    assert load_config(None, ["optim.lr=2e-4"]).optim.lr == 0.0002


@pytest.mark.parametrize(
    "dataset, protocol, message",
    [
        ("sysu-mm01", {"mode": "al"}, r"eval\.protocol\.mode: input should be 'all' or 'indoor', got 'al'"),
        ("sysu-mm01", {"shots": "1"}, r"eval\.protocol\.shots: input should be 1 or 10, got '1'"),
        ("sysu-mm01", {"direction": "visible-to-thermal"}, r"unknown config key eval\.protocol\.direction; "
                                                            r"valid keys: mode, shots, sampling, trials"),
        ("regdb", {"mode": "all"}, r"unknown config key eval\.protocol\.mode; valid keys: direction, trials"),
        ("regdb", {"direction": "up"}, r"eval\.protocol\.direction: input should be 'visible-to-thermal'"),
        ("llcm", {"trials": 2.5}, r"eval\.protocol\.trials: input should be a valid integer"),
        ("manifest", {"cmc_mode": "market"}, r"eval\.protocol\.cmc_mode: input should be 'identity' or 'image'"),
    ],
)
def test_the_protocol_is_checked_at_load_against_the_dataset(dataset, protocol, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"dataset": dataset}, "eval": {"protocol": protocol}})


def test_dataset_options_and_name_checked_at_load():
    with pytest.raises(ConfigError, match=r"unknown config key data\.options\.trial"):
        config_from_dict({"data": {"dataset": "sysu-mm01", "options": {"trial": 1}}})
    with pytest.raises(ConfigError, match=r"data\.dataset: unknown dataset 'sysu'; valid: .*llcm, manifest, .*regdb, .*sysu-mm01"):
        config_from_dict({"data": {"dataset": "sysu"}})
    cfg = config_from_dict({"data": {"dataset": "regdb", "options": {"trial": 2}},
                            "eval": {"protocol": {"direction": "thermal-to-visible"}}})
    assert cfg.data.options == {"trial": 2}


def test_a_vit_built_for_another_input_size_is_a_config_error() -> None:
    from vireid.config import config_from_dict

    values = {"model": {"name": "vit", "params": {"arch": "vit_cpu", "img_size": [128, 64]}},
              "data": {"height": 64, "width": 32}}
    with pytest.raises(ConfigError, match=r"model\.params\.img_size: \[128, 64\] differs from the images of "
                                          r"data\.height x data\.width \(64 x 32\)"):
        config_from_dict(values)
    values["model"]["params"]["img_size"] = [64, 32]
    assert config_from_dict(values).model.params["img_size"] == [64, 32]
