"""Streamed re-ranking: blocks of query rows straight into the evaluator, equal to the unstreamed path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vireid.rerank.original_distance as od
from vireid.evaluation.metrics import evaluate_distance_chunks, evaluate_distances
from vireid.rerank import (
    build_reranker,
    k_reciprocal_rerank,
    k_reciprocal_stream,
    registry,
    sim_rerank,
    sim_stream,
)


def _problem(nq: int, ng: int, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, max(2, (nq + ng) // 6), nq + ng)
    x = rng.normal(size=(ids.max() + 1, dim))[ids] + 0.5 * rng.normal(size=(nq + ng, dim))
    x[:nq] += 0.3  # a modality offset
    cams = np.concatenate([rng.choice([3, 6], nq), rng.choice([1, 2, 4, 5], ng)])
    return x[:nq].astype(np.float32), x[nq:].astype(np.float32), ids[:nq], ids[nq:], cams[:nq], cams[nq:]


def _same_metrics(a, b) -> None:
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert (a.mAP, a.mINP, a.num_valid, a.num_queries) == (b.mAP, b.mINP, b.num_valid, b.num_queries)


@pytest.mark.parametrize("query_chunk", [1, 3, 7, 64])
def test_k_reciprocal_stream_equals_the_full_matrix_bit_for_bit(monkeypatch, query_chunk):
    monkeypatch.setattr(od, "QUERY_BLOCK", 8)  # several fixed GEMM blocks at this small size
    qf, gf, qp, gp, qc, gc = _problem(29, 90)
    full = k_reciprocal_rerank(qf, gf, chunk_size=16)
    blocks = list(k_reciprocal_stream(qf, gf, chunk_size=16, query_chunk=query_chunk))
    assert [r.start for r, _ in blocks] == list(range(0, 29, query_chunk))
    assert all(b.dtype == torch.float32 and b.shape == (r.stop - r.start, 90) for r, b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in blocks]), full)
    # and the metrics of the stream equal those of the whole matrix, exactly
    for cmc_mode, exclusion in (("identity", "sysu-same-location"), ("image", "none")):
        want = evaluate_distances(full, qp, gp, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion)
        got = evaluate_distance_chunks(k_reciprocal_stream(qf, gf, chunk_size=16, query_chunk=query_chunk),
                                       qp, gp, qc, gc, cmc_mode=cmc_mode, exclusion=exclusion)
        _same_metrics(got, want)


@pytest.mark.parametrize("chunk", [1, 4, 11])
def test_sim_stream_equals_the_full_matrix_bit_for_bit(monkeypatch, chunk):
    qf, gf, qp, gp, qc, gc = _problem(23, 40, seed=1)
    full = sim_rerank(qf, gf)
    blocks = list(sim_stream(qf, gf, chunk_size=chunk))
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in blocks]), full)
    want = evaluate_distances(full, qp, gp, qc, gc, exclusion="sysu-same-location")
    got = evaluate_distance_chunks(iter(blocks), qp, gp, qc, gc, exclusion="sysu-same-location")
    _same_metrics(got, want)


def test_evaluate_plan_streams_and_never_builds_the_matrix(monkeypatch):
    from vireid.evaluation.protocols import EvalPlan, Trial, evaluate_plan
    from vireid.types import Modality, Sample

    qf, gf, qp, gp, qc, gc = _problem(20, 50, seed=2)
    feats = np.concatenate([qf, gf])
    samples = [Sample(f"{i}.jpg", int(p), int(c), Modality.INFRARED if i < 20 else Modality.VISIBLE)
               for i, (p, c) in enumerate(zip(np.concatenate([qp, gp]), np.concatenate([qc, gc])))]
    plan = EvalPlan("toy", {}, [Trial(np.arange(20), np.arange(20, 70))], "identity", "sysu-same-location")
    reranker = build_reranker("k-reciprocal", query_chunk=3)
    full = reranker(qf, gf)
    monkeypatch.setattr(registry.Reranker, "__call__", lambda *a: pytest.fail("the full matrix was built"))
    got = evaluate_plan(plan, samples, feats, distance_fn=reranker)
    want = evaluate_distances(full, qp, gp, qc, gc, exclusion="sysu-same-location")
    assert got["trials"][0]["mAP"] == 100 * want.mAP and got["trials"][0]["rank1"] == 100 * want.cmc[0]
    assert got["settings"]["distance_fn"] == "k_reciprocal_rerank"


def test_a_registered_refiner_plugs_into_the_stream():
    """The contract a later test-time refiner (NFormer) uses: a stream function and its recorded keys."""

    def scaled_stream(qf, gf, *, scale: float = 2.0, query_chunk: int = 4):
        d = torch.cdist(torch.as_tensor(qf, dtype=torch.float64), torch.as_tensor(gf, dtype=torch.float64))
        for s in range(0, d.shape[0], query_chunk):
            yield slice(s, min(s + query_chunk, d.shape[0])), scale * d[s : s + query_chunk]

    registry.register_reranker("scaled", scaled_stream, recorded=("scale",))
    try:
        _check_scaled(scaled_stream)
    finally:
        registry.unregister_reranker("scaled")
    assert "scaled" not in registry.rerank_methods()
    assert {"none", "k-reciprocal", "sim"} <= set(registry.rerank_methods())


def _check_scaled(scaled_stream):
    assert "scaled" in registry.rerank_methods() and registry.default_params("scaled") == {"scale": 2.0}
    reranker = build_reranker("scaled", scale=3.0)
    qf, gf, qp, gp, qc, gc = _problem(9, 15, seed=3)
    got = evaluate_distance_chunks(reranker.stream(qf, gf), qp, gp, qc, gc)
    want = evaluate_distances(torch.cdist(torch.as_tensor(qf).double(), torch.as_tensor(gf).double()), qp, gp, qc, gc)
    assert got.mAP == pytest.approx(want.mAP, abs=1e-12)
    with pytest.raises(Exception, match="already registered"):
        registry.register_reranker("scaled", scaled_stream, recorded=())


def test_stream_evaluator_rejects_gaps_and_short_streams():
    d = np.random.default_rng(0).random((6, 5))
    pids, cams = np.arange(6) % 3, np.ones(6, dtype=int)
    with pytest.raises(ValueError, match="rows 3:6 has shape"):
        evaluate_distance_chunks([(slice(0, 2), d[:2]), (slice(3, 6), d[3:])], pids, pids[:5], cams, cams[:5] + 1)
    with pytest.raises(ValueError, match="ended after 2 of 6"):
        evaluate_distance_chunks([(slice(0, 2), d[:2])], pids, pids[:5], cams, cams[:5] + 1)
