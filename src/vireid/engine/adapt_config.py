"""Configuration of cross-domain adaptation runs (``vireid adapt``): DAN and its baselines.

An :class:`AdaptConfig` is a :class:`~vireid.config.TrainConfig` (its ``data`` section is the
labelled *source*) plus a ``target`` section (the unlabelled target dataset and its test protocol)
and a ``dan`` section (method, components and weights of DAN, Fu et al., TCSVT 2022, seeds/000,
METHODS.md §2). Loading is as strict as ``vireid train``'s: it goes through
:func:`vireid.config._build`, :func:`vireid.config.apply_overrides` and :func:`vireid.config.validate`.

Methods (``dan.method``):

- ``source_only``: the baseline of Tables 1-5, trained on the source, tested on the target;
- ``target_supervised``: the "Target Model" upper bound, trained on the target's labels;
- ``dbscan``: source losses + DBSCAN clusters of the target features as pseudo identities;
- ``dan``: source losses + the components switched on below (Table 4 rows: :data:`ABLATIONS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vireid.config import TrainConfig, _build, load_config, validate
from vireid.errors import ConfigError

METHODS = ("source_only", "target_supervised", "dbscan", "dan")

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


@dataclass
class TargetConfig:
    """The unlabelled target dataset: read with the usual readers, its labels never reach a loss."""

    dataset: str = "sysu-mm01"
    """Registered dataset name of the target (any reader, incl. ``manifest``)."""
    root: str = ""
    """Target root folder (or manifest file)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra reader options, e.g. ``{trial: 1}`` for RegDB."""
    protocol: dict[str, Any] = field(default_factory=dict)
    """Settings of the target's official test protocol (as ``eval.protocol``)."""
    sampling: Literal["auto", "random", "pseudo"] = "auto"
    """Target batches: ``random`` (``num_per_modality`` visible + as many infrared images), or
    ``pseudo`` (P x (K visible + K infrared) over the hard pseudo labels, so CMA sees every class in
    both modalities). ``auto``: ``pseudo`` when CMA is on, else ``random``."""
    num_per_modality: int = 32
    """Random sampling: target images per modality per batch (METHODS.md §2 default 32)."""
    num_ids: int = 8
    """Pseudo sampling: pseudo classes per batch (P)."""
    num_instances: int = 4
    """Pseudo sampling: images per pseudo class and modality (K)."""


@dataclass
class DANConfig:
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
    lambda1: float = 0.1
    """Weight of L_DAA."""
    lambda2: float = 1.0
    """Weight of L_soft."""
    lambda3: float = 0.5
    """Weight of L_CMA."""
    hard_weight: float = 1.0
    """Weight of the hard-label cross-entropy (ablation row only)."""
    eta: float = 1.0
    """Second-moment weight in CMA (Eq. 14)."""
    soft_lambda: float = 0.5
    """The lambda of Eq. 8-9 (mass on the image's own index; not lambda1-3)."""
    num_neighbours: int = 6
    """m, the reliable-set size (Eq. 8)."""
    soft_start_epoch: int = 5
    """0-based epoch from which L_soft is on (the first epochs learn from the source)."""
    refresh_every: int = 1
    """Recompute hard labels, DBSCAN clusters and the exemplar memory every N epochs."""
    memory_temperature: float = 0.05
    memory_momentum: float = 0.5
    """Exemplar memory update ``Mem[i] <- normalize(mu Mem[i] + (1 - mu) x_i)`` (1 = frozen)."""
    grl_gamma: float = 10.0
    """GRL coefficient ``grl_max * (2 / (1 + exp(-gamma p)) - 1)`` over training progress p."""
    grl_max: float = 1.0
    discriminator_hidden: list[int] = field(default_factory=lambda: [1024, 1024])
    discriminator_dropout: float = 0.5
    discriminator_lr_mult: float = 1.0
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
    dbscan_eps: float | None = None
    """DBSCAN radius as a cosine distance; None: the mean of the smallest ``dbscan_rho`` share of the
    pairwise distances (Song et al., PR 2020)."""
    dbscan_rho: float = 1.6e-3
    dbscan_min_samples: int = 4
    dbscan_weight: float = 1.0
    dbscan_start_epoch: int = 5
    """0-based epoch from which the DBSCAN cluster loss is on."""
    proxy_a_distance: bool = True
    """Log the proxy A-distance per modality (Eq. 1) at every refresh and after training."""
    pad_max_samples: int = 1000
    """Images per domain and modality the proxy A-distance uses at most."""


@dataclass
class AdaptConfig(TrainConfig):
    """A training recipe (``data`` = the labelled source) plus ``target`` and ``dan`` sections."""

    target: TargetConfig = field(default_factory=TargetConfig)
    dan: DANConfig = field(default_factory=DANConfig)


def adapt_config_from_dict(values: dict[str, Any]) -> AdaptConfig:
    cfg = _build(AdaptConfig, values)
    validate_adapt(cfg)
    return cfg


def load_adapt_config(path: str | Path | None = None, overrides: list[str] | None = None) -> AdaptConfig:
    """Load an adaptation recipe (YAML), apply ``--set`` overrides, validate (strict keys)."""
    return load_config(path, overrides, from_dict=adapt_config_from_dict)


def validate_adapt(cfg: AdaptConfig) -> None:
    """:func:`vireid.config.validate` plus the range checks of the ``target`` and ``dan`` sections."""
    validate(cfg)
    t, d = cfg.target, cfg.dan
    checks = [
        (bool(t.root), "target.root must name the target dataset"),
        (t.num_per_modality >= 1, "target.num_per_modality must be >= 1"),
        (t.num_ids >= 2 and t.num_instances >= 1, "target.num_ids must be >= 2 and target.num_instances >= 1"),
        (min(d.lambda1, d.lambda2, d.lambda3, d.hard_weight, d.eta, d.dbscan_weight) >= 0,
         "dan.lambda1-3, dan.hard_weight, dan.eta and dan.dbscan_weight must be >= 0"),
        (0.0 <= d.soft_lambda <= 1.0, "dan.soft_lambda must be in [0, 1]"),
        (d.num_neighbours >= 1, "dan.num_neighbours (m) must be >= 1"),
        (d.soft_start_epoch >= 0, "dan.soft_start_epoch must be >= 0"),
        (d.refresh_every >= 1, "dan.refresh_every must be >= 1"),
        (d.memory_temperature > 0, "dan.memory_temperature must be positive"),
        (0.0 <= d.memory_momentum <= 1.0, "dan.memory_momentum must be in [0, 1]"),
        (d.grl_gamma > 0 and d.grl_max >= 0, "dan.grl_gamma must be positive and dan.grl_max >= 0"),
        (all(h >= 1 for h in d.discriminator_hidden), "dan.discriminator_hidden sizes must be >= 1"),
        (0.0 <= d.discriminator_dropout < 1.0, "dan.discriminator_dropout must be in [0, 1)"),
        (d.discriminator_lr_mult > 0, "dan.discriminator_lr_mult must be positive"),
        (d.dbscan_eps is None or 0.0 < d.dbscan_eps <= 2.0, "dan.dbscan_eps is a cosine distance in (0, 2] or null"),
        (0.0 < d.dbscan_rho < 1.0 and d.dbscan_start_epoch >= 0, "dan.dbscan_rho must be in (0, 1), "
                                                                 "dan.dbscan_start_epoch >= 0"),
        (d.dbscan_min_samples >= 1, "dan.dbscan_min_samples must be >= 1"),
        (d.pad_max_samples >= 4, "dan.pad_max_samples must be >= 4"),
        (d.method != "dan" or d.daa or d.hard_label or d.soft_label or d.cma,
         "dan.method=dan with every component off (daa, hard_label, soft_label, cma) is the baseline: "
         "use dan.method=source_only"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for key in ("daa_feature", "target_feature"):
        from vireid.losses.selection import check_feature_name

        check_feature_name(getattr(d, key), f"dan.{key}")


def source_config(cfg: AdaptConfig) -> TrainConfig:
    """The plain training recipe on the source (what ``source_only`` trains)."""
    return TrainConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainConfig)})


def target_view(cfg: AdaptConfig) -> TrainConfig:
    """The recipe with ``data`` pointing at the target and ``eval.protocol`` at its protocol.

    What ``target_supervised`` trains on (with the target's labels), and what every adaptation
    run is evaluated with; saved as the run's ``config.yaml`` so ``vireid test --run`` scores the
    target's test protocol.
    """
    base = source_config(cfg)
    data = dataclasses.replace(cfg.data, dataset=cfg.target.dataset, root=cfg.target.root,
                               options=dict(cfg.target.options))
    evaluation = dataclasses.replace(cfg.eval, protocol=dict(cfg.target.protocol))
    return dataclasses.replace(base, data=data, eval=evaluation)


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
