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
        ({"optim": {"lr": "fast"}}, r"optim\.lr: expected a number, got 'fast'"),
        ({"optim": {"epochs": 2.5}}, r"optim\.epochs: expected an integer"),
        ({"data": {"flip": "yes"}}, r"data\.flip: expected true/false"),
        ({"optim": {"name": "rmsprop"}}, r"optim\.name: 'rmsprop' is not one of \['sgd', 'adamw'\]"),
        ({"runtime": {"precision": "fp8"}}, r"runtime\.precision"),
        ({"data": {"num_ids": 1}}, r"data\.num_ids \(P\) must be >= 2"),
        ({"optim": {"milestones": [50, 20]}}, "milestones must be increasing"),
        ({"data": "x"}, r"data: expected a mapping"),
        ({"data": {"channel_exchange_p": 1.5}}, r"data\.channel_exchange_p must be a probability"),
        ({"data": {"channel_augment": "gray"}}, r"data\.channel_augment must be one of none, ca, cre, ca\+cre"),
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
    cfg = load_config(path, ["optim.lr=0.2", "data.options.trial=3", "losses.0.weight=0.5", "model.params.arch=resnet18"])
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
