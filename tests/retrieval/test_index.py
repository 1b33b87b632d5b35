"""Gallery index: exact scores, known identity first, add/delete, filters, model check, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import vireid
from vireid.errors import ConfigError
from vireid.retrieval.index import GalleryIndex, GalleryRecord, IndexError_, ModelMismatchError, SearchHit


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _records(n, **kw):
    return [GalleryRecord(f"/g/{i}.jpg", f"cam{i % 3}", "visible", timestamp=1000.0 + i, identity=str(i // 2), **kw)
            for i in range(n)]


def test_flat_index_scores_are_exact_inner_products(tmp_path):
    rng = np.random.default_rng(0)
    x, q = _unit(rng, 50, 16), _unit(rng, 3, 16)
    index = GalleryIndex.create(tmp_path / "g", fingerprint="m1", model_name="agw", records=_records(50), vectors=x,
                                preprocessing=_spec())
    hits = index.search(q, model_fingerprint="m1", k=7)
    for qi, row in enumerate(hits):
        expected = np.argsort(-(x @ q[qi]), kind="stable")[:7] + 1  # ids start at 1, in insertion order
        assert [h.id for h in row] == expected.tolist()
        np.testing.assert_allclose([h.score for h in row], np.sort(x @ q[qi])[::-1][:7], atol=1e-5)
        assert [h.rank for h in row] == list(range(1, 8))
    h = hits[0][0]
    assert h.path == f"/g/{h.id - 1}.jpg" and h.camera == f"cam{(h.id - 1) % 3}" and h.modality == "visible"
    assert h.timestamp == 1000.0 + h.id - 1
    assert SearchHit(1, 1, 0.5, "p", "c", "visible", 1000.0, None, None).to_dict()["time"] == "1970-01-01T00:16:40+00:00"


def _spec():
    from vireid.retrieval.preprocess import Preprocessing

    return Preprocessing(height=64, width=32)


def test_filters_add_delete_and_reopen(tmp_path):
    rng = np.random.default_rng(1)
    x = _unit(rng, 30, 8)
    index = GalleryIndex.create(tmp_path / "g", fingerprint="m", model_name="agw", preprocessing=_spec(),
                                records=_records(30), vectors=x)
    q = x[4:5]
    (hits,) = index.search(q, model_fingerprint="m", k=30, camera=["cam1"])
    assert {h.camera for h in hits} == {"cam1"} and len(hits) == 10
    (hits,) = index.search(q, model_fingerprint="m", k=30, since=1010, until="1970-01-01T00:16:59Z")
    assert sorted(h.timestamp for h in hits) == [1000.0 + i for i in range(10, 20)]
    (hits,) = index.search(q, model_fingerprint="m", k=5, modality="infrared")
    assert hits == []
    new_ids = index.add([GalleryRecord("/g/new.jpg", "cam9", "infrared")], -q, model_fingerprint="m")
    assert new_ids == [31]
    (hits,) = index.search(-q, model_fingerprint="m", k=1)
    assert hits[0].id == 31 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.delete([31, 5, 999]) == 2 and len(index) == 29
    reopened = GalleryIndex.open(tmp_path / "g")
    (hits,) = reopened.search(q, model_fingerprint="m", k=30)
    assert 31 not in {h.id for h in hits} and 5 not in {h.id for h in hits} and len(hits) == 29
    assert reopened.add([GalleryRecord("/g/b.jpg", "c", "visible")], q, model_fingerprint="m") == [32]  # no reuse
    files = sorted(p.name for p in (tmp_path / "g").iterdir())
    info = json.loads((tmp_path / "g" / "index.json").read_text())
    assert files == sorted(["index.json", info["metadata"], info["vectors"], "uploads"])  # old generations gone


def test_model_mismatch_and_bad_queries_are_refused(tmp_path):
    x = _unit(np.random.default_rng(2), 5, 8)
    index = GalleryIndex.create(tmp_path / "g", fingerprint="aaaa", model_name="agw", preprocessing=_spec(),
                                records=_records(5), vectors=x)
    with pytest.raises(ModelMismatchError, match="query embedded by model bbbb, but the gallery .* was built "
                                                 "with model aaaa \\(agw\\)"):
        index.search(x[:1], model_fingerprint="bbbb")
    with pytest.raises(ModelMismatchError):
        index.add(_records(1), x[:1], model_fingerprint="bbbb")
    with pytest.raises(IndexError_, match="queries have 4 dimensions, the gallery 8"):
        index.search(x[:1, :4], model_fingerprint="aaaa")
    with pytest.raises(IndexError_, match="neither Unix seconds nor an ISO 8601"):
        index.search(x[:1], model_fingerprint="aaaa", since="yesterday")
    with pytest.raises(IndexError_, match="is not a gallery index"):
        GalleryIndex.open(tmp_path)


def test_failed_build_leaves_the_previous_index(tmp_path):
    x = _unit(np.random.default_rng(3), 5, 8)
    GalleryIndex.create(tmp_path / "g", fingerprint="m", model_name="agw", preprocessing=_spec(),
                        records=_records(5), vectors=x)
    before = (tmp_path / "g" / "index.json").read_text()
    with pytest.raises(ConfigError, match="training needs at least 39936 vectors"):
        GalleryIndex.create(tmp_path / "g", fingerprint="m2", model_name="agw", preprocessing=_spec(),
                            records=_records(5), vectors=x, kind="ivfpq", pq_m=4)
    assert (tmp_path / "g" / "index.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temporary folder left


@pytest.mark.parametrize("kind,params", [("hnsw", {}), ("ivfpq", {"nlist": 16, "pq_m": 8, "nprobe": 16})])
def test_approximate_kinds_find_near_duplicates_and_delete(kind, params, tmp_path):
    rng = np.random.default_rng(4)
    x = _unit(rng, 1000, 32)
    index = GalleryIndex.create(tmp_path / kind, fingerprint="m", model_name="agw", preprocessing=_spec(),
                                records=_records(1000), vectors=x, kind=kind, **params)
    noisy = x[:50] + 0.05 * _unit(rng, 50, 32)
    hits = index.search(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), model_fingerprint="m", k=1)
    assert sum(h[0].id == i + 1 for i, h in enumerate(hits)) >= 48  # recall@1 of near-duplicates
    index.delete([1, 2])
    hits = GalleryIndex.open(tmp_path / kind).search(x[:2], model_fingerprint="m", k=5)
    assert all(h.id not in (1, 2) for row in hits for h in row)


def test_known_identity_first_on_a_tiny_synthetic_gallery(tiny_run, tmp_path):
    """The gallery: the run's visible test images; the query: a 2x-enlarged copy of one of them, which the
    preprocessing resizes back; its own entry (its identity) must come first."""
    from vireid.commands._common import load_run_config
    from vireid.retrieval.sources import records_from_run_dataset

    model = vireid.load(tiny_run)
    records, _ = records_from_run_dataset(load_run_config(tiny_run), "visible")
    vectors = model.embed([r.path for r in records], "visible")
    index = GalleryIndex.create(tmp_path / "g", fingerprint=model.fingerprint, model_name=model.model_name,
                                preprocessing=model.spec, records=records, vectors=vectors)
    for target in (0, len(records) // 2, len(records) - 1):
        img = Image.open(records[target].path)
        query = img.resize((img.width * 2, img.height * 2), Image.BICUBIC)
        hits = model.search(tmp_path / "g", query, "visible", k=3)
        assert hits[0].path == records[target].path and hits[0].identity == records[target].identity
        assert hits[0].score > 0.95
