"""Vector stores behind a gallery index: FAISS in-process (exact, IVF-PQ, HNSW) or Milvus.

One small interface (:class:`VectorStore`): ``add(ids, vectors)``, ``remove(ids)``,
``search(queries, k, allowed)`` by inner product on L2-normalised vectors (= cosine similarity),
``save``/``load``. The gallery index keeps the metadata in SQLite and joins it to the ids returned.

* ``flat``: ``IndexFlatIP``, exact (the default, and the reference the others are measured against);
* ``ivfpq``: ``IndexIVFPQ`` (inverted lists + product quantisation; trained on the first vectors
  added, so it needs at least ``39 * nlist`` of them), for millions of images; with ``rescore=r``
  it fetches the top ``k * r`` by PQ score and re-ranks them by exact inner products with the
  stored vectors (float32: exact; float16: half the memory), returning the top ``k``;
* ``hnsw``: ``IndexHNSWFlat`` (graph search); FAISS cannot remove from it, so deleted ids stay as
  tombstones and are filtered out of every search by an id selector.
* ``milvus``: a Milvus collection through ``pymilvus`` (``milvus-lite`` when the URI is a local
  ``.db`` file, which runs in-process; a server URI for a distributed deployment), exact ``FLAT`` index.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vireid.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["FaissStore", "MilvusStore", "VectorStore", "RESCORE_DTYPES", "STORE_KINDS", "make_store", "load_store"]

STORE_KINDS = ("flat", "ivfpq", "hnsw", "milvus")
RESCORE_DTYPES = ("float32", "float16")


class VectorStore:
    """Interface of a vector store of L2-normalised float32 vectors keyed by int64 ids."""

    kind: str
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def remove(self, ids: np.ndarray) -> None:
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) queries -> (scores (Q, k), ids (Q, k)); missing hits have id -1. ``allowed``: ids to consider."""
        raise NotImplementedError

    def save(self, path: Path) -> dict[str, Any]:
        """Persist to ``path`` (a new file for FAISS); returns the settings to record in the index."""
        raise NotImplementedError


class FaissStore(VectorStore):
    """FAISS index wrapped in ``IndexIDMap2`` (our ids, not positions)."""

    def __init__(self, kind: str, dim: int, *, index: Any = None, exact: Any = None, nlist: int = 1024,
                 pq_m: int = 64, pq_bits: int = 8, hnsw_m: int = 32, nprobe: int = 16, ef_search: int = 128,
                 rescore: int = 0, rescore_dtype: str = "float32") -> None:
        import faiss

        self.kind, self.dim = kind, int(dim)
        if rescore and kind != "ivfpq":
            raise ConfigError(f"index {kind}: rescore applies to ivfpq only (flat is exact, hnsw stores full vectors)")
        if rescore < 0 or rescore == 1:
            raise ConfigError(f"index ivfpq: rescore must be 0 (off) or a candidate factor >= 2, got {rescore}")
        if rescore_dtype not in RESCORE_DTYPES:
            raise ConfigError(f"index ivfpq: rescore_dtype must be one of {', '.join(RESCORE_DTYPES)}, "
                              f"got {rescore_dtype!r}")
        self.params = {"nlist": nlist, "pq_m": pq_m, "pq_bits": pq_bits, "hnsw_m": hnsw_m, "nprobe": nprobe,
                       "ef_search": ef_search, "rescore": int(rescore), "rescore_dtype": rescore_dtype}
        # the full vectors for re-scoring, keyed by our ids: (N, D) float32 or float16 codes
        self.exact = exact if exact is not None or not rescore else faiss.IndexIDMap2(
            faiss.IndexFlatIP(self.dim) if rescore_dtype == "float32" else
            faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT))
        if index is not None:
            self.index = index
            return
        if kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        elif kind == "ivfpq":
            if self.dim % pq_m:
                raise ConfigError(f"index ivfpq: pq_m={pq_m} must divide the embedding size {self.dim}")
            inner = faiss.IndexIVFPQ(faiss.IndexFlatIP(self.dim), self.dim, nlist, pq_m, pq_bits,
                                     faiss.METRIC_INNER_PRODUCT)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
        else:
            raise ConfigError(f"unknown FAISS index kind {kind!r}; valid: flat, ivfpq, hnsw")
        self.index = faiss.IndexIDMap2(inner)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, D)
        inner = faiss.downcast_index(self.index.index)
        if not inner.is_trained:
            need = 39 * self.params["nlist"]
            if len(vectors) < need:
                raise ConfigError(f"index ivfpq: training needs at least {need} vectors (39 x nlist="
                                  f"{self.params['nlist']}), got {len(vectors)}; use --kind flat or a smaller nlist")
            inner.train(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)  # (N,)
        self.index.add_with_ids(vectors, ids)
        if self.exact is not None:
            self.exact.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        if self.kind == "hnsw":
            return  # tombstones: the index's metadata no longer lists them, searches filter them out
        import faiss

        selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        self.index.remove_ids(selector)
        if self.exact is not None:
            self.exact.remove_ids(selector)

    def _params(self, selector: Any) -> Any:
        import faiss

        if self.kind == "ivfpq":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.params["nprobe"])
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.params["ef_search"], 1))
        return faiss.SearchParameters(sel=selector)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)  # (Q, D)
        if self.ntotal == 0 or k < 1:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        selector = None if allowed is None else faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        fetch = min(k * max(self.params["rescore"], 1), self.ntotal)
        scores, ids = self.index.search(queries, fetch, params=self._params(selector))  # (Q, fetch) each
        if self.exact is None:
            return scores, ids
        return self._rescore(queries, ids, min(k, self.ntotal))

    def _rescore(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank (Q, C) candidate ids by the inner product of each query with its stored vectors."""
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for qi, row in enumerate(candidates):
            row = row[row >= 0]  # (C',) fewer than C when the filter leaves fewer candidates
            if len(row) == 0:
                continue
            exact = self.exact.reconstruct_batch(row) @ queries[qi]  # (C', D) @ (D,) -> (C',)
            order = np.argsort(-exact, kind="stable")[:k]  # ties keep the PQ order
            scores[qi, :len(order)], ids[qi, :len(order)] = exact[order], row[order]
        return scores, ids  # (Q, k) each; missing hits -inf / -1

    def save(self, path: Path) -> dict[str, Any]:
        import faiss

        faiss.write_index(self.index, str(path))
        settings = {"kind": self.kind, **self.params}
        if self.exact is not None:  # beside the index: vectors.<gen>.faiss -> vectors.<gen>.exact.faiss
            exact = path.with_name(f"{path.stem}.exact{path.suffix}")
            faiss.write_index(self.exact, str(exact))
            settings["exact_vectors"] = exact.name
        return settings

    @classmethod
    def load(cls, path: Path, settings: dict[str, Any]) -> "FaissStore":
        import faiss

        index = faiss.read_index(str(path))
        exact = None
        if settings.get("exact_vectors"):
            exact = faiss.read_index(str(path.parent / settings["exact_vectors"]))
        kw = {k: v for k, v in settings.items() if k not in ("kind", "dim", "exact_vectors")}
        return cls(settings["kind"], index.d, index=index, exact=exact, **kw)


class MilvusStore(VectorStore):
    """A Milvus collection (``id`` INT64 primary key, ``vector`` FLOAT_VECTOR), inner-product metric.

    ``uri``: a local file ending in ``.db`` runs milvus-lite in this process; ``http://host:19530``
    (or a Zilliz URI) talks to a Milvus server or cluster. Writes are durable in Milvus itself.
    """

    kind = "milvus"

    def __init__(self, uri: str, dim: int, collection: str = "vireid_gallery", *, create: bool = False) -> None:
        from pymilvus import DataType, MilvusClient

        self.uri, self.dim, self.collection = str(uri), int(dim), collection
        self.client = MilvusClient(self.uri)
        if create:
            if self.client.has_collection(collection):
                self.client.drop_collection(collection)
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            index_params = self.client.prepare_index_params()
            index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
            self.client.create_collection(collection, schema=schema, index_params=index_params,
                                          consistency_level="Strong")
        elif not self.client.has_collection(collection):
            raise ConfigError(f"Milvus at {self.uri} has no collection {collection!r}")

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        rows = [{"id": int(i), "vector": v.astype(np.float32).tolist()} for i, v in zip(ids, vectors)]
        for start in range(0, len(rows), 2000):
            self.client.insert(self.collection, rows[start:start + 2000])

    def remove(self, ids: np.ndarray) -> None:
        self.client.delete(self.collection, ids=[int(i) for i in ids])

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        scores = np.full((n, k), -np.inf, np.float32)
        ids = np.full((n, k), -1, np.int64)
        if k < 1 or (allowed is not None and len(allowed) == 0):
            return scores[:, :0], ids[:, :0]
        expr = "" if allowed is None else f"id in [{', '.join(str(int(i)) for i in allowed)}]"
        result = self.client.search(self.collection, data=[q.astype(np.float32).tolist() for q in queries],
                                    limit=k, filter=expr, search_params={"metric_type": "IP"},
                                    output_fields=["id"])
        for qi, hits in enumerate(result):
            for j, hit in enumerate(hits):
                scores[qi, j], ids[qi, j] = hit["distance"], hit["id"]
        found = max((len(h) for h in result), default=0)
        return scores[:, :found], ids[:, :found]

    def save(self, path: Path) -> dict[str, Any]:
        self.client.flush(self.collection)
        return {"kind": "milvus", "uri": self.uri, "collection": self.collection}


def make_store(kind: str, dim: int, *, milvus_uri: str | None = None, **params: Any) -> VectorStore:
    if kind not in STORE_KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; valid: {', '.join(STORE_KINDS)}")
    if kind == "milvus":
        if not milvus_uri:
            raise ConfigError("index kind milvus needs --milvus-uri (a local .db file for milvus-lite, or a server URI)")
        return MilvusStore(milvus_uri, dim, create=True)
    return FaissStore(kind, dim, **params)


def load_store(path: Path | None, settings: dict[str, Any], dim: int) -> VectorStore:
    if settings["kind"] == "milvus":
        return MilvusStore(settings["uri"], dim, settings["collection"])
    assert path is not None
    return FaissStore.load(path, settings)
