"""Shared reference implementations for the evaluation tests (written plainly, independent of vireid)."""

from __future__ import annotations

import numpy as np
import pytest


def _loop_reference(distmat, q_pids, g_pids, q_camids, g_camids, exclusion, cmc_mode, max_rank=20):
    """eval_sysu / eval_regdb / eval_llcm of mangye16 and DEEN, written plainly (stable sort)."""
    indices = np.argsort(distmat, axis=1, kind="stable")
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = indices[i]
        if exclusion == "sysu-same-location":
            remove = (q_camids[i] == 3) & (g_camids[order] == 2)
        elif exclusion == "same-id-same-camera":
            remove = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        else:
            remove = np.zeros(len(order), bool)
        labels = g_pids[order][~remove]
        raw = (labels == q_pids[i]).astype(np.int32)
        if not raw.any():
            continue
        if cmc_mode == "identity":
            first_index = np.unique(labels, return_index=True)[1]
            dedup = np.array([labels[j] for j in sorted(first_index)])
            cmc = (dedup == q_pids[i]).astype(np.int32).cumsum()
        else:
            cmc = raw.cumsum()
        cmc = np.minimum(cmc, 1)[:max_rank]
        cmcs.append(np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])]))
        pos = np.where(raw == 1)[0]
        inps.append(raw.cumsum()[pos.max()] / (pos.max() + 1.0))
        precision = raw.cumsum() / np.arange(1.0, len(raw) + 1) * raw
        aps.append(precision.sum() / raw.sum())
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(aps)


@pytest.fixture
def loop_reference():
    """The public per-query loop (mangye16 eval_sysu / eval_regdb, DEEN eval_llcm), stable sort."""
    return _loop_reference
