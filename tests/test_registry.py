"""The one registry mechanism (vireid.registry.Registry) behind models, losses, augmentations,
datasets and methods."""

from __future__ import annotations

import pytest

from vireid.errors import ConfigError
from vireid.registry import Registry


def make(num_classes: int, *, arch: str = "resnet50", gem_p: float = 3.0, sizes: tuple[int, ...] = (1, 2)) -> dict:
    return {"num_classes": num_classes, "arch": arch, "gem_p": gem_p, "sizes": sizes}


def test_register_get_build_and_names() -> None:
    reg: Registry = Registry("widget")
    reg.register("b", make)
    reg.register("a")(make)
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2 and list(reg) == ["a", "b"]
    assert reg.build("a", num_classes=3, arch="resnet18")["arch"] == "resnet18"
    reg.register("a", make)  # same object again: no-op
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", lambda: None)
    with pytest.raises(ConfigError, match=r"^unknown widget 'c'; valid: a, b$"):
        reg.get("c")
    with pytest.raises(ConfigError, match=r"^model\.name: unknown widget 'c'; valid: a, b$"):
        reg.get("c", "model.name")
    reg.unregister("b")
    assert reg.names() == ["a"]


def test_params_checked_by_name_and_annotated_type_with_dotted_keys() -> None:
    reg: Registry = Registry("model")
    reg.register("m", make)
    assert reg.check_params("m", {"arch": "resnet18", "gem_p": 4, "sizes": [3, 4]}, "model.params") == []
    assert reg.check_params("m", {"gemp": 3}, "model.params", exclude=("num_classes",)) == [
        "unknown config key model.params.gemp; valid keys: arch, gem_p, sizes"]
    errors = reg.check_params("m", {"arch": 5, "gem_p": "3", "sizes": ["x"]}, "model.params")
    assert errors == ["model.params.arch: input should be a valid string, got 5",
                      "model.params.gem_p: input should be a valid number, got '3'",
                      "model.params.sizes[0]: input should be a valid integer, got 'x'"]
    with pytest.raises(ConfigError, match=r"unknown config key model 'm'\.gemp"):
        reg.build("m", num_classes=2, gemp=3)


def test_var_keyword_constructors_accept_any_key() -> None:
    reg: Registry = Registry("thing")
    reg.register("k", lambda **kw: kw)
    assert reg.accepted_params("k") is None and reg.check_params("k", {"anything": 1}, "x") == []
