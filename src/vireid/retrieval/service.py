"""The search service (FastAPI): ``POST /search``, ``POST /gallery``, ``DELETE /gallery/{id}``,
``GET /gallery/{id}/image``, ``GET /health``, ``GET /openapi.json`` and the web page at ``/``.

Hardening:

* writes (``POST /gallery``, ``DELETE``) need ``Authorization: Bearer <token>``, the token read
  from the environment variable ``VIREID_API_TOKEN`` at start-up and compared with
  :func:`hmac.compare_digest` (constant time); without the variable, writes are refused (403);
* request bodies over ``max_upload_bytes`` are refused (413) before or while they are read;
* the image format is sniffed from the bytes (JPEG, PNG, BMP, WebP), never taken from the file
  name or the declared content type (415 otherwise); the pixel count is checked from the header
  before decoding (413 over ``max_pixels``: decompression bombs);
* every error is JSON ``{"error": "..."}`` with a 4xx status;
* thumbnails are looked up by integer id and served only from under the index's image roots
  (no client-supplied path, so no traversal);
* the swagger/redoc pages (which load scripts from a CDN) are off; the page at ``/`` and its
  assets are served by this process, with a ``Content-Security-Policy`` of ``'self'``;
* idle keep-alive connections stay open :data:`KEEP_ALIVE_S` seconds (:func:`server_config`),
  longer than client pools keep them (httpx: 5 s), so the server never closes a connection that a
  client is reusing at that moment (the keep-alive race, which cost 4 of 1000 requests under 200
  clients with uvicorn's default of 5 s).
"""

from __future__ import annotations

import hmac
import io
import logging
import os
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vireid.retrieval.embedder import Embedder
from vireid.retrieval.index import GalleryIndex, GalleryRecord, IndexError_, parse_time
from vireid.types import Modality

logger = logging.getLogger(__name__)

__all__ = ["KEEP_ALIVE_S", "TOKEN_ENV", "ServiceLimits", "create_app", "server_config", "sniff_image"]

TOKEN_ENV = "VIREID_API_TOKEN"
KEEP_ALIVE_S = 75
"""Seconds an idle HTTP/1.1 keep-alive connection stays open (uvicorn's own default is 5 s).

An idle connection is closed by whichever side's timer fires first. When the server's fires first
while a client's pool still counts the connection as reusable, a request the client sends in that
instant meets a connection the server has just closed and fails (a reset: ``httpx.ReadError``).
httpx expires pooled connections after 5 s, exactly uvicorn's default, so under load some
reuses landed in that window; with the server's timeout well above the clients' (75 s, nginx's
default), the client closes idle connections itself and the race cannot happen. Clients whose
pools keep idle connections longer than this must retry idempotent requests that fail on a
reused connection (RFC 9112 section 9.3.1); ``POST /search`` changes nothing and is safe to retry.
"""
FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "BMP": ("image/bmp", ".bmp"),
           "WEBP": ("image/webp", ".webp")}
CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; object-src 'none'"


class ServiceLimits:
    """Upload limits: bytes per request body, pixels per image, hits per query."""

    def __init__(self, max_upload_bytes: int = 10 * 2**20, max_pixels: int = 25_000_000, max_k: int = 100) -> None:
        self.max_upload_bytes, self.max_pixels, self.max_k = int(max_upload_bytes), int(max_pixels), int(max_k)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def sniff_image(data: bytes, max_pixels: int):
    """Decoded PIL image of ``data`` and its format; ApiError 415/413/400 otherwise."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
    except Exception:  # PIL raises several types for non-images
        raise ApiError(415, f"not an image of a supported format ({', '.join(FORMATS)})") from None
    if fmt not in FORMATS:
        raise ApiError(415, f"image format {fmt} is not accepted; send {', '.join(FORMATS)}")
    w, h = img.size
    if w * h > max_pixels or w < 1 or h < 1:
        raise ApiError(413, f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
    try:
        img.load()
    except Exception as exc:
        raise ApiError(400, f"cannot decode the {fmt} image: {exc}") from None
    return (img.convert("RGB") if img.mode not in ("L", "RGB") else img), fmt


class _BodyLimit:
    """ASGI middleware: 413 when the request body exceeds ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen, started = 0, False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = f'{{"error": "request body exceeds the {self.limit}-byte limit"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def server_config(app: Any, *, host: str = "127.0.0.1", port: int = 8000, keep_alive: int = KEEP_ALIVE_S,
                  log_level: str = "warning") -> Any:
    """The ``uvicorn.Config`` that ``vireid serve`` runs ``app`` with (keep-alive: see :data:`KEEP_ALIVE_S`)."""
    import uvicorn

    from vireid.errors import ConfigError

    if keep_alive < 1:
        raise ConfigError(f"--keep-alive must be at least 1 second, got {keep_alive}")
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_keep_alive=int(keep_alive))


def create_app(index: GalleryIndex, embedder: Embedder, *, limits: ServiceLimits | None = None,
               token: str | None = None) -> FastAPI:
    """The FastAPI application over ``index`` (queries embedded by ``embedder``, same fingerprint).

    ``token``: the bearer token for writes; ``None`` reads :data:`TOKEN_ENV` (writes off when unset or empty).
    """
    from vireid.retrieval.index import ModelMismatchError

    limits = limits or ServiceLimits()
    token = os.environ.get(TOKEN_ENV, "") if token is None else token
    if embedder.fingerprint != index.fingerprint:
        raise ModelMismatchError(f"the model {embedder.fingerprint} is not the one the gallery {index.root} was "
                                 f"built with ({index.fingerprint}, {index.info.get('model_name')})")
    app = FastAPI(title="vireid search", version="1", docs_url=None, redoc_url=None,
                  description="Cross-modality person re-identification search over a gallery index.")
    static = resources.files("vireid.retrieval") / "static"

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = CSP
        return response

    def _require_token(request: Request) -> None:
        if not token:
            raise ApiError(403, f"writes are disabled: the server was started without {TOKEN_ENV}")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "a valid bearer token is required for this request",
                           {"WWW-Authenticate": "Bearer"})

    async def _read_image(upload: UploadFile):
        data = await upload.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise ApiError(413, f"image exceeds the {limits.max_upload_bytes}-byte limit")
        if not data:
            raise ApiError(400, "the uploaded file is empty")
        img, fmt = sniff_image(data, limits.max_pixels)
        return img, fmt, data

    def _modality(value: str) -> Modality:
        try:
            return Modality.parse(value)
        except ValueError as exc:
            raise ApiError(422, f"modality: {exc}") from None

    def _hit_json(hit: Any) -> dict[str, Any]:
        return {**hit.to_dict(), "path": Path(hit.path).name, "thumbnail": f"/gallery/{hit.id}/image"}

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, gallery size and model."""
        return {"status": "ok", "gallery": len(index), "model": index.info.get("model_name"),
                "fingerprint": index.fingerprint, "dim": index.dim, "writes": bool(token)}

    @app.post("/search")
    async def search(image: UploadFile = File(...), modality: str = Form("infrared"), k: int = Form(10),
                     camera: str = Form(""), gallery_modality: str = Form(""), since: str = Form(""),
                     until: str = Form(""), flip: bool = Form(False)) -> dict[str, Any]:
        """Rank the gallery for an uploaded query image. ``camera``: comma-separated names."""
        if not 1 <= k <= limits.max_k:
            raise ApiError(422, f"k: must be in 1..{limits.max_k}, got {k}")
        mod = _modality(modality)
        img, fmt, _ = await _read_image(image)
        def run() -> list:
            query = embedder.embed([img], mod, flip=flip)  # (1, D)
            return index.search(query, model_fingerprint=embedder.fingerprint, k=k,
                                camera=[c.strip() for c in camera.split(",") if c.strip()] or None,
                                modality=gallery_modality or None, since=since or None, until=until or None)[0]

        try:  # in the thread pool: the event loop keeps accepting requests meanwhile
            hits = await run_in_threadpool(run)
        except (IndexError_, ValueError) as exc:
            raise ApiError(422, str(exc)) from None
        return {"query": {"modality": mod.name.lower(), "format": fmt, "size": list(img.size)}, "k": k,
                "hits": [_hit_json(h) for h in hits]}

    @app.post("/gallery", status_code=201)
    async def add(request: Request, image: UploadFile = File(...), modality: str = Form(...),
                  camera: str = Form(""), timestamp: str = Form(""), track_id: str = Form(""),
                  identity: str = Form("")) -> dict[str, Any]:
        """Add an image to the gallery (bearer token required)."""
        _require_token(request)
        mod = _modality(modality)
        try:
            when = parse_time(timestamp or None)
        except IndexError_ as exc:
            raise ApiError(422, str(exc)) from None
        img, fmt, data = await _read_image(image)
        uploads = index.root / "uploads"
        uploads.mkdir(exist_ok=True)
        path = uploads / f"{uuid.uuid4().hex}{FORMATS[fmt][1]}"  # our name: nothing from the client
        path.write_bytes(data)
        vector = await run_in_threadpool(embedder.embed, [img], mod)
        record = GalleryRecord(str(path), camera, mod.name.lower(), when, track_id or None, identity or None)
        (new_id,) = await run_in_threadpool(index.add, [record], vector, model_fingerprint=embedder.fingerprint)
        return {"id": new_id, "gallery": len(index)}

    @app.delete("/gallery/{gallery_id}")
    def delete(request: Request, gallery_id: int) -> dict[str, Any]:
        """Remove an image from the gallery (bearer token required)."""
        _require_token(request)
        if index.delete([gallery_id]) == 0:
            raise ApiError(404, f"no gallery image with id {gallery_id}")
        return {"deleted": gallery_id, "gallery": len(index)}

    @app.get("/gallery/{gallery_id}/image")
    def thumbnail(gallery_id: int) -> FileResponse:
        """The gallery image of an id (only from under the index's image folders)."""
        path = index.resolve_image(gallery_id)
        if path is None:
            raise ApiError(404, f"no gallery image with id {gallery_id}")
        from PIL import Image

        try:
            with Image.open(path) as img:
                fmt = img.format
        except Exception:
            fmt = None
        if fmt not in FORMATS:
            raise ApiError(404, f"gallery image {gallery_id} is not a servable image")
        return FileResponse(path, media_type=FORMATS[fmt][0])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in kinds:  # a fixed list: nothing else is reachable
            raise ApiError(404, f"no asset {name}")
        return Response((static / name).read_text(encoding="utf-8"), media_type=kinds[name])

    app.state.index, app.state.embedder, app.state.limits = index, embedder, limits
    app.add_middleware(_BodyLimit, limit=limits.max_upload_bytes + 64 * 1024)  # room for the multipart framing
    return app
