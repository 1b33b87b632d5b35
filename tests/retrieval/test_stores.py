"""FAISS stores: exact re-scoring of IVF-PQ candidates (the top k*r by PQ score re-ranked by exact
inner products with the stored vectors), checked against numpy on the same candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vireid.errors import ConfigError
from vireid.retrieval.index import GalleryIndex, GalleryRecord
from vireid.retrieval.preprocess import Preprocessing
from vireid.retrieval.stores import FaissStore

N, D, NLIST, PQ_M = 1000, 32, 16, 4  # ivfpq training needs 39 * nlist = 624 vectors


def _clustered(seed: int, n: int, ids: int = 100, spread: float = 1.0) -> np.ndarray:
    """Unit vectors around ``ids`` centres: many near ties, where 4-byte PQ codes mis-rank."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, D)).astype(np.float32)
    x = centres[rng.integers(0, ids, n)] + spread * rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pair(x: np.ndarray, r: int, dtype: str = "float32") -> tuple[FaissStore, FaissStore]:
    """The same IVF-PQ index twice, without and with re-scoring (same training, so the same PQ candidates)."""
    plain = FaissStore("ivfpq", D, nlist=NLIST, pq_m=PQ_M, nprobe=NLIST)
    plain.add(np.arange(1, len(x) + 1), x)
    rescored = FaissStore("ivfpq", D, nlist=NLIST, pq_m=PQ_M, nprobe=NLIST, rescore=r, rescore_dtype=dtype)
    rescored.add(np.arange(1, len(x) + 1), x)
    return plain, rescored


def test_rescore_ranks_the_pq_candidates_by_exact_inner_products():
    x, q = _clustered(0, N), _clustered(1, 20)
    plain, rescored = _pair(x, r=5)
    k = 10
    _, candidates = plain.search(q, k * 5)  # (Q, 50): what PQ fetches
    scores, ids = rescored.search(q, k)  # (Q, 10)
    for qi in range(len(q)):
        exact = x[candidates[qi] - 1] @ q[qi]  # (50,) independent re-scoring in numpy
        order = np.argsort(-exact, kind="stable")[:k]
        assert ids[qi].tolist() == candidates[qi][order].tolist()
        np.testing.assert_allclose(scores[qi], exact[order], atol=1e-6)
        np.testing.assert_allclose(scores[qi], x[ids[qi] - 1] @ q[qi], atol=1e-6)  # the returned scores are exact


def test_rescore_raises_recall_at_10_against_exact_search():
    x, q = _clustered(2, N), _clustered(3, 50)
    plain, rescored = _pair(x, r=8)
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10] + 1  # (Q, 10) exact top-10 ids

    def recall(ids: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]))

    r_plain, r_rescored = recall(plain.search(q, 10)[1]), recall(rescored.search(q, 10)[1])
    assert r_plain < 0.9  # 4-byte codes of 32-d vectors mis-rank near neighbours...
    assert r_rescored > r_plain + 0.1  # ...and re-scoring 80 candidates recovers most of the exact top-10
    assert r_rescored >= 0.95


def test_float16_rescore_matches_float32_within_half_precision():
    x, q = _clustered(4, N), _clustered(5, 10)
    _, r32 = _pair(x, r=4)
    _, r16 = _pair(x, r=4, dtype="float16")
    s32, i32 = r32.search(q, 10)
    s16, i16 = r16.search(q, 10)
    np.testing.assert_allclose(s16, s32, atol=2e-3)  # float16 keeps ~3 decimal digits of a unit vector
    assert np.mean(i16 == i32) > 0.9  # only near ties may swap


def test_rescore_respects_filters_deletes_and_survives_save_and_load(tmp_path):
    x, q = _clustered(6, N), _clustered(7, 5)
    records = [GalleryRecord(f"/g/{i}.jpg", f"cam{i % 2}", "visible") for i in range(N)]
    g = GalleryIndex.create(tmp_path / "g", fingerprint="m", model_name="agw", preprocessing=Preprocessing(64, 32),
                            records=records, vectors=x, kind="ivfpq", nlist=NLIST, pq_m=PQ_M, nprobe=NLIST,
                            rescore=4)
    info = json.loads((tmp_path / "g" / "index.json").read_text())
    assert info["store"]["rescore"] == 4 and (tmp_path / "g" / info["store"]["exact_vectors"]).is_file()
    hits = g.search(q, model_fingerprint="m", k=10, camera="cam1")
    for qi, row in enumerate(hits):
        assert len(row) == 10 and all(h.camera == "cam1" for h in row)
        np.testing.assert_allclose([h.score for h in row], x[[h.id - 1 for h in row]] @ q[qi], atol=1e-6)
        assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)
    top = [row[0].id for row in hits]
    assert g.delete(top) == len(set(top))
    reopened = GalleryIndex.open(tmp_path / "g")
    assert reopened.store.params["rescore"] == 4 and reopened.store.exact.ntotal == N - len(set(top))
    again = reopened.search(q, model_fingerprint="m", k=10, camera="cam1")
    assert all(h.id not in top for row in again for h in row)
    for qi, row in enumerate(again):
        np.testing.assert_allclose([h.score for h in row], x[[h.id - 1 for h in row]] @ q[qi], atol=1e-6)
    names = sorted(p.name for p in (tmp_path / "g").iterdir())  # the old generation's files are gone
    gen = reopened.info["generation"]
    assert names == sorted([f"meta.{gen}.sqlite", f"vectors.{gen}.faiss", f"vectors.{gen}.exact.faiss",
                            "index.json", "uploads"])


def test_rescore_fewer_candidates_than_k_pads_with_missing_hits():
    x = _clustered(8, N)
    _, rescored = _pair(x, r=2)
    allowed = np.array([3, 7, 11])
    scores, ids = rescored.search(x[:1], 5, allowed=allowed)
    assert sorted(ids[0, :3].tolist()) == [3, 7, 11] and ids[0, 3:].tolist() == [-1, -1]
    assert np.isneginf(scores[0, 3:]).all()


@pytest.mark.parametrize("kind,kw,message", [
    ("flat", {"rescore": 4}, "rescore applies to ivfpq only"),
    ("hnsw", {"rescore": 4}, "rescore applies to ivfpq only"),
    ("ivfpq", {"rescore": 1}, "rescore must be 0 (off) or a candidate factor >= 2, got 1"),
    ("ivfpq", {"rescore": 4, "rescore_dtype": "int8"}, "rescore_dtype must be one of float32, float16, got 'int8'"),
])
def test_bad_rescore_settings_are_config_errors(kind, kw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FaissStore(kind, D, pq_m=PQ_M, **kw)
