"""The method registry: one :func:`register_method` call per paper publishes all of its parts.

A :class:`Method` names its paper, the seed section and the METHODS.md section it implements, its
recipes and status, and carries its parts: models, losses, batch augmentations, image
augmentations and datasets. :func:`register_method` adds each part to the core registry of its
kind (:data:`vireid.models.MODELS`, :data:`vireid.losses.LOSSES`, ...) and the method itself to
:data:`METHODS`, which ``vireid methods`` lists. Nothing in the core imports a method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vireid.registry import TRAINERS, Registry


@dataclass(frozen=True)
class Method:
    """What a paper contributes, and where to read about it."""

    name: str
    """Short name (the package name under ``vireid.methods``)."""
    paper: str
    """Authors, venue and title of the paper."""
    seed: str
    """Where our source documents describe it (e.g. ``seeds/001 §8``)."""
    reference: str = ""
    """The section of ../shared/METHODS.md with its equations, defaults and ambiguities."""
    recipes: tuple[str, ...] = ()
    """Recipe files under ``configs/`` (paper recipes and CPU recipes)."""
    status: str = ""
    """Implemented / tested / verified: one line, honest."""
    models: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    losses: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    batch_augments: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    augmentations: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    datasets: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    rerankers: Mapping[str, tuple[Callable[..., Any], tuple[str, ...]]] = field(default_factory=dict)
    """Test-time re-rankers/refiners: name -> (stream function, the keyword names recorded with results)."""
    requires_aux: tuple[str, ...] = ()
    """Auxiliary inputs its models read (``keypoints``, ``parsing``, ``captions``: the ``data.aux`` keys)."""
    aux_policy: str = "error"
    """When an image has no auxiliary entry: ``error`` (naming the file), ``fallback`` (the method's
    documented substitute, e.g. SPOT's uniform heatmaps, counted and logged) or ``skip`` (METHODS.md §0)."""
    trainers: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Trainer subclasses chosen by the config key ``trainer`` (they change a step through the
    trainer's public hooks: ``compute_losses``, ``after_step``, ``extra_state``/``load_extra_state``...)."""
    commands: tuple[str, ...] = ()
    """Sub-commands of its own (e.g. ``adapt`` for DAN)."""

    def parts(self) -> dict[str, list[str]]:
        """Registered names of each kind of part."""
        kinds = {"models": self.models, "losses": self.losses, "batch augmentations": self.batch_augments,
                 "image augmentations": self.augmentations, "datasets": self.datasets, "re-rankers": self.rerankers,
                 "trainers": self.trainers}
        return {kind: sorted(items) for kind, items in kinds.items() if items}


METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    """Publish ``method``'s parts in the core registries and the method in :data:`METHODS`."""
    from vireid.data.aux_store import POLICIES

    unknown = sorted(set(method.requires_aux) - {"keypoints", "parsing", "captions"})
    if unknown or method.aux_policy not in POLICIES:
        raise ValueError(f"method {method.name}: requires_aux {list(method.requires_aux)} must be data.aux keys "
                         f"(keypoints, parsing, captions) and aux_policy one of {POLICIES}, got {method.aux_policy!r}")
    from vireid.data.augment import AUGMENTATIONS
    from vireid.data.batch_augment import BATCH_AUGMENTS
    from vireid.data.datasets.registry import DATASETS
    from vireid.losses.registry import LOSSES
    from vireid.models.registry import MODELS

    for registry, items in ((MODELS, method.models), (LOSSES, method.losses),
                            (BATCH_AUGMENTS, method.batch_augments), (AUGMENTATIONS, method.augmentations),
                            (DATASETS, method.datasets), (TRAINERS, method.trainers)):
        for name, obj in items.items():
            registry.register(name, obj)
    from vireid.rerank.registry import register_reranker

    for name, (stream, recorded) in method.rerankers.items():
        register_reranker(name, stream, recorded=recorded)
    METHODS.register(method.name, method)
    return method


def unregister_method(name: str) -> None:
    """Remove a method and its parts (tests registering temporary methods)."""
    from vireid.data.augment import AUGMENTATIONS
    from vireid.data.batch_augment import BATCH_AUGMENTS
    from vireid.data.datasets.registry import DATASETS
    from vireid.losses.registry import LOSSES
    from vireid.models.registry import MODELS

    method = METHODS.get(name)
    for registry, items in ((MODELS, method.models), (LOSSES, method.losses),
                            (BATCH_AUGMENTS, method.batch_augments), (AUGMENTATIONS, method.augmentations),
                            (DATASETS, method.datasets), (TRAINERS, method.trainers)):
        for part in items:
            registry.unregister(part)
    from vireid.rerank.registry import unregister_reranker

    for part in method.rerankers:
        unregister_reranker(part)
    METHODS.unregister(name)


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method as a plain record (``vireid methods --json``)."""
    out = []
    for name in METHODS.names():
        m = METHODS.get(name)
        out.append({"name": m.name, "paper": m.paper, "seed": m.seed, "reference": m.reference,
                    "recipes": list(m.recipes), "status": m.status, "parts": m.parts(),
                    "commands": list(m.commands), "requires_aux": list(m.requires_aux),
                    "aux_policy": m.aux_policy})
    return out
