"""Single-modality P x K sampling and the sampler choice by declared modalities."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.data.datasets import DATASETS
from vireid.data.identity_sampler import IdentitySampler, sampler_kind
from vireid.types import Modality


def test_batches_hold_p_distinct_ids_times_k_and_are_seeded():
    pids = [i // 3 for i in range(30)] + [10]  # ids 0..9 with 3 images, id 10 with one
    s = IdentitySampler(pids, num_ids=4, num_instances=2, seed=5, batches_per_epoch=20)
    plan = s.plan(0)
    assert len(plan) == 20 and all(len(b) == 8 for b in plan)
    for b in plan:
        ids = [pids[i] for i in b]
        assert len(set(ids)) == 4 and all(ids.count(p) == 2 for p in set(ids))
    assert plan == IdentitySampler(pids, 4, 2, seed=5, batches_per_epoch=20).plan(0) != s.plan(1)
    counts = np.bincount([pids[i] for b in plan for i in b[::2]], minlength=11)
    assert counts.max() - counts.min() <= 2  # rounds of permutations: every id drawn about equally
    with pytest.raises(ValueError, match="at least num_ids=12"):
        IdentitySampler(pids, 12, 2)


def test_sampler_kind_reads_the_declared_modalities():
    assert sampler_kind(DATASETS.get("sysu-mm01").modalities) == "cross-modality"
    assert sampler_kind(DATASETS.get("market1501").modalities) == "identity"
    assert sampler_kind(DATASETS.get("cuhk-pedes").modalities) == "identity"
    with pytest.raises(ValueError, match="no image modality"):
        sampler_kind([Modality.TEXT])
