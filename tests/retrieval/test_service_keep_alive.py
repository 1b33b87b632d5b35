"""Keep-alive of ``vireid serve``: an idle connection outlives the client pools' expiry (httpx: 5 s),
so the server never closes a connection a client is reusing at that moment (the keep-alive race
behind the httpx.ReadErrors of benchmarks/bench_service.py). Real uvicorn on 127.0.0.1, raw sockets,
bounded waits."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from fastapi import FastAPI

from vireid.cli import main
from vireid.retrieval.service import KEEP_ALIVE_S, server_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """``server_config(app)`` (what vireid serve runs) in a thread; stopped on exit."""

    def __init__(self, **kw) -> None:
        import uvicorn

        app = FastAPI()
        app.get("/health")(lambda: {"status": "ok"})
        self.port = _free_port()
        self.config = server_config(app, port=self.port, **kw)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start within 30 s"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _get_health(sock: socket.socket) -> bytes:
    """One GET /health on an open connection; the raw response, b"" when the server had closed it."""
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return b""
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_default_keep_alive_outlives_the_httpx_pool_expiry():
    expiry = httpx.Limits().keepalive_expiry  # what a default httpx client pool keeps idle connections for
    assert expiry == 5.0 and KEEP_ALIVE_S > 2 * expiry
    with _Server() as server:
        assert server.config.timeout_keep_alive == KEEP_ALIVE_S
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            assert _get_health(sock).startswith(b"HTTP/1.1 200")
            time.sleep(expiry + 0.5)  # idle past the client's expiry (and past uvicorn's own default of 5 s)
            assert _get_health(sock).startswith(b"HTTP/1.1 200")  # the same connection still serves


def test_a_shorter_keep_alive_closes_the_idle_connection():
    """The mechanism: after keep_alive seconds the server closes; a request sent then finds no connection."""
    with _Server(keep_alive=1) as server, socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert _get_health(sock).startswith(b"HTTP/1.1 200")
        time.sleep(1.6)
        assert _get_health(sock) == b""


@pytest.mark.parametrize("value", ["0", "-3"])
def test_keep_alive_below_one_second_is_refused(value, tmp_path, capsys):
    assert main(["serve", "--index", str(tmp_path), "--run", str(tmp_path), "--keep-alive", value]) == 2
    assert f"--keep-alive must be at least 1 second, got {value}" in capsys.readouterr().err
