"""``vireid serve --index G (--run D | --model m.onnx) [--host 127.0.0.1 --port 8000]``: the search
service and web page (FastAPI + uvicorn). Binds to loopback unless ``--host`` says otherwise.
Writes (``POST /gallery``, ``DELETE /gallery/{id}``) need the bearer token in ``VIREID_API_TOKEN``.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="gallery index folder (vireid index build)")
    parser.add_argument("--run", help="the run folder the index was built with")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, or a path")
    parser.add_argument("--model", help="or its ONNX export (vireid export), run by ONNX Runtime")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body (default 10 MB)")
    parser.add_argument("--max-pixels", type=int, default=25_000_000, help="largest image (default 25 Mpixel)")
    parser.add_argument("--threads", type=int, default=1, help="compute threads for embedding (default 1)")
    parser.add_argument("--keep-alive", type=int, default=None, metavar="S",
                        help="seconds an idle keep-alive connection stays open (default 75; must exceed the "
                             "clients' pool expiry, httpx 5 s)")


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from vireid.api import load
    from vireid.errors import ConfigError
    from vireid.retrieval.index import GalleryIndex
    from vireid.retrieval.service import KEEP_ALIVE_S, TOKEN_ENV, ServiceLimits, create_app, server_config

    if bool(args.run) == bool(args.model):
        raise ConfigError("give exactly one of --run (the run the index was built with) or --model (its .onnx)")
    keep_alive = KEEP_ALIVE_S if args.keep_alive is None else args.keep_alive
    if keep_alive < 1:
        raise ConfigError(f"--keep-alive must be at least 1 second, got {keep_alive}")
    torch.set_num_threads(max(1, args.threads))
    index = GalleryIndex.open(args.index)
    embedder = load(args.model or args.run, checkpoint=args.checkpoint)
    limits = ServiceLimits(int(args.max_upload_mb * 2**20), args.max_pixels)
    app = create_app(index, embedder, limits=limits)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding to %s: the service is reachable from other machines", args.host)
    import os

    if not os.environ.get(TOKEN_ENV):
        logger.info("%s is not set: POST/DELETE /gallery are disabled", TOKEN_ENV)
    print(f"serving {args.index} ({len(index)} images) on http://{args.host}:{args.port}/")
    uvicorn.Server(server_config(app, host=args.host, port=args.port, keep_alive=keep_alive)).run()
    return 0
