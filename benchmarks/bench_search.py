"""Gallery search at scale: exact inner product (FAISS IndexFlatIP) vs IVF-PQ and HNSW.

Vectors: ``--n`` unit vectors of ``--dim`` dimensions drawn as a re-ID gallery looks: ``--ids``
identity centres (Gaussian), each image = its centre + Gaussian noise (``--spread``), normalised.
Queries: fresh images of random identities (not in the gallery). Recall@10 = |approx top-10 ∩
exact top-10| / 10, averaged over queries; latency per query at batch 1 (one query at a time, as
the service searches) on ``--threads`` threads. Peak RSS of the process is reported (ru_maxrss).

    nice python benchmarks/bench_search.py --n 1000000 --dim 512 --threads 1
"""

from __future__ import annotations

import argparse
import resource
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


def timed_search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids, lat = np.zeros((len(queries), k), np.int64), []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, ids[i] = index.search(q[None], k)
        lat.append(time.perf_counter() - t)
    return ids, np.array(lat) * 1000


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
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    faiss.omp_set_num_threads(a.threads)
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

    def row(name, build_s, index, extra_setup=None):
        nonlocal exact_ids, exact_p50
        if extra_setup:
            extra_setup()
        ids, lat = timed_search(index, q, 10)
        p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
        if exact_ids is None:
            exact_ids, exact_p50 = ids, p50
        recall = np.mean([len(set(a_) & set(b_)) / 10 for a_, b_ in zip(ids, exact_ids)])
        size = faiss.serialize_index(index).nbytes / 2**20 if hasattr(faiss, "serialize_index") else float("nan")
        print(f"| {name} | {build_s:.0f} | {size:.0f} | {p50:.2f} | {p99:.2f} | {recall:.3f} | "
              f"{exact_p50 / p50:.1f}x | {peak_mb():.0f} |", flush=True)

    for kind in a.kinds:
        t = time.perf_counter()
        if kind == "flat":
            index = faiss.IndexFlatIP(a.dim)
            index.add(x)
            row("exact (IndexFlatIP)", time.perf_counter() - t, index)
        elif kind == "ivfpq":
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(a.dim), a.dim, a.nlist, a.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
            train = x[np.random.default_rng(2).choice(a.n, min(a.n, 50 * a.nlist), replace=False)]
            index.train(train)
            index.add(x)
            build = time.perf_counter() - t
            for nprobe in a.nprobe:
                index.nprobe = nprobe
                row(f"IVF{a.nlist},PQ{a.pq_m}x8 nprobe={nprobe}", build, index)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(a.dim, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = a.ef_construction
            index.add(x)
            build = time.perf_counter() - t
            for ef in a.ef_search:
                index.hnsw.efSearch = ef
                row(f"HNSW{a.hnsw_m} efC={a.ef_construction} efSearch={ef}", build, index)
        del index


if __name__ == "__main__":
    main()
