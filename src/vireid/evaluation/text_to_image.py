"""Text-to-image person retrieval protocol (CUHK-PEDES, Li et al. CVPR'17; ICFG-PEDES; RSTPReid;
PROTOCOLS.md "Single-modality, occluded, partial and text-based re-ID"; MCMA, seeds/002 §6).

Every test caption is a query against every test image (each image once); nothing is removed (no
cameras); all images of the caption's identity are relevant. Features are L2-normalised and
ranked by dot product (the cosine distance ``1 - q.g`` ranks identically). Rank-1/5/10 from the
first true match (image-level CMC), non-interpolated AP, mINP, averaged over the captions that
have a true match. A caption is named ``<image relpath>#<k>`` in features files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vireid.evaluation.exclusion import Exclusion
from vireid.evaluation.metrics import evaluate_features
from vireid.evaluation.protocols import EvalPlan, Trial
from vireid.types import Modality, Sample

CAPTION_SEPARATOR = "#"
RANKS = (1, 5, 10)
PROTOCOL = ("text-to-image: every caption vs every image of the split (each image once), no camera filtering, "
            "all same-identity images relevant, L2-normalised features ranked by dot product, image-level CMC, "
            "non-interpolated AP over captions with a true match")


def text_to_image_plan(dataset: str, samples: Sequence[Sample], settings: dict[str, Any] | None = None) -> EvalPlan:
    """One trial: the :attr:`Modality.TEXT` samples as queries, the image samples as the gallery.

    The plan asks for cosine distance on normalised features (``settings["features"]``); callers
    that score it with :func:`~vireid.evaluation.protocols.evaluate_plan` pass ``distance="cosine"``.
    """
    q = np.array([i for i, s in enumerate(samples) if int(s.modality) == int(Modality.TEXT)], dtype=np.int64)
    g = np.array([i for i, s in enumerate(samples) if int(s.modality) != int(Modality.TEXT)], dtype=np.int64)
    if q.size == 0 or g.size == 0:
        raise ValueError(f"{dataset}: text-to-image plan needs captions and images, got {q.size} and {g.size}")
    info = {"protocol": PROTOCOL, "query": f"{q.size} captions", "gallery": f"{g.size} images",
            "features": "L2-normalised, dot product (cosine distance)"}
    info.update(settings or {})
    return EvalPlan(dataset, info, [Trial(q, g)], cmc_mode="image", exclusion=Exclusion.NONE)


def evaluate_text_to_image(text_features: np.ndarray | torch.Tensor, text_pids: np.ndarray,
                           image_features: np.ndarray | torch.Tensor, image_pids: np.ndarray, *,
                           max_rank: int = 10) -> dict[str, float | int]:
    """R1/R5/R10, mAP, mINP (percent) of captions (nt, D) against images (ni, D).

    Returns also ``num_query``, ``num_gallery`` and ``num_valid`` (captions whose identity has an image).
    """
    nt, ni = len(text_pids), len(image_pids)
    zeros_t, zeros_i = np.zeros(nt, dtype=np.int64), np.zeros(ni, dtype=np.int64)
    result = evaluate_features(text_features, image_features, np.asarray(text_pids), np.asarray(image_pids),
                               zeros_t, zeros_i, distance="cosine", normalize=True, cmc_mode="image",
                               exclusion=Exclusion.NONE, max_rank=min(max_rank, ni))
    out: dict[str, float | int] = {f"rank{k}": 100.0 * result.rank(k) for k in RANKS if k <= len(result.cmc)}
    out.update(mAP=100.0 * result.mAP, mINP=100.0 * result.mINP, num_query=nt, num_gallery=ni,
               num_valid=result.num_valid)
    return out
