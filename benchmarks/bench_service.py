"""The search service under load: ``--clients`` concurrent clients on loopback against ``POST /search``.

Starts ``vireid serve`` in a child process (127.0.0.1, a free port) over a gallery index, then
runs ``--clients`` asyncio clients (httpx), each sending ``--requests`` searches one after the
other (a bounded count), every request with a timeout and the whole run with a deadline. Reports
errors (non-200 or exceptions; target 0), latency p50/p99, throughput and the server's peak RSS
(VmHWM), next to the baseline of one client alone in the same run.

Every client connection is wrapped (:class:`ConnectionLog`, an httpcore network backend) to record,
for each failed read or write, which request on that connection it was and how long the connection
had been idle before it (client side: from the end of the previous response to the new request's
first byte). A failure on a reused connection idle for about the server's keep-alive timeout is
the keep-alive race: the server closed the idle connection as the client reused it.

Without ``--run/--index`` it builds a small setup first: ``vireid synth --ids 40 --seed 0`` at 64x32,
one tiny AGW-ResNet-18 training epoch, and an index of the visible test images.

    python benchmarks/bench_service.py --clients 200 --requests 5
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vireid(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vireid.cli", *args], check=True, stdout=subprocess.DEVNULL)


def small_setup(tmp: Path) -> tuple[Path, Path]:
    import yaml

    vireid("synth", "--out", str(tmp / "data"), "--ids", "40", "--seed", "0", "--height", "64", "--width", "32",
           "--images-per-camera", "4")
    recipe = {"name": "run", "output_dir": str(tmp),
              "data": {"dataset": "sysu-mm01", "root": str(tmp / "data"), "height": 64, "width": 32, "num_ids": 4,
                       "num_instances": 2, "num_workers": 0, "batches_per_epoch": 10},
              "model": {"name": "agw", "params": {"arch": "resnet18", "non_local": False}},
              "optim": {"epochs": 1, "warmup_epochs": 0, "milestones": []},
              "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1}}
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    vireid("train", "--config", str(tmp / "r.yaml"))
    vireid("index", "build", "--run", str(tmp / "run"), "--run-test-set", "--modality", "visible",
           "--out", str(tmp / "gallery"))
    return tmp / "run", tmp / "gallery"


def query_bytes(index: Path) -> list[bytes]:
    from PIL import Image

    from vireid.retrieval.index import GalleryIndex

    g = GalleryIndex.open(index)
    out = []
    for i in range(1, min(len(g), 20) + 1):
        buf = io.BytesIO()
        Image.open(g.get(i).path).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


class ConnectionLog:
    """An httpcore network backend wrapping the default one: records failures with their connection's history."""

    def __init__(self) -> None:
        import httpcore

        self.inner = httpcore.AnyIOBackend()
        self.failures: list[dict] = []  # {error, request (1 = first on its connection), idle_s (None if first)}
        self.connections = 0
        self.reuse_idle_s: list[float] = []  # idle time before every reuse of a connection

    async def connect_tcp(self, *args, **kwargs):
        self.connections += 1
        return _LoggedStream(await self.inner.connect_tcp(*args, **kwargs), self)

    async def connect_unix_socket(self, *args, **kwargs):
        return _LoggedStream(await self.inner.connect_unix_socket(*args, **kwargs), self)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _LoggedStream:
    def __init__(self, inner, log: ConnectionLog) -> None:
        self.inner, self.log = inner, log
        self.requests, self.reading, self.last_read, self.idle = 0, True, None, None
        self.entry: dict | None = None

    def _fail(self, exc: BaseException | None, what: str) -> None:
        error = what if exc is None else type(exc).__name__
        if self.entry is not None and self.entry["request"] == self.requests:
            self.entry["error"] += f" then {error}"  # httpcore reads on after a failed write: one request, one entry
            return
        self.entry = {"error": error, "request": self.requests, "idle_s": self.idle}
        self.log.failures.append(self.entry)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.reading:  # the first bytes of a new request on this connection
            self.requests += 1
            self.idle = None if self.last_read is None else time.monotonic() - self.last_read
            if self.idle is not None:
                self.log.reuse_idle_s.append(self.idle)
            self.reading = False
        try:
            await self.inner.write(buffer, timeout)
        except Exception as exc:
            self._fail(exc, "")
            raise

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.reading = True
        try:
            data = await self.inner.read(max_bytes, timeout)
        except Exception as exc:
            self._fail(exc, "")
            raise
        if not data:
            self._fail(None, "EOF (server closed)")
        self.last_read = time.monotonic()
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(self, *args, **kwargs):
        return await self.inner.start_tls(*args, **kwargs)

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


async def load(url: str, images: list[bytes], clients: int, requests: int, timeout: float,
               deadline: float, conn_log: ConnectionLog | None = None) -> tuple[list[float], int]:
    import httpx

    latencies, errors = [], 0
    kinds: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)  # keepalive_expiry 5 s
    transport = httpx.AsyncHTTPTransport(limits=limits)
    if conn_log is not None:
        assert hasattr(transport._pool, "_network_backend"), "httpx/httpcore changed: cannot log connections"
        transport._pool._network_backend = conn_log
    async with httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport) as client:
        async def one(c: int) -> None:
            nonlocal errors
            for r in range(requests):
                if time.monotonic() > deadline:
                    errors += requests - r
                    return
                t = time.perf_counter()
                try:
                    resp = await client.post("/search", files={"image": ("q.png", images[(c + r) % len(images)])},
                                             data={"modality": "infrared", "k": "10"})
                    ok = resp.status_code == 200 and len(resp.json()["hits"]) == 10
                    why = f"HTTP {resp.status_code}: {resp.text[:120]}"
                except Exception as exc:  # timeouts, resets: counted as errors
                    ok, why = False, f"{type(exc).__name__}: {str(exc)[:120]}"
                latencies.append(time.perf_counter() - t)
                if not ok:
                    errors += 1
                    kinds[why] = kinds.get(why, 0) + 1

        await asyncio.gather(*(one(c) for c in range(clients)))
    for why, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"error x{n}: {why}")
    return latencies, errors


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run")
    p.add_argument("--index")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--requests", type=int, default=5, help="searches per client")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--deadline", type=float, default=900.0, help="seconds for the whole loaded run")
    p.add_argument("--threads", type=int, default=1, help="the server's compute threads")
    p.add_argument("--keep-alive", type=int, help="the server's --keep-alive seconds (default: vireid serve's)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, index = (Path(a.run), Path(a.index)) if a.run else small_setup(Path(tmp))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "vireid.cli", "serve", "--index", str(index), "--run",
                                   str(run), "--port", str(port), "--threads", str(a.threads),
                                   *(["--keep-alive", str(a.keep_alive)] if a.keep_alive is not None else [])],
                                  stdout=subprocess.DEVNULL, env={**os.environ, "VIREID_API_TOKEN": ""})
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError("server did not come up")
            images = query_bytes(index)
            base, base_err = asyncio.run(load(url, images, 1, 20, a.timeout, time.monotonic() + a.deadline))
            t = time.perf_counter()
            conn_log = ConnectionLog()
            lat, err = asyncio.run(load(url, images, a.clients, a.requests, a.timeout, time.monotonic() + a.deadline,
                                        conn_log))
            wall = time.perf_counter() - t
            rss = vm_hwm_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    idle = np.array(conn_log.reuse_idle_s)
    print(f"loaded run: {conn_log.connections} connections opened, {len(idle)} reuses (idle before reuse: "
          f"max {idle.max() if len(idle) else 0:.2f} s, {int((idle > 4).sum())} over 4 s); "
          f"{len(conn_log.failures)} requests failed on the wire")
    for f in conn_log.failures:
        idle_s = "new connection" if f["idle_s"] is None else f"idle {f['idle_s']:.3f} s before it"
        print(f"  failure {f['error']} on request {f['request']} of its connection ({idle_s})")
    base_ms, lat_ms = np.array(base) * 1000, np.array(lat) * 1000
    print(f"vireid serve on 127.0.0.1, {a.threads} compute thread(s); gallery {index}; queries: gallery images as PNG, "
          f"infrared modality, k=10; server peak RSS (VmHWM) {rss:.0f} MB")
    print("| load | requests | errors | p50 ms | p99 ms | throughput req/s | p50 vs one client |")
    print("|---|---|---|---|---|---|---|")
    print(f"| 1 client (baseline) | {len(base)} | {base_err} | {np.percentile(base_ms, 50):.0f} | "
          f"{np.percentile(base_ms, 99):.0f} | {1000 / base_ms.mean():.1f} | 1.0x |")
    print(f"| {a.clients} concurrent clients | {a.clients * a.requests} | {err} | {np.percentile(lat_ms, 50):.0f} | "
          f"{np.percentile(lat_ms, 99):.0f} | {len(lat) / wall:.1f} | "
          f"{np.percentile(lat_ms, 50) / np.percentile(base_ms, 50):.1f}x |")


if __name__ == "__main__":
    main()
