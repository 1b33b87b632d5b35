"""Configuration of cross-domain adaptation runs (``vireid adapt``): DAN and its baselines.

An :class:`AdaptConfig` is a :class:`~vireid.config.TrainConfig` (its ``data`` section is the
labelled *source*) plus a ``target`` section (the unlabelled target dataset and its test protocol)
and a ``dan`` section (method, components and weights of DAN, Fu et al., TCSVT 2022, seeds/000,
METHODS.md §2). Loading is as strict as ``vireid train``'s (:func:`vireid.config.load_config`).

Methods (``dan.method``):

- ``source_only``: the baseline of Tables 1-5, trained on the source, tested on the target;
- ``target_supervised``: the "Target Model" upper bound, trained on the target's labels;
- ``dbscan``: source losses + DBSCAN clusters of the target features as pseudo identities;
- ``dan``: source losses + the components switched on below (Table 4 rows: :data:`ABLATIONS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from vireid.config import DatasetSource, Section, TrainConfig, dataset_errors, load_config
from vireid.errors import ConfigError

# Table 4 of seeds/000 (TW -> RegDB ablation): ``dan`` section overrides of each row.
ABLATIONS: dict[str, dict[str, Any]] = {
    "+DAA": {"method": "dan", "daa": True, "hard_label": False, "soft_label": False, "cma": False},
    "+hard label": {"method": "dan", "daa": False, "hard_label": True, "soft_label": False, "cma": False},
    "+soft label": {"method": "dan", "daa": False, "hard_label": False, "soft_label": True, "cma": False},
    "+CMA": {"method": "dan", "daa": False, "hard_label": False, "soft_label": False, "cma": True},
    "full": {"method": "dan", "daa": True, "hard_label": False, "soft_label": True, "cma": True},
}

# Named rows of the comparison: ``vireid adapt --variant NAME`` (and the experiment script).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"method": "source_only"},
    "target": {"method": "target_supervised"},
    "dbscan": {"method": "dbscan"},
    "daa": ABLATIONS["+DAA"],
    "hard": ABLATIONS["+hard label"],
    "soft": ABLATIONS["+soft label"],
    "cma": ABLATIONS["+CMA"],
    "dan": ABLATIONS["full"],
}


def variant_overrides(name: str) -> list[str]:
    """``--set`` overrides (``dan.key=value``) selecting a row of :data:`VARIANTS`."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    return [f"dan.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in VARIANTS[name].items()]


class TargetConfig(DatasetSource):
    """The unlabelled target dataset: read with the usual readers, its labels never reach a loss."""

    root: str = Field(min_length=1)
    """Target root folder (or manifest file); required."""
    protocol: dict[str, Any] = Field(default_factory=dict)
    """Settings of the target's official test protocol (as ``eval.protocol``)."""
    sampling: Literal["auto", "random", "pseudo"] = "auto"
    """Target batches: ``random`` (``num_per_modality`` visible + as many infrared images), or
    ``pseudo`` (P x (K visible + K infrared) over the hard pseudo labels, so CMA sees every class in
    both modalities). ``auto``: ``pseudo`` when CMA is on, else ``random``."""
    num_per_modality: int = Field(32, ge=1)
    """Random sampling: target images per modality per batch (METHODS.md §2 default 32)."""
    num_ids: int = Field(8, ge=2)
    """Pseudo sampling: pseudo classes per batch (P)."""
    num_instances: int = Field(4, ge=1)
    """Pseudo sampling: images per pseudo class and modality (K)."""


class DANConfig(Section):
    """DAN components and weights (seeds/000 Eq. 15; defaults are METHODS.md §2 [UNSPEC->defaults])."""

    method: Literal["source_only", "target_supervised", "dbscan", "dan"] = "dan"
    daa: bool = True
    """Domain adversarial alignment (Eq. 1-4)."""
    hard_label: bool = False
    """Cross-entropy of the source classifier on the target hard labels (Table 4 "+Softmax (hard label)")."""
    soft_label: bool = True
    """Soft-label loss against the exemplar memory (Eq. 8-9)."""
    cma: bool = True
    """Cross-modal alignment of the hard-label classes' moments (Eq. 12-14)."""
    lambda1: float = Field(0.1, ge=0.0)
    """Weight of L_DAA."""
    lambda2: float = Field(1.0, ge=0.0)
    """Weight of L_soft."""
    lambda3: float = Field(0.5, ge=0.0)
    """Weight of L_CMA."""
    hard_weight: float = Field(1.0, ge=0.0)
    """Weight of the hard-label cross-entropy (ablation row only)."""
    eta: float = Field(1.0, ge=0.0)
    """Second-moment weight in CMA (Eq. 14)."""
    soft_lambda: float = Field(0.5, ge=0.0, le=1.0)
    """The lambda of Eq. 8-9 (mass on the image's own index; not lambda1-3)."""
    num_neighbours: int = Field(6, ge=1)
    """m, the reliable-set size (Eq. 8)."""
    soft_start_epoch: int = Field(5, ge=0)
    """0-based epoch from which L_soft is on (the first epochs learn from the source)."""
    refresh_every: int = Field(1, ge=1)
    """Recompute hard labels, DBSCAN clusters and the exemplar memory every N epochs."""
    memory_temperature: float = Field(0.05, gt=0.0)
    memory_momentum: float = Field(0.5, ge=0.0, le=1.0)
    """Exemplar memory update ``Mem[i] <- normalize(mu Mem[i] + (1 - mu) x_i)`` (1 = frozen)."""
    grl_gamma: float = Field(10.0, gt=0.0)
    """GRL coefficient ``grl_max * (2 / (1 + exp(-gamma p)) - 1)`` over training progress p."""
    grl_max: float = Field(1.0, ge=0.0)
    discriminator_hidden: list[int] = Field(default_factory=lambda: [1024, 1024])
    discriminator_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    discriminator_lr_mult: float = Field(1.0, gt=0.0)
    """Discriminator learning rate = ``optim.lr * discriminator_lr_mult``."""
    daa_feature: str = "bn_features"
    """Feature the discriminators read: the BNNeck output (the seed lists "BN" with DAA without
    defining it, METHODS.md §2). On AGW's pooled pre-BN ``features`` (a large common offset, tiny
    per-dimension spread) the discriminators stayed at chance for a whole run (loss 4 ln 2,
    accuracy 0.50) and DAA did nothing; see the README's DAN section."""
    target_feature: str = "bn_features"
    """Feature of the soft-label, CMA and DBSCAN losses (the retrieval embedding)."""
    cma_normalize: bool = True
    cma_reduction: Literal["sum", "mean"] = "sum"
    dbscan_eps: float | None = Field(None, gt=0.0, le=2.0)
    """DBSCAN radius as a cosine distance; None: the mean of the smallest ``dbscan_rho`` share of the
    pairwise distances (Song et al., PR 2020)."""
    dbscan_rho: float = Field(1.6e-3, gt=0.0, lt=1.0)
    dbscan_min_samples: int = Field(4, ge=1)
    dbscan_weight: float = Field(1.0, ge=0.0)
    dbscan_start_epoch: int = Field(5, ge=0)
    """0-based epoch from which the DBSCAN cluster loss is on."""
    proxy_a_distance: bool = True
    """Log the proxy A-distance per modality (Eq. 1) at every refresh and after training."""
    pad_max_samples: int = Field(1000, ge=4)
    """Images per domain and modality the proxy A-distance uses at most."""

    @model_validator(mode="after")
    def _checks(self) -> "DANConfig":
        if any(h < 1 for h in self.discriminator_hidden):
            raise ValueError("discriminator_hidden sizes must be >= 1")
        if self.method == "dan" and not (self.daa or self.hard_label or self.soft_label or self.cma):
            raise ValueError("method=dan with every component off (daa, hard_label, soft_label, cma) is the "
                             "baseline: use dan.method=source_only")
        return self


class AdaptConfig(TrainConfig):
    """A training recipe (``data`` = the labelled source) plus ``target`` and ``dan`` sections."""

    target: TargetConfig
    """The unlabelled target dataset (required)."""
    dan: DANConfig = Field(default_factory=DANConfig)

    def component_errors(self) -> list[str]:
        from vireid.losses.selection import check_feature_name

        errors = super().component_errors() + dataset_errors(self.target, self.target.protocol, "target",
                                                             "target.protocol")
        for key in ("daa_feature", "target_feature"):
            try:
                check_feature_name(getattr(self.dan, key), f"dan.{key}")
            except ConfigError as exc:
                errors.append(str(exc))
        return errors


def load_adapt_config(path: str | Path | None = None, overrides: list[str] | None = None) -> AdaptConfig:
    """Load an adaptation recipe (YAML), apply ``--set`` overrides, check every section."""
    return load_config(path, overrides, cls=AdaptConfig)


def source_config(cfg: AdaptConfig) -> TrainConfig:
    """The plain training recipe on the source (what ``source_only`` trains)."""
    return TrainConfig(**{name: getattr(cfg, name) for name in TrainConfig.model_fields})


def target_view(cfg: AdaptConfig) -> TrainConfig:
    """The recipe with ``data`` pointing at the target and ``eval.protocol`` at its protocol.

    What ``target_supervised`` trains on (with the target's labels), and what every adaptation
    run is evaluated with; saved as the run's ``config.yaml`` so ``vireid test --run`` scores the
    target's test protocol.
    """
    base = source_config(cfg)
    data = cfg.data.model_copy(update={"dataset": cfg.target.dataset, "root": cfg.target.root,
                                       "options": dict(cfg.target.options)})
    evaluation = cfg.eval.model_copy(update={"protocol": dict(cfg.target.protocol)})
    return base.model_copy(update={"data": data, "eval": evaluation})


def components(cfg: AdaptConfig) -> list[str]:
    """The losses an adaptation run trains with, for reports: e.g. ``["source", "daa", "soft", "cma"]``."""
    d = cfg.dan
    if d.method == "target_supervised":
        return ["target-labels"]
    out = ["source"]
    if d.method == "dbscan":
        out.append("dbscan")
    if d.method == "dan":
        out += [name for name, on in (("daa", d.daa), ("hard", d.hard_label), ("soft", d.soft_label),
                                      ("cma", d.cma)) if on]
    return out
