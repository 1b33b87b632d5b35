"""Typed, validated run configuration (pydantic v2).

A recipe is a YAML file whose sections map onto the models below. Loading is strict and complete:
every section is checked at load, before any work starts, and *all* problems are reported at once,
one line each naming the dotted key:

- unknown keys anywhere (``unknown config key optim.lrr; valid keys of optim: ...``);
- wrong types (no silent coercion: ``epochs: "3"`` is an error) and out-of-range values;
- registry names (model, losses, augmentations, batch augmentation, dataset) and their parameter
  tables, against the registered constructor's signature (names and annotated types);
- the evaluation protocol (``eval.protocol``) against the chosen dataset's protocol settings.

Floats written ``1e-3`` load as numbers (YAML 1.1 would read them as strings). ``--set a.b=value``
overrides go through the same checks. The resolved configuration is saved with every run.
Method sections (e.g. DAN's ``target`` and ``dan``) extend :class:`TrainConfig` in their package.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vireid.errors import ConfigError
from vireid.registry import call_errors, format_validation_errors

logger = logging.getLogger(__name__)


class Section(BaseModel):
    """A config section: unknown keys are errors, values are not coerced, fields keep their docs."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True,
                              use_attribute_docstrings=True)


class NamedPart(Section):
    """A registered part chosen by name, with its constructor's keyword arguments."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetSource(Section):
    """Where a dataset is read from."""

    dataset: str = "sysu-mm01"
    """Registered dataset name (``vireid methods``/``evaluate-features --help`` list them)."""
    root: str = "data/SYSU-MM01"
    """Dataset root folder (or manifest file)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra reader options, e.g. ``{trial: 1}`` for RegDB (checked against the reader)."""


# The pre-registry spelling of CAJ's augmentations (data.channel_augment & co.), still read from
# older recipes and run folders and translated to ``data.augment`` entries.
_LEGACY_CAJ_KEYS = ("channel_augment", "channel_exchange_p", "infrared_adap_gray")


def _legacy_caj(values: dict[str, Any]) -> dict[str, Any]:
    if not any(k in values for k in _LEGACY_CAJ_KEYS):
        return values
    values = dict(values)
    aug = str(values.pop("channel_augment", "none")).strip().lower()
    p = values.pop("channel_exchange_p", 1.0)
    adap = values.pop("infrared_adap_gray", False)
    if aug not in ("none", "ca", "cre", "ca+cre"):
        raise ValueError(f"channel_augment {aug!r} is not one of none, ca, cre, ca+cre")
    entries: list[dict[str, Any]] = list(values.get("augment", []))
    erasing = values.get("random_erasing", 0.0)
    if "cre" in aug and erasing:
        entries.append({"name": "channel_random_erasing", "params": {"p": erasing}})
    if aug in ("ca", "ca+cre"):
        entries.append({"name": "channel_exchange", "params": {"p": p}})
    if adap:
        entries.append({"name": "infrared_adap_gray", "params": {"p": 0.5}})
    values["augment"] = entries
    logger.info("data.channel_augment/channel_exchange_p/infrared_adap_gray are read as data.augment: %s", entries)
    return values


class AuxConfig(Section):
    """Auxiliary inputs loaded beside every image into ``Batch.aux`` (:mod:`vireid.data.aux_dataset`),
    keyed by the image's dataset-relative path. A model class that declares ``aux_inputs`` is called
    ``model(images, modality, aux=batch.aux)``; every other model ignores them."""

    keypoints: str | None = None
    """COCO keypoints JSON (17 joints ``[x, y, v]``) from any pose estimator: ``aux.keypoints`` and
    ``aux.heatmaps`` (17, H/stride, W/stride)."""
    parsing: str | None = None
    """Folder of single-channel label PNGs at ``FOLDER/<relpath with .png>``: ``aux.parsing`` (H, W)."""
    parsing_labels: Literal["atr", "lip"] = "atr"
    """Label ids of the parsing PNGs (for the left/right swap of a flip)."""
    captions: str | None = None
    """CUHK-PEDES-form captions JSON: ``aux.tokens`` (caption_length,) word ids of one caption."""
    caption_length: int = Field(64, ge=1)
    heatmap_stride: int = Field(4, ge=1)
    missing: Literal["error", "empty"] = "error"
    """An image without a keypoint/parsing entry: an error naming the file, or ``empty`` (an all-invisible
    skeleton / all-background map, counted and logged: the fallback of methods that define one)."""

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.keypoints, self.parsing, self.captions))


class DataConfig(DatasetSource):
    """Which dataset to train on and how batches are built (AGW recipe defaults)."""

    height: int = Field(288, ge=1)
    width: int = Field(144, ge=1)
    num_ids: int = Field(8, ge=2)
    """P: identities per batch (>= 2 for metric losses)."""
    num_instances: int = Field(4, ge=1)
    """K: images per identity and modality per batch (batch = P x 2K)."""
    pad: int = Field(10, ge=0)
    flip: bool = True
    random_erasing: float = Field(0.0, ge=0.0, le=1.0)
    """Probability of random erasing (AGW's cross-modal recipe uses none)."""
    augment: list[NamedPart] = Field(default_factory=list)
    """Registered per-image augmentations (:mod:`vireid.data.augment`), e.g. CAJ's
    ``{name: channel_exchange, params: {p: 0.5}}``; applied in this order within their stage."""
    batch_augment: str = "none"
    """Batch-level augmentation on the device (:mod:`vireid.data.batch_augment`), e.g. CAJ's ``caj_joint``."""
    batch_augment_params: dict[str, Any] = Field(default_factory=dict)
    in_memory: bool = False
    """Decode every image once into memory (small datasets)."""
    num_workers: int = Field(2, ge=0)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Fraction held out for model selection (never the test set); 0 = no validation, the last epoch is kept."""
    val_split: Literal["identities", "images"] = "identities"
    """``identities``: hold out ``val_fraction`` of the training identities (unseen people, as the test);
    ``images``: keep every identity for training and hold out ``val_fraction`` of each identity's images
    per modality (small datasets, where a sixth of the identities is too many to lose)."""
    batches_per_epoch: int | None = Field(None, ge=1)
    """Cap on batches per epoch (None: the sampler's default)."""
    aux: AuxConfig = Field(default_factory=AuxConfig)
    """Auxiliary inputs (keypoints, parsing maps, caption tokens) that travel with the batch."""

    @model_validator(mode="before")
    @classmethod
    def _read_legacy_keys(cls, values: Any) -> Any:
        return _legacy_caj(values) if isinstance(values, dict) else values


class ModelConfig(NamedPart):
    name: str = "agw"
    """Registered model name."""


class LossConfig(NamedPart):
    name: str = "cross_entropy"
    weight: float = Field(1.0, ge=0.0)


class OptimConfig(Section):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0.0)
    """Learning rate of the new layers (head); the backbone gets ``lr * backbone_lr_mult``."""
    backbone_lr_mult: float = Field(0.1, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    epochs: int = Field(60, ge=1)
    warmup_epochs: int = Field(10, ge=0)
    """Linear warm-up as in AGW: epoch e < W runs at lr * (e + 1) / W."""
    milestones: list[int] = Field(default_factory=lambda: [20, 50])
    gamma: float = Field(0.1, gt=0.0)
    schedule_for_epochs: int | None = Field(None, ge=1)
    """The epoch count ``warmup_epochs`` and ``milestones`` are written for: when ``epochs`` differs they
    are scaled by ``epochs / schedule_for_epochs`` (rounded half up) instead of failing (None: as written)."""
    clip_grad_norm: float | None = Field(None, gt=0.0)
    implementation: Literal["auto", "for-loop", "foreach", "fused"] = "auto"
    """How the optimiser updates the parameters: torch's choice (``auto``: ``foreach`` on CUDA,
    ``for-loop`` on CPU), one tensor at a time (``for-loop``), one multi-tensor op per step of the
    update (``foreach``; bit-identical to ``for-loop``, no faster on CPU) or one fused kernel
    (``fused``; differs by rounding). Issue 17 (``benchmarks/bench_train_step.py --phases``, one CPU
    thread): fused takes AdamW's update from 0.045 to 0.018 s and SGD's from 0.045 to 0.021 s on
    AGW-ResNet-18 (~6% of a 64x32 demo step); on AGW-ResNet-50 at 288x144 the update is 0.05 of
    8.5 s, so it makes no measurable difference there. On CUDA ``fused`` is the usual fastest."""

    @model_validator(mode="after")
    def _schedule(self) -> "OptimConfig":
        written_for = self.schedule_for_epochs or self.epochs
        if self.warmup_epochs > written_for:
            which = "schedule_for_epochs" if self.schedule_for_epochs else "epochs"
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be <= {which} ({written_for})")
        if list(self.milestones) != sorted(self.milestones) or any(m < 0 for m in self.milestones):
            raise ValueError(f"milestones must be increasing non-negative epochs, got {self.milestones}")
        return self


class EvalConfig(Section):
    every: int = Field(5, ge=1)
    """Validate every N epochs (and after the last)."""
    metric: Literal["mAP", "rank1", "mINP"] = "mAP"
    """Validation metric used to keep the best checkpoint."""
    batch_size: int = Field(128, ge=1)
    flip: bool = False
    """Flip test-time augmentation (average of original and mirrored features). Reported when on."""
    protocol: dict[str, Any] = Field(default_factory=dict)
    """Test protocol settings of ``data.dataset`` (e.g. SYSU-MM01 ``{mode: all, shots: 1, sampling:
    official}``), checked at load against that dataset's protocol."""


class RuntimeConfig(Section):
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``..."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast dtype; ``bf16`` works on CPU (AMX) and CUDA, ``fp16`` on CUDA only."""
    channels_last: bool = False
    seed: int = Field(0, ge=0)
    deterministic: bool = False
    num_threads: int | None = Field(None, ge=1)
    """torch intra-op threads on CPU (None: torch's default)."""
    tensorboard: bool = False
    log_every: int = Field(20, ge=1)
    """Iterations between progress log lines in metrics.jsonl."""
    sync_bn: bool = False

    @pydantic.field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return value


class TrainConfig(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    losses: list[LossConfig] = Field(default_factory=lambda: [
        LossConfig(name="cross_entropy", weight=1.0, params={"epsilon": 0.1}),
        LossConfig(name="wrt", weight=1.0),
    ], min_length=1)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    trainer: str = "default"
    """Registered trainer (:data:`vireid.engine.trainer.TRAINERS`): ``default``, or a method's subclass
    that changes what a step optimises through the trainer's public hooks."""
    output_dir: str = "runs"
    name: str = "run"

    def component_errors(self) -> list[str]:
        """Registry names and parameter tables, checked against the registered constructors
        (the registries must be filled: the command line imports :mod:`vireid.methods`)."""
        from vireid.data.augment import AUGMENTATIONS
        from vireid.data.batch_augment import BATCH_AUGMENTS
        from vireid.losses.registry import LOSSES
        from vireid.models.registry import MODELS

        errors: list[str] = []

        def check(registry: Any, name: str, params: dict[str, Any], where: str, key: str,
                  exclude: tuple[str, ...] = ()) -> None:
            if name not in registry:
                errors.append(f"{key}: unknown {registry.kind} {name!r}; valid: {', '.join(registry.names())}")
            else:
                errors.extend(registry.param_errors(name, params, where, exclude))

        check(MODELS, self.model.name, self.model.params, "model.params", "model.name", ("num_classes",))
        errors += _input_size_errors(MODELS, self.model, self.data)
        names = [c.name for c in self.losses]
        for i, c in enumerate(self.losses):
            check(LOSSES, c.name, c.params, f"losses[{i}].params", f"losses[{i}].name")
        if len(set(names)) != len(names):
            errors.append(f"losses: each loss may appear once, got {names}")
        for i, a in enumerate(self.data.augment):
            check(AUGMENTATIONS, a.name, a.params, f"data.augment[{i}].params", f"data.augment[{i}].name")
        check(BATCH_AUGMENTS, self.data.batch_augment, self.data.batch_augment_params, "data.batch_augment_params",
              "data.batch_augment")
        errors += dataset_errors(self.data, self.eval.protocol, "data", "eval.protocol")
        from vireid.registry import TRAINERS

        if self.trainer != "default" and self.trainer not in TRAINERS:
            valid = ", ".join(sorted({"default", *TRAINERS.names()}))
            errors.append(f"trainer: unknown trainer {self.trainer!r}; valid: {valid}")
        return errors


def _input_size_errors(models: Any, model: "ModelConfig", data: "DataConfig") -> list[str]:
    """A model built for a fixed input size (a ViT's ``img_size``: its position-embedding grid) must be
    given the images the data section makes; otherwise the first forward pass would fail."""
    import inspect

    if model.name not in models:
        return []
    param = inspect.signature(models.get(model.name)).parameters.get("img_size")
    if param is None:
        return []
    size = model.params.get("img_size", param.default)
    if isinstance(size, (list, tuple)) and list(size) != [data.height, data.width]:
        return [f"model.params.img_size: {list(size)} differs from the images of data.height x data.width "
                f"({data.height} x {data.width}); set one to the other"]
    return []


def dataset_errors(source: DatasetSource, protocol: dict[str, Any], where: str, protocol_key: str) -> list[str]:
    """The dataset name, its reader options and its protocol settings, checked against the reader."""
    from vireid.data.datasets.registry import DATASETS

    if source.dataset not in DATASETS:
        return [f"{where}.dataset: unknown dataset {source.dataset!r}; valid: {', '.join(DATASETS.names())}"]
    cls = DATASETS.get(source.dataset)
    return (protocol_errors(cls.load, source.options, f"{where}.options", f"{source.dataset} reader")
            + protocol_errors(cls.eval_plan, protocol, protocol_key, f"{source.dataset} protocol"))


def protocol_errors(fn: Any, settings: dict[str, Any], key: str, what: str) -> list[str]:
    """``settings`` checked against the keyword parameters of ``fn`` (names and annotated types)."""
    return call_errors(fn, settings, key, exclude=("root",))


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``1e-3`` / ``5E+4`` (no dot) as floats, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML the way recipes are read (``1e-3`` is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  a SafeLoader subclass


def _valid_keys(cls: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, list[str]] | None:
    """The section at ``loc[:-1]`` and its valid keys, for 'unknown key' messages."""
    node: Any = cls
    path = []
    for part in loc[:-1]:
        if isinstance(part, int):
            path[-1] += f"[{part}]"
            continue
        field = node.model_fields.get(part) if isinstance(node, type) and issubclass(node, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        for arg in getattr(ann, "__args__", ()) or ():  # list[X] / X | None
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                ann = arg
        node = ann
        path.append(str(part))
    if isinstance(node, type) and issubclass(node, BaseModel):
        return ".".join(path) or "the top level", list(node.model_fields)
    return None


def _errors(exc: pydantic.ValidationError, cls: type[BaseModel]) -> list[str]:
    lines = format_validation_errors(exc)
    out = []
    for line, err in zip(lines, exc.errors(include_url=False)):
        if err["type"] == "extra_forbidden" and (found := _valid_keys(cls, err["loc"])):
            line += f"; valid keys of {found[0]}: {', '.join(found[1])}"
        out.append(line)
    return out


def config_from_dict(values: dict[str, Any], cls: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """Build and check a config; a :class:`ConfigError` lists every problem, one per line."""
    try:
        cfg = cls.model_validate(values)
    except pydantic.ValidationError as exc:
        errors = _errors(exc, cls)
        # Still check the registry names and tables of the sections that are fine, so that one run
        # of the command shows every problem: drop the broken top-level sections and validate again.
        broken = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if not isinstance(values, dict) or not broken or broken - set(cls.model_fields):
            raise ConfigError("\n".join(errors)) from None
        if "data" in broken:
            broken |= {"eval"}  # the protocol is checked against data.dataset
        try:
            partial = cls.model_validate({k: v for k, v in values.items() if k not in broken})
        except pydantic.ValidationError:
            raise ConfigError("\n".join(errors)) from None
        errors += [e for e in partial.component_errors() if e.replace("unknown config key ", "").split(".")[0]
                   .split("[")[0].split(":")[0] not in broken]
        raise ConfigError("\n".join(errors)) from None
    errors = cfg.component_errors()
    if errors:
        raise ConfigError("\n".join(errors))
    return cfg


def config_to_dict(cfg: BaseModel) -> dict[str, Any]:
    return cfg.model_dump(mode="python")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` -> (["optim", "lr"], 0.05); the value is parsed as YAML (maps and lists too)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml_load(raw) if raw.strip() else ""
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
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"override {text!r}: {'.'.join(parts[:i])} is {node!r}, not a section")
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[: i + 1])} is {node!r}, not a section")
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


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file holding a mapping; ConfigError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    cls: type[TrainConfig] = TrainConfig,
) -> TrainConfig:
    """Load a YAML recipe (or the defaults when ``path`` is None), apply overrides, check everything.

    ``cls`` is :class:`TrainConfig` or a method's extension of it (e.g. DAN's adaptation config).
    """
    values: dict[str, Any] = read_yaml_mapping(path) if path is not None else {}
    if overrides:
        # Overrides on list sections need the defaults materialised first.
        if any(o.split("=", 1)[0].startswith("losses.") for o in overrides) and "losses" not in values:
            values["losses"] = config_to_dict(TrainConfig())["losses"]
        values = apply_overrides(values, overrides)
    try:
        return config_from_dict(values, cls)
    except ConfigError as exc:
        if path is None:
            raise
        lines = str(exc).splitlines()
        if len(lines) == 1:
            raise ConfigError(f"{lines[0]} (in {path})") from None
        raise ConfigError(f"{len(lines)} problems in {path}:\n" + "\n".join(f"  {line}" for line in lines)) from None


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
