"""Typed, validated run configuration.

A recipe is a YAML file whose sections map onto the dataclasses below. Loading is strict:
an unknown key anywhere is an error naming its dotted path and the valid keys, and every
value is checked against its field's type. ``--set a.b=value`` overrides use the same
validation. The resolved configuration is saved with every run (``config.yaml``).

Free-form parameter tables (``model.params``, ``losses[i].params``) are checked later, when
the registry constructor they feed is known, against that constructor's signature.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from vireid.errors import ConfigError


@dataclass
class DataConfig:
    """Which dataset to train on and how batches are built (AGW recipe defaults)."""

    dataset: str = "sysu-mm01"
    """Registered dataset name (``sysu-mm01``, ``regdb``, ``llcm``, ``manifest``)."""
    root: str = "data/SYSU-MM01"
    """Dataset root folder (or manifest file)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra reader options, e.g. ``{trial: 1}`` for RegDB."""
    height: int = 288
    width: int = 144
    num_ids: int = 8
    """P: identities per batch."""
    num_instances: int = 4
    """K: images per identity and modality per batch (batch = P x 2K)."""
    pad: int = 10
    flip: bool = True
    random_erasing: float = 0.0
    """Probability of random erasing (AGW's cross-modal recipe uses none)."""
    channel_augment: str = "none"
    """CAJ augmentation (seeds/001 §8): ``none``, ``ca`` (channel exchange, visible only), ``cre``
    (channel random erasing, both modalities, probability ``random_erasing``), ``ca+cre``."""
    channel_exchange_p: float = 1.0
    """Probability that ``ca`` replaces a visible image by one of its channels or its gray version."""
    infrared_adap_gray: bool = False
    """The CAJ code's ``ChannelAdapGray`` on infrared images (normalised channel copy or gray;
    :class:`vireid.data.transforms.ChannelAdapGray`)."""
    batch_augment: str = "none"
    """Batch-level augmentation on the device (``vireid.data.batch_augment``), e.g. CAJ joint learning."""
    batch_augment_params: dict[str, Any] = field(default_factory=dict)
    in_memory: bool = False
    """Decode every image once into memory (small datasets)."""
    num_workers: int = 2
    val_fraction: float = 0.1
    """Fraction held out for model selection (never the test set); 0 = no validation, the last epoch is kept."""
    val_split: Literal["identities", "images"] = "identities"
    """``identities``: hold out ``val_fraction`` of the training identities (unseen people, as the test);
    ``images``: keep every identity for training and hold out ``val_fraction`` of each identity's images
    per modality (small datasets, where a sixth of the identities is too many to lose)."""
    batches_per_epoch: int | None = None
    """Cap on batches per epoch (None: the sampler's default)."""


@dataclass
class ModelConfig:
    name: str = "agw"
    params: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the registered constructor (checked against its signature)."""


@dataclass
class LossConfig:
    name: str = "cross_entropy"
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    """Learning rate of the new layers (head); the backbone gets ``lr * backbone_lr_mult``."""
    backbone_lr_mult: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    epochs: int = 60
    warmup_epochs: int = 10
    """Linear warm-up as in AGW: epoch e < W runs at lr * (e + 1) / W."""
    milestones: list[int] = field(default_factory=lambda: [20, 50])
    gamma: float = 0.1
    schedule_for_epochs: int | None = None
    """The epoch count ``warmup_epochs`` and ``milestones`` are written for: when ``epochs`` differs they
    are scaled by ``epochs / schedule_for_epochs`` (rounded half up) instead of failing (None: as written)."""
    clip_grad_norm: float | None = None


@dataclass
class EvalConfig:
    every: int = 5
    """Validate every N epochs (and after the last)."""
    metric: Literal["mAP", "rank1", "mINP"] = "mAP"
    """Validation metric used to keep the best checkpoint."""
    batch_size: int = 128
    flip: bool = False
    """Flip test-time augmentation (average of original and mirrored features). Reported when on."""
    protocol: dict[str, Any] = field(default_factory=dict)
    """Test protocol settings for ``vireid test`` (e.g. ``{mode: all, shots: 1, sampling: official}``)."""


@dataclass
class RuntimeConfig:
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``..."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast dtype; ``bf16`` works on CPU (AMX) and CUDA, ``fp16`` on CUDA only."""
    channels_last: bool = False
    seed: int = 0
    deterministic: bool = False
    num_threads: int | None = None
    """torch intra-op threads on CPU (None: torch's default)."""
    tensorboard: bool = False
    log_every: int = 20
    """Iterations between progress log lines in metrics.jsonl."""
    sync_bn: bool = False


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: list[LossConfig] = field(default_factory=lambda: [
        LossConfig("cross_entropy", 1.0, {"epsilon": 0.1}),
        LossConfig("wrt", 1.0, {}),
    ])
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output_dir: str = "runs"
    name: str = "run"


# --------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (dataclasses from dicts)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for section {tp.__name__}, got {value!r}")
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = args or (Any,)
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp!r}")  # pragma: no cover


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown config key {where}{unknown[0]!s}; valid keys of "
            f"{prefix or 'the top level'}: {', '.join(names)}"
        )
    kwargs = {}
    for name in names:
        if name in values:
            kwargs[name] = _convert(values[name], hints[name], f"{prefix}.{name}" if prefix else name)
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, values)
    validate(cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` -> (["optim", "lr"], 0.05); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to a raw (dict) configuration. ``losses.0.weight=2`` indexes lists."""
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = values
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_list_index(node, part, parts[: i + 1])]
            else:
                node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[_list_index(node, last, parts)] = value
        else:
            node[last] = value
    return values


def _list_index(node: list, part: str, path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override key {'.'.join(path)}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    from_dict: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainConfig:
    """Load a YAML recipe (or the defaults when ``path`` is None), apply overrides, validate.

    ``from_dict`` builds and validates the config from the raw mapping (default
    :func:`config_from_dict`); recipes that extend :class:`TrainConfig` pass their own.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        values = loaded
    if overrides:
        # Overrides on list sections need the defaults materialised first.
        if any(o.split("=", 1)[0].startswith("losses.") for o in overrides) and "losses" not in values:
            values["losses"] = config_to_dict(TrainConfig())["losses"]
        values = apply_overrides(values, overrides)
    try:
        return (from_dict or config_from_dict)(values)
    except ConfigError as exc:
        where = f" (in {path})" if path is not None else ""
        raise ConfigError(f"{exc}{where}") from None


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def validate(cfg: TrainConfig) -> None:
    """Range checks that types alone cannot express."""
    d, o = cfg.data, cfg.optim
    checks = [
        (d.height > 0 and d.width > 0, "data.height and data.width must be positive"),
        (d.num_ids >= 2, "data.num_ids (P) must be >= 2 for metric losses"),
        (d.num_instances >= 1, "data.num_instances (K) must be >= 1"),
        (0.0 <= d.random_erasing <= 1.0, "data.random_erasing must be a probability in [0, 1]"),
        (0.0 <= d.val_fraction < 1.0, "data.val_fraction must be in [0, 1)"),
        (0.0 <= d.channel_exchange_p <= 1.0, "data.channel_exchange_p must be a probability in [0, 1]"),
        (d.num_workers >= 0, "data.num_workers must be >= 0"),
        (d.channel_augment in ("none", "ca", "cre", "ca+cre"),
         "data.channel_augment must be one of none, ca, cre, ca+cre"),
        (o.lr > 0, "optim.lr must be positive"),
        (o.epochs >= 1, "optim.epochs must be >= 1"),
        (o.schedule_for_epochs is None or o.schedule_for_epochs >= 1, "optim.schedule_for_epochs must be >= 1"),
        (0 <= o.warmup_epochs <= (o.schedule_for_epochs or o.epochs),
         "optim.warmup_epochs must be in [0, optim.epochs] (or [0, optim.schedule_for_epochs] when that is set)"),
        (list(o.milestones) == sorted(o.milestones), "optim.milestones must be increasing"),
        (o.clip_grad_norm is None or o.clip_grad_norm > 0, "optim.clip_grad_norm must be positive"),
        (cfg.eval.every >= 1, "eval.every must be >= 1"),
        (len(cfg.losses) >= 1, "losses must name at least one loss"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
