"""Dataset readers with their official protocols: SYSU-MM01, RegDB, LLCM and manifest files.

``build_dataset(name, root, **options)`` reads a dataset; its ``train`` samples carry raw identity
ids, its ``test`` samples every image the protocol may draw from, and ``eval_plan(**settings)``
returns the official :class:`~vireid.evaluation.protocols.EvalPlan`. Features files (dataset-relative
paths only) go through :func:`plan_for_relpaths`.
"""

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.llcm import LLCM
from vireid.data.datasets.manifest import ManifestDataset
from vireid.data.datasets.regdb import RegDB
from vireid.data.datasets.registry import (DATASETS, build_dataset, dataset_names, get_dataset_class,
                                           plan_for_relpaths, samples_from_relpaths)
from vireid.data.datasets.sysu import SYSUMM01

__all__ = ["DATASETS", "LLCM", "ManifestDataset", "RegDB", "ReIDDataset", "SYSUMM01", "build_dataset",
           "dataset_names", "get_dataset_class", "plan_for_relpaths", "samples_from_relpaths"]
