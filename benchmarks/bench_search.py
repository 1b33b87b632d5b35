"""Gallery search at scale: exact inner product (FAISS IndexFlatIP) vs IVF-PQ and HNSW.

Vectors: ``--n`` unit vectors of ``--dim`` dimensions drawn as a re-ID gallery looks: ``--ids``
identity centres (Gaussian), each image = its centre + Gaussian noise (``--spread``), normalised.
Queries: fresh images of random identities (not in the gallery). Recall@10 = |approx top-10 ∩
exact top-10| / 10, averaged over queries; latency per query at batch 1 (one query at a time, as
the service searches) on ``--threads`` threads. Peak RSS of the process is reported (ru_maxrss);
index memory is the byte count of the serialised index (counted while writing, no copy kept).

IVF-PQ rows with ``--rescore R``: the gallery's own :class:`~vireid.retrieval.stores.FaissStore`
fetches the top ``10 * R`` by PQ score and re-ranks them by exact inner products with the stored
vectors (``--rescore-dtype``: float32 exact, float16 half the memory); the extra memory is the
stored vectors' byte count. HNSW builds add in chunks and log progress, so a build that is stopped
still tells how far it got.

    nice python benchmarks/bench_search.py --n 1000000 --dim 512 --threads 1

Scaling curve (``--curve N ...``): for each N and each kind, a fresh process generates the gallery
(``--per-id`` images per identity), builds the index and times ``--queries`` single queries (wall and
CPU p50/p99); recall@10 is measured against brute-force top-10 (NumPy, untimed); peak memory is the
growth of the worker's peak RSS (VmHWM, reset once the data is generated) and the index's serialised size. IVF-PQ uses ``nlist`` = the power of two nearest
N / 100 (at least 64), PQ``--pq-m``x8; HNSW ``--hnsw-m`` / ``--ef-construction``. Writes
``scaling_search.png`` and ``search_rows.json`` to ``--plot-dir``:

    nice -n 10 python benchmarks/bench_search.py --curve 10000 30000 100000 --kinds flat ivfpq hnsw \
        --nprobe 16 --ef-search 64 --plot-dir benchmarks/results
    # one more size, with the earlier points in the table and the plot:
    nice -n 10 python benchmarks/bench_search.py --curve 1000000 --kinds flat ivfpq hnsw --nprobe 16 64 \
        --ef-search 64 256 --merge benchmarks/results/search_rows.json --plot-dir benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time

import numpy as np


def gallery(n: int, dim: int, ids: int, spread: float, seed: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, dim)).astype(np.float32) / np.sqrt(dim)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x[s:e] = centres[rng.integers(0, ids, e - s)] + spread * rng.standard_normal((e - s, dim)).astype(np.float32) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, centres


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mb() -> float:
    """Peak resident set (VmHWM, MiB) of this process since start or the last :func:`reset_peak_mb`."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def reset_peak_mb() -> float:
    """Reset VmHWM to the current RSS (Linux: ``5 > /proc/self/clear_refs``); return it (MiB)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return hwm_mb()


def timed_search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query at a time; ``index`` is a FAISS index or a vireid FaissStore (same ``search(q, k)``)."""
    ids, lat = np.zeros((len(queries), k), np.int64), []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, ids[i] = index.search(q[None], k)
        lat.append(time.perf_counter() - t)
    return ids, np.array(lat) * 1000


def index_mb(index) -> float:
    """Serialised size of a FAISS index, counted chunk by chunk (no second copy in memory)."""
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total / 2**20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def nlist_for(n: int) -> int:
    """IVF lists for a gallery of n: the power of two nearest n / 100, at least 64."""
    return max(64, 2 ** round(np.log2(max(1, n) / 100)))


def curve_worker(kind: str, n: int, a: argparse.Namespace) -> dict:
    """One (kind, N) point in this fresh process: build, time single queries, recall vs brute force."""
    import faiss

    faiss.omp_set_num_threads(a.threads)
    x, centres = gallery(n, a.dim, max(1, n // a.per_id), a.spread, a.seed)
    rng = np.random.default_rng(a.seed + 1)
    q = centres[rng.integers(0, len(centres), a.queries)] + \
        a.spread * rng.standard_normal((a.queries, a.dim)).astype(np.float32) / np.sqrt(a.dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argpartition(-(q @ x.T), 10, axis=1)[:, :10]  # (queries, 10) brute force, untimed
    before = reset_peak_mb()  # the data's temporaries are gone: the peak from here on is the index's
    t, c = time.perf_counter(), time.process_time()
    settings: list[tuple[str, object]] = []
    if kind == "flat":
        index = faiss.IndexFlatIP(a.dim)
        index.add(x)
        settings = [("exact (IndexFlatIP)", None)]
    elif kind == "ivfpq":
        nlist = nlist_for(n)
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(a.dim), a.dim, nlist, a.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(x[np.random.default_rng(2).choice(n, min(n, 50 * nlist), replace=False)])
        index.add(x)
        settings = [(f"IVF{nlist},PQ{a.pq_m}x8 nprobe={p}", p) for p in a.nprobe]
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(a.dim, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = a.ef_construction
        index.add(x)
        settings = [(f"HNSW{a.hnsw_m} efC={a.ef_construction} efSearch={ef}", ef) for ef in a.ef_search]
    else:
        raise SystemExit(f"unknown kind {kind!r}; valid: flat, ivfpq, hnsw")
    build_s, build_cpu = time.perf_counter() - t, time.process_time() - c
    rows = []
    for name, value in settings:
        if kind == "ivfpq":
            index.nprobe = value
        elif kind == "hnsw":
            index.hnsw.efSearch = value
        ids, wall, cpu = np.zeros((len(q), 10), np.int64), [], []
        for i in range(len(q)):
            t, c = time.perf_counter(), time.process_time()
            _, ids[i] = index.search(q[i:i + 1], 10)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        recall = np.mean([len(set(a_) & set(b_)) / 10 for a_, b_ in zip(ids, truth)])
        rows.append({"index": name, "p50_ms": 1000 * float(np.median(wall)), "p99_ms": 1000 * float(np.percentile(wall, 99)),
                     "p50_cpu_ms": 1000 * float(np.median(cpu)), "recall": float(recall)})
    return {"kind": kind, "n": n, "build_s": build_s, "build_cpu_s": build_cpu, "index_mb": index_mb(index),
            "peak_rss_mb": hwm_mb(), "rss_before_mb": before, "rows": rows}


def curve(a: argparse.Namespace) -> None:
    """Run every (N, kind) in its own process; print the table, write the rows and the plot."""
    load = os.getloadavg()
    points = []
    if a.merge:  # earlier points (same settings), e.g. a run that stopped at 300k, extended by a 1M run
        with open(a.merge) as fh:
            points = [pt for pt in json.load(fh) if pt["n"] not in a.curve]
        log(f"merged {len(points)} earlier points from {a.merge}")
    for n in a.curve:
        for kind in a.kinds:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--n", str(n), "--dim", str(a.dim),
                   "--per-id", str(a.per_id), "--spread", str(a.spread), "--queries", str(a.queries),
                   "--threads", str(a.threads), "--pq-m", str(a.pq_m), "--hnsw-m", str(a.hnsw_m),
                   "--ef-construction", str(a.ef_construction), "--seed", str(a.seed),
                   "--nprobe", *map(str, a.nprobe), "--ef-search", *map(str, a.ef_search)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"worker {kind} at N={n} failed:\n{proc.stderr}")
            points.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            log(f"{kind} N={n}: build {points[-1]['build_s']:.0f} s, " +
                ", ".join(f"{r['index']} p50 {r['p50_ms']:.2f} ms recall {r['recall']:.3f}" for r in points[-1]["rows"]))
    order = {"flat": 0, "ivfpq": 1, "hnsw": 2}
    points.sort(key=lambda pt: (pt["n"], order.get(pt["kind"], 3)))  # merged and new points in one table
    print(f"gallery N x {a.dim} ({a.per_id} images per identity, spread {a.spread}), {a.queries} single queries, "
          f"{a.threads} thread(s); load average before / after: {load[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print("| N | index | build s (CPU s) | index MB | worker RSS MB: data / peak growth | query ms p50 wall / CPU | "
          "p99 wall | recall@10 vs brute force |")
    print("|---:|---|---|---:|---:|---|---:|---:|")
    series = []
    for pt in points:
        for i, r in enumerate(pt["rows"]):
            print(f"| {pt['n']:,} | {r['index']} | {pt['build_s']:.1f} ({pt['build_cpu_s']:.1f}) | {pt['index_mb']:.1f} | "
                  f"{pt['rss_before_mb']:.0f} / {pt['peak_rss_mb'] - pt['rss_before_mb']:.0f} | "
                  f"{r['p50_ms']:.3f} / {r['p50_cpu_ms']:.3f} | {r['p99_ms']:.2f} | "
                  f"{r['recall']:.3f} |")
            if i == 0:  # the plot: one setting per kind (the first nprobe / efSearch)
                series.append({"series": r["index"].split(" nprobe")[0].split(" efSearch")[0].split(",PQ")[0]
                               .replace("IVF" + r["index"][3:].split(",")[0], "IVF-PQ") + (
                                   f", nprobe {a.nprobe[0]}" if pt["kind"] == "ivfpq" else
                                   f", efSearch {a.ef_search[0]}" if pt["kind"] == "hnsw" else ""),
                               "n": pt["n"], "seconds": r["p50_cpu_ms"], "peak_mb": pt["index_mb"]})
    print(f"command: {shlex.join([os.path.relpath(sys.executable), os.path.relpath(__file__), *sys.argv[1:]])}")
    if a.plot_dir:
        from scaling_plot import plot_scaling

        os.makedirs(a.plot_dir, exist_ok=True)
        with open(os.path.join(a.plot_dir, "search_rows.json"), "w") as fh:
            json.dump(points, fh, indent=1)
        plot_scaling(os.path.join(a.plot_dir, "scaling_search.png"),
                     f"search, k = 10, one query at a time: exact (baseline) vs IVF-PQ and HNSW, D = {a.dim}", series,
                     xlabel="N (gallery vectors)", ylabels=("query p50, CPU ms (one thread)", "index memory (MiB)"),
                     note=(f"one thread, each point a fresh process; N = {', '.join(f'{n:,}' for n in a.curve)}: "
                           f"this run (load {load[0]:.1f} / {os.getloadavg()[0]:.1f}), the others from "
                           f"{os.path.basename(a.merge)}" if a.merge else
                           f"one thread, same run, each point a fresh process; load average before / after "
                           f"{load[0]:.1f} / {os.getloadavg()[0]:.1f}"))


def main() -> None:
    import faiss

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--ids", type=int, default=50_000, help="identity centres (images per identity = n / ids)")
    p.add_argument("--spread", type=float, default=1.0, help="noise scale relative to the centre scale")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=["flat", "ivfpq", "hnsw"])
    p.add_argument("--nlist", type=int, default=4096)
    p.add_argument("--nprobe", type=int, nargs="+", default=[16, 64])
    p.add_argument("--pq-m", type=int, default=64)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=80)
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 256])
    p.add_argument("--rescore", type=int, nargs="*", default=[], help="ivfpq: also these candidate factors R")
    p.add_argument("--rescore-dtype", nargs="+", default=["float32"], choices=["float32", "float16"])
    p.add_argument("--chunk", type=int, default=50_000, help="vectors per add() call (progress is logged)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curve", type=int, nargs="*", default=[], help="scaling curve at these gallery sizes")
    p.add_argument("--per-id", type=int, default=20, help="curve: images per identity")
    p.add_argument("--plot-dir", help="curve: write scaling_search.png and search_rows.json here")
    p.add_argument("--merge", help="curve: also tabulate and plot the points of this search_rows.json "
                   "(those at sizes not in --curve), measured earlier with the same settings")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(curve_worker(a.worker, a.n, a)))
        return
    if a.curve:
        curve(a)
        return
    from vireid.retrieval.stores import FaissStore

    faiss.omp_set_num_threads(a.threads)
    simd = faiss.SIMDConfig.get_level_name() if hasattr(faiss, "SIMDConfig") else "?"
    print(f"faiss {faiss.__version__}, SIMD level {simd}")
    t = time.perf_counter()
    x, centres = gallery(a.n, a.dim, a.ids, a.spread, a.seed)
    rng = np.random.default_rng(a.seed + 1)
    q = centres[rng.integers(0, a.ids, a.queries)] + a.spread * rng.standard_normal((a.queries, a.dim)).astype(np.float32) / np.sqrt(a.dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    print(f"gallery {a.n} x {a.dim} ({a.ids} identities, spread {a.spread}), {a.queries} queries, "
          f"{a.threads} thread(s); generated in {time.perf_counter() - t:.0f} s", flush=True)
    print("| index | build s | memory of the index MB | query ms p50 | query ms p99 | recall@10 vs exact | "
          "speed-up vs exact (p50) | process peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    exact_ids, exact_p50 = None, None

    def row(name, build_s, index, size_mb):
        nonlocal exact_ids, exact_p50
        ids, lat = timed_search(index, q, 10)
        p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
        if exact_ids is None:
            exact_ids, exact_p50 = ids, p50
        recall = np.mean([len(set(a_) & set(b_)) / 10 for a_, b_ in zip(ids, exact_ids)])
        print(f"| {name} | {build_s:.0f} | {size_mb:.0f} | {p50:.2f} | {p99:.2f} | {recall:.3f} | "
              f"{exact_p50 / p50:.1f}x | {peak_mb():.0f} |", flush=True)

    ids = np.arange(a.n, dtype=np.int64)
    exact = None  # IndexIDMap2(IndexFlatIP): the exact baseline, and the float32 store for re-scoring
    for kind in a.kinds:
        t = time.perf_counter()
        if kind == "flat":
            exact = faiss.IndexIDMap2(faiss.IndexFlatIP(a.dim))
            exact.add_with_ids(x, ids)
            row("exact (IndexFlatIP)", time.perf_counter() - t, exact, index_mb(exact))
        elif kind == "ivfpq":
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(a.dim), a.dim, a.nlist, a.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
            train = x[np.random.default_rng(2).choice(a.n, min(a.n, 50 * a.nlist), replace=False)]
            index.train(train)
            log(f"ivfpq trained in {time.perf_counter() - t:.0f} s")
            index = faiss.IndexIDMap2(index)
            index.add_with_ids(x, ids)
            build = time.perf_counter() - t
            log(f"ivfpq built in {build:.0f} s")
            size = index_mb(index)
            for nprobe in a.nprobe:
                faiss.downcast_index(index.index).nprobe = nprobe
                row(f"IVF{a.nlist},PQ{a.pq_m}x8 nprobe={nprobe}", build, index, size)
            for dtype in a.rescore_dtype if a.rescore else []:
                if dtype == "float32" and exact is not None:
                    store, store_s = exact, 0.0  # the baseline's vectors, keyed by the same ids
                else:
                    t = time.perf_counter()
                    store = faiss.IndexIDMap2(faiss.IndexFlatIP(a.dim) if dtype == "float32" else
                                              faiss.IndexScalarQuantizer(a.dim, faiss.ScalarQuantizer.QT_fp16,
                                                                         faiss.METRIC_INNER_PRODUCT))
                    store.add_with_ids(x, ids)
                    store_s = time.perf_counter() - t
                store_size = index_mb(store)
                for nprobe in a.nprobe:
                    for r in a.rescore:
                        fs = FaissStore("ivfpq", a.dim, index=index, exact=store, nlist=a.nlist, pq_m=a.pq_m,
                                        nprobe=nprobe, rescore=r, rescore_dtype=dtype)
                        row(f"IVF{a.nlist},PQ{a.pq_m}x8 nprobe={nprobe} + exact re-scoring of top {10 * r} "
                            f"({dtype} vectors)", build + store_s, fs, size + store_size)
                if store is not exact:
                    del store
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(a.dim, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = a.ef_construction
            for s in range(0, a.n, a.chunk):
                index.add(x[s:s + a.chunk])
                log(f"hnsw: {index.ntotal} of {a.n} added, {time.perf_counter() - t:.0f} s, "
                    f"peak RSS {peak_mb():.0f} MB")
            build = time.perf_counter() - t
            size = index_mb(index)
            for ef in a.ef_search:
                index.hnsw.efSearch = ef
                row(f"HNSW{a.hnsw_m} efC={a.ef_construction} efSearch={ef}", build, index, size)
        else:
            raise SystemExit(f"unknown kind {kind!r}; valid: flat, ivfpq, hnsw")


if __name__ == "__main__":
    main()
