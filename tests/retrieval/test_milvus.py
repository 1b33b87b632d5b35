"""The Milvus backend (milvus-lite, in-process) gives the same top-k as FAISS exact search."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.retrieval.index import GalleryIndex, GalleryRecord
from vireid.retrieval.preprocess import Preprocessing
from vireid.retrieval.stores import FaissStore, MilvusStore


@pytest.mark.slow
def test_milvus_lite_matches_faiss_flat_and_supports_the_index_interface(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:10] + 0.3 * rng.standard_normal((10, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = np.arange(100, 500, dtype=np.int64)
    faiss_store, milvus = FaissStore("flat", 32), MilvusStore(str(tmp_path / "m.db"), 32, create=True)
    faiss_store.add(ids, x)
    milvus.add(ids, x)
    allowed = ids[::3]
    for sel in (None, allowed):
        fs, fi = faiss_store.search(q, 10, sel)
        ms, mi = milvus.search(q, 10, sel)
        np.testing.assert_array_equal(mi, fi)
        np.testing.assert_allclose(ms, fs, atol=1e-5)
    # through the gallery index, with a delete
    records = [GalleryRecord(f"/g/{i}.jpg", f"cam{i % 2}", "visible") for i in range(400)]
    index = GalleryIndex.create(tmp_path / "g", fingerprint="m", model_name="agw", kind="milvus",
                                preprocessing=Preprocessing(64, 32), records=records, vectors=x,
                                milvus_uri=str(tmp_path / "g.db"))
    flat = GalleryIndex.create(tmp_path / "f", fingerprint="m", model_name="agw", preprocessing=Preprocessing(64, 32),
                               records=records, vectors=x)
    for gallery in (index, flat):
        gallery.delete([1, 2, 3])
    reopened = GalleryIndex.open(tmp_path / "g")
    got = reopened.search(q, model_fingerprint="m", k=10, camera="cam1")
    want = flat.search(q, model_fingerprint="m", k=10, camera="cam1")
    assert [[h.id for h in row] for row in got] == [[h.id for h in row] for row in want]
    assert all(h.camera == "cam1" and h.id not in (1, 2, 3) for row in got for h in row)
