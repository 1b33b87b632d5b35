"""Dataset readers with their official protocols: SYSU-MM01, RegDB, LLCM, manifest files, and the
single-modality (Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP), occluded/partial (Occluded-DukeMTMC,
Occluded-REID, Partial-REID, Partial-iLIDS, P-ETHZ) and text-to-image (CUHK-PEDES, ICFG-PEDES,
RSTPReid) sets. Each class declares its ``modalities``.

``build_dataset(name, root, **options)`` reads a dataset; its ``train`` samples carry raw identity
ids, its ``test`` samples every image the protocol may draw from, and ``eval_plan(**settings)``
returns the official :class:`~vireid.evaluation.protocols.EvalPlan`. Features files (dataset-relative
paths only) go through :func:`plan_for_relpaths`.
"""

from vireid.data.datasets.base import ReIDDataset
from vireid.data.datasets.cuhk03 import CUHK03NP
from vireid.data.datasets.holdout import PETHZ, OccludedREID, PartialILIDS, PartialREID
from vireid.data.datasets.llcm import LLCM
from vireid.data.datasets.manifest import ManifestDataset
from vireid.data.datasets.market_style import DukeMTMCReID, Market1501, OccludedDuke
from vireid.data.datasets.msmt17 import MSMT17
from vireid.data.datasets.regdb import RegDB
from vireid.data.datasets.registry import (DATASETS, build_dataset, dataset_names, get_dataset_class,
                                           plan_for_relpaths, samples_from_relpaths)
from vireid.data.datasets.sysu import SYSUMM01
from vireid.data.datasets.text_reid import CUHKPEDES, ICFGPEDES, RSTPReid

__all__ = ["CUHK03NP", "CUHKPEDES", "DATASETS", "DukeMTMCReID", "ICFGPEDES", "LLCM", "MSMT17", "ManifestDataset",
           "Market1501", "OccludedDuke", "OccludedREID", "PETHZ", "PartialILIDS", "PartialREID", "RSTPReid", "RegDB",
           "ReIDDataset", "SYSUMM01", "build_dataset", "dataset_names", "get_dataset_class", "plan_for_relpaths",
           "samples_from_relpaths"]
