"""A searchable gallery: vectors in a :class:`~vireid.retrieval.stores.VectorStore`, metadata in SQLite.

Folder layout (``G/``)::

    index.json           format, version, model fingerprint + name, preprocessing, dim, store settings,
                         the current generation's file names, image roots; the commit point of every write
    vectors.<gen>.faiss  FAISS index of that generation (absent for Milvus, whose data lives in Milvus)
    vectors.<gen>.exact.faiss  the full vectors for re-scoring IVF-PQ candidates (only with ``rescore``)
    meta.<gen>.sqlite    table ``gallery``: id, path, camera, modality, timestamp, track_id, identity
    uploads/             images added through the service

Every change (build, add, delete) writes the next generation's files beside the current ones and
then replaces ``index.json`` atomically, so a reader sees the old gallery or the new one, never half.
The index records the fingerprint of the model that embedded it (:func:`vireid.retrieval.export.model_fingerprint`)
and refuses a query embedded by another model.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vireid.errors import VireidError
from vireid.retrieval.preprocess import Preprocessing
from vireid.retrieval.stores import VectorStore, load_store, make_store
from vireid.types import Modality
from vireid.utils.io import atomic_write_json, replace_dir

logger = logging.getLogger(__name__)

__all__ = ["GalleryIndex", "GalleryRecord", "IndexError_", "ModelMismatchError", "SearchHit", "parse_time"]

FORMAT, VERSION = "vireid-gallery-index", 1
_SCHEMA = """CREATE TABLE gallery (id INTEGER PRIMARY KEY, path TEXT NOT NULL, camera TEXT NOT NULL,
             modality TEXT NOT NULL, timestamp REAL, track_id TEXT, identity TEXT)"""
_COLUMNS = ("id", "path", "camera", "modality", "timestamp", "track_id", "identity")


class IndexError_(VireidError, ValueError):
    """A gallery index folder is missing, malformed, or asked for something it does not hold."""


class ModelMismatchError(IndexError_):
    """A query was embedded by another model than the one the gallery was built with."""


def parse_time(value: str | float | int | None, what: str = "timestamp") -> float | None:
    """Unix seconds from a number or an ISO 8601 string (naive = UTC); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise IndexError_(f"{what} {value!r} is neither Unix seconds nor an ISO 8601 date/time") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


@dataclass(frozen=True)
class GalleryRecord:
    """One gallery image: where it is and what is known about it."""

    path: str
    camera: str
    modality: str
    timestamp: float | None = None
    track_id: str | None = None
    identity: str | None = None


@dataclass(frozen=True)
class SearchHit:
    """One ranked gallery entry; ``score`` is the cosine similarity (inner product of unit vectors)."""

    rank: int
    id: int
    score: float
    path: str
    camera: str
    modality: str
    timestamp: float | None
    track_id: str | None
    identity: str | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = (datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat()
                     if self.timestamp is not None else None)
        return d


class GalleryIndex:
    """Open with :meth:`open`, create with :meth:`create`; :meth:`add`, :meth:`delete`, :meth:`search`."""

    def __init__(self, root: Path, info: dict[str, Any], store: VectorStore, db: sqlite3.Connection) -> None:
        self.root, self.info, self.store, self.db = root, info, store, db
        self._lock = threading.RLock()

    # -- properties ----------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self.info["model_fingerprint"]

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_json(self.info["preprocessing"])

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    def __len__(self) -> int:
        with self._lock:  # one SQLite connection shared by the service's threads
            return int(self.db.execute("SELECT COUNT(*) FROM gallery").fetchone()[0])

    # -- creation and loading ------------------------------------------------------------------
    @classmethod
    def create(cls, out: str | Path, *, fingerprint: str, model_name: str, preprocessing: Preprocessing,
               records: Sequence[GalleryRecord], vectors: np.ndarray, kind: str = "flat",
               image_roots: Sequence[str | Path] = (), milvus_uri: str | None = None,
               **store_params: Any) -> "GalleryIndex":
        """Build a new index folder at ``out`` (written in a temporary folder, then renamed onto ``out``)."""
        out = Path(out)
        if len(records) != len(vectors):
            raise IndexError_(f"{len(records)} records but {len(vectors)} vectors")
        if len(vectors) == 0:
            raise IndexError_("the gallery is empty: no images to index")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            store = make_store(kind, vectors.shape[1], milvus_uri=milvus_uri, **store_params)
            info = {"format": FORMAT, "version": VERSION, "model_fingerprint": fingerprint,
                    "model_name": model_name, "preprocessing": preprocessing.to_json(), "dim": int(vectors.shape[1]),
                    "generation": 0, "store": {}, "vectors": None, "metadata": None,
                    "image_roots": sorted({str(Path(r).resolve()) for r in image_roots} | {str(out.resolve() / "uploads")}),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            db = sqlite3.connect(":memory:", check_same_thread=False)
            db.execute(_SCHEMA)
            index = cls(tmp, info, store, db)
            index._insert(records, vectors)
            (tmp / "uploads").mkdir()
            index._commit()
            db.close()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_dir(tmp, out)
        return cls.open(out)

    @classmethod
    def open(cls, root: str | Path) -> "GalleryIndex":
        root = Path(root)
        path = root / "index.json"
        if not path.is_file():
            raise IndexError_(f"{root} is not a gallery index: {path} is missing (build one with vireid index build)")
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise IndexError_(f"{path} is not valid JSON: {exc}") from None
        if info.get("format") != FORMAT or info.get("version") != VERSION:
            raise IndexError_(f"{path} is not a {FORMAT} v{VERSION} file")
        disk = sqlite3.connect(f"file:{root / info['metadata']}?mode=ro", uri=True)
        db = sqlite3.connect(":memory:", check_same_thread=False)
        disk.backup(db)
        disk.close()
        vectors = root / info["vectors"] if info["vectors"] else None
        store = load_store(vectors, info["store"], int(info["dim"]))
        return cls(root, info, store, db)

    def _commit(self) -> None:
        """Write the next generation's files, then point ``index.json`` at them; drop the old files."""
        old = (self.info.get("vectors"), self.info.get("metadata"), (self.info.get("store") or {}).get("exact_vectors"))
        gen = int(self.info["generation"]) + 1
        info = dict(self.info, generation=gen, metadata=f"meta.{gen}.sqlite")
        self.db.commit()  # a backup from a connection with an open write transaction waits forever
        disk = sqlite3.connect(self.root / info["metadata"])
        self.db.backup(disk)
        disk.close()
        if self.store.kind == "milvus":
            info["store"], info["vectors"] = self.store.save(self.root), None
        else:
            info["vectors"] = f"vectors.{gen}.faiss"
            info["store"] = self.store.save(self.root / info["vectors"])
        info["count"] = len(self)
        atomic_write_json(self.root / "index.json", info)
        self.info = info
        for name in old:
            if name and name not in (info["vectors"], info["metadata"], info["store"].get("exact_vectors")):
                (self.root / name).unlink(missing_ok=True)

    # -- changes -------------------------------------------------------------------------------
    def _insert(self, records: Sequence[GalleryRecord], vectors: np.ndarray) -> list[int]:
        start = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM gallery").fetchone()[0]) + 1
        start = max(start, int(self.info.get("next_id", 1)))
        ids = list(range(start, start + len(records)))
        rows = [(i, r.path, str(r.camera), Modality.parse(r.modality).name.lower(), r.timestamp, r.track_id,
                 r.identity) for i, r in zip(ids, records)]
        self.store.add(np.asarray(ids, np.int64), np.asarray(vectors, np.float32))
        self.db.executemany(f"INSERT INTO gallery VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
        self.info["next_id"] = start + len(records)  # ids are never reused (HNSW keeps tombstones)
        return ids

    def _check_model(self, fingerprint: str) -> None:
        if fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"query embedded by model {fingerprint}, but the gallery {self.root} was built with model "
                f"{self.fingerprint} ({self.info.get('model_name')}); embed with the same model or rebuild the index")

    def add(self, records: Sequence[GalleryRecord], vectors: np.ndarray, *, model_fingerprint: str) -> list[int]:
        """Add embedded images; returns their new ids."""
        self._check_model(model_fingerprint)
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(records):
            raise IndexError_(f"expected ({len(records)}, {self.dim}) vectors, got {vectors.shape}")
        with self._lock:
            ids = self._insert(records, vectors)
            self._commit()
        return ids

    def delete(self, ids: Sequence[int]) -> int:
        """Remove the ids present; returns how many were removed."""
        if not ids:
            return 0
        with self._lock:
            present = [i for (i,) in self.db.execute(
                f"SELECT id FROM gallery WHERE id IN ({', '.join('?' * len(ids))})", [int(i) for i in ids])]
            if not present:
                return 0
            self.db.executemany("DELETE FROM gallery WHERE id = ?", [(i,) for i in present])
            self.store.remove(np.asarray(present, np.int64))
            self.info["tombstones"] = int(self.info.get("tombstones", 0)) + (len(present) if self.store.kind == "hnsw" else 0)
            self._commit()
        return len(present)

    # -- queries -------------------------------------------------------------------------------
    def get(self, gallery_id: int) -> GalleryRecord | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM gallery WHERE id = ?", (int(gallery_id),)).fetchone()
        return None if row is None else GalleryRecord(*row[1:])

    def _allowed(self, camera: Sequence[str] | None, modality: str | None, since: float | None,
                 until: float | None) -> np.ndarray | None:
        where, args = [], []
        if camera:
            where.append(f"camera IN ({', '.join('?' * len(camera))})")
            args += [str(c) for c in camera]
        if modality is not None:
            where.append("modality = ?")
            args.append(Modality.parse(modality).name.lower())
        if since is not None:
            where.append("timestamp >= ?")
            args.append(since)
        if until is not None:
            where.append("timestamp <= ?")
            args.append(until)
        if not where and not self.info.get("tombstones"):
            return None
        sql = "SELECT id FROM gallery" + (" WHERE " + " AND ".join(where) if where else "")
        return np.array([i for (i,) in self.db.execute(sql, args)], dtype=np.int64)

    def search(self, queries: np.ndarray, *, model_fingerprint: str, k: int = 10,
               camera: Sequence[str] | str | None = None, modality: str | None = None,
               since: str | float | None = None, until: str | float | None = None) -> list[list[SearchHit]]:
        """Top-``k`` hits of each query (Q, D), best first, restricted by the filters."""
        self._check_model(model_fingerprint)
        queries = np.atleast_2d(np.asarray(queries, np.float32))  # (Q, D)
        if queries.shape[1] != self.dim:
            raise IndexError_(f"queries have {queries.shape[1]} dimensions, the gallery {self.dim}")
        if k < 1:
            raise IndexError_(f"k must be >= 1, got {k}")
        camera = [camera] if isinstance(camera, str) else camera
        with self._lock:
            allowed = self._allowed(camera, modality, parse_time(since, "since"), parse_time(until, "until"))
            if allowed is not None and len(allowed) == 0:
                return [[] for _ in queries]
            scores, ids = self.store.search(queries, k, allowed)  # (Q, k') each
            out = []
            for row_scores, row_ids in zip(scores, ids):
                hits = []
                for s, i in zip(row_scores, row_ids):
                    record = self.get(int(i)) if i >= 0 else None
                    if record is not None:
                        hits.append(SearchHit(len(hits) + 1, int(i), float(s), *asdict(record).values()))
                out.append(hits)
        return out

    def resolve_image(self, gallery_id: int) -> Path | None:
        """The image file of an id, only when it lies under one of the index's image roots."""
        record = self.get(gallery_id)
        if record is None:
            return None
        path = Path(record.path).resolve()
        roots = [Path(r) for r in self.info.get("image_roots", [])] + [(self.root / "uploads").resolve()]
        if not any(path.is_relative_to(r) for r in roots) or not path.is_file():
            return None
        return path
