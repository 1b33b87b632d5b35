"""The search service: every endpoint, its error cases, auth on writes, limits and sniffing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    """(TestClient, index, gallery records) over the tiny run's visible test gallery."""
    from fastapi.testclient import TestClient

    import vireid
    from vireid.commands._common import load_run_config
    from vireid.retrieval.index import GalleryIndex
    from vireid.retrieval.service import ServiceLimits, create_app
    from vireid.retrieval.sources import records_from_run_dataset

    model = vireid.load(tiny_run)
    records, root = records_from_run_dataset(load_run_config(tiny_run), "visible")
    out = tmp_path_factory.mktemp("served") / "g"
    index = GalleryIndex.create(out, fingerprint=model.fingerprint, model_name=model.model_name,
                                preprocessing=model.spec, records=records,
                                vectors=model.embed([r.path for r in records], "visible"), image_roots=[root])
    app = create_app(index, model, limits=ServiceLimits(max_upload_bytes=200_000, max_pixels=100_000), token=TOKEN)
    with TestClient(app) as client:
        yield client, index, records


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _enlarged(path: str) -> bytes:
    img = Image.open(path)
    return _png(np.asarray(img.resize((img.width * 2, img.height * 2))))


def test_health_page_and_openapi(served):
    client, index, _ = served
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["gallery"] == len(index) and r.json()["writes"] is True
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another host
    assert "'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/..%2Fservice.py").status_code == 404
    assert "/search" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 404  # the CDN-based swagger page is off


def test_search_ranks_the_source_image_first(served):
    client, _, records = served
    target = records[3]
    r = client.post("/search", files={"image": ("q.bin", _enlarged(target.path), "text/plain")},
                    data={"modality": "visible", "k": "4"})  # declared type and name ignored: sniffed
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["format"] == "PNG" and len(body["hits"]) == 4
    top = body["hits"][0]
    assert top["identity"] == target.identity and top["path"] == target.path.rsplit("/", 1)[1]
    assert [h["rank"] for h in body["hits"]] == [1, 2, 3, 4] and top["score"] >= body["hits"][1]["score"]
    thumb = client.get(top["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content == open(target.path, "rb").read()
    cams = client.post("/search", files={"image": ("q.png", _enlarged(target.path))},
                       data={"modality": "visible", "k": "50", "camera": "cam1"}).json()["hits"]
    assert cams and {h["camera"] for h in cams} == {"cam1"}


@pytest.mark.parametrize("files,data,status,message", [
    ({"image": ("q.png", b"GIF89a not really")}, {}, 415, "not an image of a supported format"),
    ({"image": ("q.png", b"")}, {}, 400, "the uploaded file is empty"),
    ({"image": ("q.png", _png(np.zeros((400, 400, 3), np.uint8)))}, {}, 413, "160000 pixels; the limit is 100000"),
    ({"image": ("q.png", _png(np.zeros((8, 4), np.uint8)))}, {"modality": "uv"}, 422, "modality: unknown modality"),
    ({"image": ("q.png", _png(np.zeros((8, 4), np.uint8)))}, {"k": "0"}, 422, "k: must be in 1..100"),
    ({"image": ("q.png", _png(np.zeros((8, 4), np.uint8)))}, {"k": "ten"}, 422, "k: "),
    ({"image": ("q.png", _png(np.zeros((8, 4), np.uint8)))}, {"since": "soon"}, 422, "neither Unix seconds"),
    ({}, {}, 422, "image: Field required"),
])
def test_search_errors_are_json_4xx(served, files, data, status, message):
    client, _, _ = served
    r = client.post("/search", files=files or None, data=data)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_oversized_body_is_refused_before_parsing(served):
    client, _, _ = served
    r = client.post("/search", files={"image": ("q.png", b"\x89PNG" + b"0" * 400_000)})
    assert r.status_code == 413 and "byte limit" in r.json()["error"]


def test_decompression_bomb_is_refused_from_its_header(served):
    client, _, _ = served
    buf = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buf, format="PNG", optimize=True)  # ~25 Mpixel in a few KB
    assert len(buf.getvalue()) < 200_000
    r = client.post("/search", files={"image": ("bomb.png", buf.getvalue())})
    assert r.status_code == 413 and "25000000 pixels" in r.json()["error"]


def test_writes_need_the_token_then_add_and_delete(served):
    client, index, records = served
    query = _enlarged(records[0].path)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.post("/gallery", files={"image": ("a.png", query)}, data={"modality": "infrared"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.delete("/gallery/1", headers=headers).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = len(index)
    r = client.post("/gallery", files={"image": ("../../evil.png", query)}, headers=auth,
                    data={"modality": "visible", "camera": "door", "timestamp": "2026-12-07T10:00:00Z",
                          "track_id": "t1", "identity": "42"})
    assert r.status_code == 201 and r.json()["gallery"] == before + 1
    new_id = r.json()["id"]
    stored = index.get(new_id)
    assert stored.path.startswith(str(index.root / "uploads")) and "evil" not in stored.path
    hits = client.post("/search", files={"image": ("q.png", query)}, data={"modality": "visible", "k": "1",
                                                                         "camera": "door"}).json()["hits"]
    assert hits[0]["id"] == new_id and hits[0]["identity"] == "42" and hits[0]["time"] == "2026-12-07T10:00:00+00:00"
    assert client.get(f"/gallery/{new_id}/image").headers["content-type"] == "image/png"
    assert client.delete(f"/gallery/{new_id}", headers=auth).json() == {"deleted": new_id, "gallery": before}
    assert client.delete(f"/gallery/{new_id}", headers=auth).status_code == 404
    assert client.get(f"/gallery/{new_id}/image").status_code == 404


def test_thumbnails_never_leave_the_image_roots(served, tmp_path):
    client, index, _ = served
    outside = tmp_path / "secret.png"
    outside.write_bytes(_png(np.zeros((4, 4), np.uint8)))
    index.db.execute("INSERT INTO gallery VALUES (9999, ?, 'x', 'visible', NULL, NULL, NULL)",
                     (str(index.root / "uploads" / ".." / ".." / ".." / outside.name),))
    index.db.execute("INSERT INTO gallery VALUES (9998, ?, 'x', 'visible', NULL, NULL, NULL)", (str(outside),))
    assert client.get("/gallery/9999/image").status_code == 404
    assert client.get("/gallery/9998/image").status_code == 404
    assert client.get("/gallery/..%2F..%2Fetc%2Fpasswd/image").status_code in (404, 422)
    assert client.get("/gallery/-1/image").status_code == 404


def test_writes_disabled_without_a_token(served):
    from fastapi.testclient import TestClient

    from vireid.retrieval.service import create_app

    _, index, _ = served
    app = create_app(index, served[0].app.state.embedder, token="")
    with TestClient(app) as client:
        r = client.delete("/gallery/1", headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "started without VIREID_API_TOKEN" in r.json()["error"]
