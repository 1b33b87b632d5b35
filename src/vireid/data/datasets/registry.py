"""Dataset registry (filled by explicit imports) and the features-file entry points.

- :func:`build_dataset` reads a dataset root.
- :func:`samples_from_relpaths` parses identity/camera/modality from dataset-relative paths alone.
- :func:`plan_for_relpaths` builds the official plan for the images a features file holds: the
  plan's indices point at the file's rows; paths outside the protocol's test images and
  protocol images missing from the file are errors naming the first offenders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vireid.data.datasets.base import ReIDDataset, check_options
from vireid.data.datasets.common import first
from vireid.data.datasets.cuhk03 import CUHK03NP
from vireid.data.datasets.holdout import PETHZ, OccludedREID, PartialILIDS, PartialREID
from vireid.data.datasets.llcm import LLCM
from vireid.data.datasets.manifest import ManifestDataset
from vireid.data.datasets.market_style import DukeMTMCReID, Market1501, OccludedDuke
from vireid.data.datasets.msmt17 import MSMT17
from vireid.data.datasets.regdb import RegDB
from vireid.data.datasets.sysu import SYSUMM01
from vireid.data.datasets.text_reid import CUHKPEDES, ICFGPEDES, RSTPReid
from vireid.types import Sample
from vireid.errors import FeaturesError
from vireid.registry import Registry
from vireid.evaluation.features import validate_paths
from vireid.evaluation.protocols import EvalPlan

DATASETS: Registry[type[ReIDDataset]] = Registry("dataset")
for _cls in (SYSUMM01, RegDB, LLCM, ManifestDataset,
             # single-modality, occluded, partial and text-to-image sets (PROTOCOLS.md, last section)
             Market1501, DukeMTMCReID, MSMT17, CUHK03NP, OccludedDuke, OccludedREID, PartialREID, PartialILIDS,
             PETHZ, CUHKPEDES, ICFGPEDES, RSTPReid):
    DATASETS.register(_cls.name, _cls)


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return DATASETS.names()


def get_dataset_class(name: str) -> type[ReIDDataset]:
    """The reader class of ``name``; :class:`ConfigError` listing the valid names otherwise."""
    return DATASETS.get(name)


def build_dataset(name: str, root: str | Path, **options: Any) -> ReIDDataset:
    """Read dataset ``name`` under ``root`` (options: ``trial`` for regdb, ``image_root`` for manifest)."""
    cls = get_dataset_class(name)
    check_options(cls.load, options, f"dataset {name!r}")
    return cls.load(str(root), **options)


def samples_from_relpaths(name: str, relpaths: Sequence[str], root: str = "") -> list[Sample]:
    """Samples parsed from dataset-relative paths (identity, camera, modality from path tokens)."""
    cls = get_dataset_class(name)
    return [cls.parse_relpath(p, str(root)) for p in relpaths]


def plan_for_relpaths(name: str, relpaths: Sequence[str], root: str = "", *, options: dict[str, Any] | None = None,
                      **settings: Any) -> tuple[EvalPlan, list[Sample]]:
    """The official plan over the images named by ``relpaths`` (a features file's rows).

    Returns ``(plan, samples)``: ``samples[i]`` describes ``relpaths[i]`` and the plan's indices
    point into ``relpaths``. The reference is the dataset under ``root`` when given, else the
    vendored split files (SYSU-MM01: the official table's image counts). Raises
    :class:`FeaturesError` for paths that are not test images of the protocol and for protocol
    images the list lacks, :class:`DatasetError`/:class:`ConfigError` for bad data or settings.
    """
    cls = get_dataset_class(name)
    paths = validate_paths(list(relpaths), "features paths")
    options = dict(options or {})
    check_options(cls.load, options, f"dataset {name!r}")
    check_options(cls.eval_plan, settings, f"{name} protocol")
    ref = cls.for_relpaths(paths, str(root), **options)
    plan = ref.eval_plan(**settings)
    index = {ref.sample_key(s): i for i, s in enumerate(ref.test)}
    mapping = np.full(len(ref.test), -1, dtype=np.int64)
    samples: list[Sample] = []
    unknown = []
    for row, p in enumerate(paths):
        i = index.get(ref.key_for_relpath(p))
        if i is None:
            unknown.append(p)
            continue
        mapping[i] = row
        s = ref.test[i]
        samples.append(Sample(p, s.pid, s.camid, s.modality, ref.root))
    where = f"under {root}" if root else "in vireid's vendored split files"
    if unknown:
        raise FeaturesError(f"{len(unknown)} of {len(paths)} paths are not test images of the {name} protocol "
                            f"({where}): {first(unknown)}")
    used = plan.used_indices()
    lacking = [ref.test[i].relpath for i in used if mapping[i] < 0]
    if lacking:
        raise FeaturesError(f"the features lack {len(lacking)} of the {len(used)} images the {name} protocol uses "
                            f"({where}): {first(lacking)}")
    return plan.remap(mapping), samples
