"""Benchmark the re-rankers against straightforward implementations: time, peak memory, same output.

- k-reciprocal: ``vireid.rerank.k_reciprocal_rerank`` vs the public reference ``re_ranking``
  (zhunzhong07/person-re-ranking, torchreid; restated step by step below: dense N x N float32
  matrices, full ``np.argsort``, Python loops, inverted index). The reference core is fed the very
  float32 distance matrix vireid computes (``original_distance_matrix``), so both rank the same
  values; the reference pipeline's own dense distance (``torch.addmm`` on features, as in
  reid-strong-baseline) is timed separately and added to its total.
- SIM: ``vireid.rerank.sim_rerank`` vs a per-query numpy float64 loop over the full (ng, ng)
  two-hop path matrix (``np.partition`` for the K shortest), dense boolean R* sets. Its cost is
  linear in the queries, so with ``--sim-baseline-queries`` it runs the first queries only and its
  time is extrapolated to all queries (marked "est."); outputs are compared on those rows.

Each measurement runs in a fresh subprocess; peak memory is the growth of its peak RSS
(``resource.getrusage``) over the run, or ``torch.cuda.max_memory_allocated`` on CUDA.
Features: L2-normalised clustered vectors (about 10 images per identity), a modality offset on
the queries, D = 512, queries:gallery = 1:4.

    python benchmarks/bench_rerank.py                      # N = 2000, 5000, 10000, both methods
    python benchmarks/bench_rerank.py --sizes 2000 --methods sim --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- data


def make_features(n: int, dim: int, query_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered, L2-normalised float32 features; queries carry a modality offset."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, n // 10)
    ids = rng.integers(0, n_ids, size=n)
    x = rng.normal(size=(n_ids, dim))[ids] + 0.8 * rng.normal(size=(n, dim))
    nq = int(round(n * query_fraction))
    offset = rng.normal(size=dim)
    x[:nq] += offset / np.linalg.norm(offset) * 4.0
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:nq].astype(np.float32), x[nq:].astype(np.float32)


# ----------------------------------------------------------------------------- baselines


def reference_re_ranking(
    original_dist: np.ndarray, query_num: int, k1: int, k2: int, lambda_value: float
) -> np.ndarray:
    """The reference ``re_ranking`` algorithm on a dense (N, N) squared-distance matrix (float32)."""
    dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    n = dist.shape[0]
    v = np.zeros_like(dist, dtype=np.float32)
    rank = np.argsort(dist).astype(np.int32)
    half = int(np.around(k1 / 2.0))

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    for i in range(n):
        r = reciprocal(i, k1)
        members = r
        for c in r:
            rc = reciprocal(c, half)
            if len(np.intersect1d(rc, r)) > 2.0 / 3 * len(rc):
                members = np.append(members, rc)
        members = np.unique(members)
        w = np.exp(-dist[i, members])
        v[i, members] = w / np.sum(w)
    dist = dist[:query_num]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(n):
            v_qe[i] = np.mean(v[rank[i, :k2]], axis=0)
        v = v_qe
    del rank
    inverted = [np.where(v[:, c] != 0)[0] for c in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float32)
    for i in range(query_num):
        common = np.zeros((1, n), dtype=np.float32)
        nonzero = np.where(v[i] != 0)[0]
        for c in nonzero:
            rows = inverted[c]
            common[0, rows] = common[0, rows] + np.minimum(v[i, c], v[rows, c])
        jaccard[i] = 1 - common / (2.0 - common)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, query_num:]


def straightforward_sim(
    qf: np.ndarray, gf: np.ndarray, n_queries: int, lam: float, top_k: int, k_q: int, k_g: int, alpha: float
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """SIM one query at a time in float64 numpy.

    Returns the first ``n_queries`` rows, (wall, CPU) seconds of the setup (distances, R* sets)
    and (wall, CPU) seconds of the per-query loop.
    """
    w0, c0 = time.perf_counter(), time.process_time()
    q = qf.astype(np.float64)
    g = gf.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    g_sq = (g * g).sum(1)
    d_qg = np.sqrt(np.maximum((q * q).sum(1)[:, None] + g_sq[None] - 2 * q @ g.T, 0))
    d_gg = np.sqrt(np.maximum(g_sq[:, None] + g_sq[None] - 2 * g @ g.T, 0))
    np.fill_diagonal(d_gg, 0.0)
    ng = len(g)
    rank = np.argsort(d_gg, axis=1)
    neighbours = [set(rank[p, : k_g + 1].tolist()) for p in range(ng)]
    half_neighbours = [set(rank[p, : int(np.around(k_g / 2.0)) + 1].tolist()) for p in range(ng)]
    recip = [{j for j in neighbours[p] if p in neighbours[j]} for p in range(ng)]
    recip_half = [{j for j in half_neighbours[p] if p in half_neighbours[j]} for p in range(ng)]
    r_star = np.zeros((ng, ng), dtype=bool)
    for p in range(ng):
        members = set(recip[p])
        for c in recip[p]:
            if len(recip_half[c] & recip[p]) > 2.0 / 3.0 * len(recip_half[c]):
                members |= recip_half[c]
        r_star[p, list(members)] = True
    r_size = r_star.sum(1)
    w1, c1 = time.perf_counter(), time.process_time()
    out = np.zeros((n_queries, ng))
    for i in range(n_queries):
        paths = d_qg[i][:, None] + lam * d_gg  # (t, j): q -> g_t -> g_j
        d_s = np.partition(paths, top_k - 1, axis=0)[:top_k].mean(axis=0)
        n_c = np.argsort(d_s)[:k_q]
        inter = r_star[:, n_c].sum(axis=1)
        d_m = 1.0 - inter / (k_q + r_size - inter)
        out[i] = alpha * d_s + (1 - alpha) * d_m
    return out, (w1 - w0, c1 - c0), (time.perf_counter() - w1, time.process_time() - c1)


# ----------------------------------------------------------------------------- worker


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _consume(stream, path: str | None) -> None:
    """Drain a (rows, block) stream, appending the blocks to a raw float32 file (not kept in RAM)."""
    with open(path, "wb") if path else open(os.devnull, "wb") as fh:
        for _, block in stream:
            if path:
                fh.write(block.numpy().astype(np.float32).tobytes())


def _worker(spec: dict) -> None:
    import torch

    from vireid.rerank import k_reciprocal_rerank, k_reciprocal_stream, original_distance_matrix, sim_rerank, sim_stream
    from vireid.rerank.original_distance import augmented_pair, distance_tiles

    torch.set_num_threads(spec["threads"])
    qf, gf = make_features(spec["n"], spec["dim"], spec["query_fraction"], spec["seed"])
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    kr, sim = spec["k_reciprocal"], spec["sim"]
    reference = spec["impl"] == "reference"
    result: dict = {"est": False}
    # Warm up (lazy library initialisation must not count as the method's memory).
    tiny_q, tiny_g = make_features(30, 8, 0.2, 1)
    k_reciprocal_rerank(tiny_q, tiny_g, device=device)
    sim_rerank(tiny_q, tiny_g, device=device)
    reference_re_ranking(original_distance_matrix(tiny_q, tiny_g), len(tiny_q), 20, 6, 0.3)
    straightforward_sim(tiny_q, tiny_g, len(tiny_q), **sim)
    if reference and spec["method"] == "k-reciprocal":
        original = np.load(spec["original"])  # vireid's exact distance values, saved by its run
    base = _peak_rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    w0, c0 = time.perf_counter(), time.process_time()
    out = None
    if spec["impl"] == "gemm":  # the floor: the original-distance tiles alone (half of an N x N x D GEMM)
        for _ in distance_tiles(augmented_pair(qf, gf, device), spec["chunk_size"]):
            pass
    elif spec["method"] == "k-reciprocal" and not reference:  # streamed: no nq x ng matrix in memory
        _consume(k_reciprocal_stream(qf, gf, chunk_size=spec["chunk_size"], device=device, **kr), spec["out"])
    elif spec["method"] == "k-reciprocal":
        out = reference_re_ranking(original, len(qf), kr["k1"], kr["k2"], kr["lambda_value"])
    elif not reference:
        _consume(sim_stream(qf, gf, device=device, **sim), spec["out"])
    else:
        m = min(spec["queries"] or len(qf), len(qf))
        out, setup, loop = straightforward_sim(qf, gf, m, **sim)
    if cuda:
        torch.cuda.synchronize()
    result["wall_s"], result["cpu_s"] = time.perf_counter() - w0, time.process_time() - c0
    result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb() - base
    result["process_peak_mb"] = _peak_rss_mb()
    if reference and spec["method"] == "sim" and m < len(qf):  # linear in the queries: extrapolate
        scale = len(qf) / m
        result["wall_s"], result["cpu_s"] = setup[0] + loop[0] * scale, setup[1] + loop[1] * scale
        result["est"] = True
    if reference and spec["method"] == "k-reciprocal":
        result["peak_mb"] += original.nbytes / 2**20  # its dense input counts too
        # The reference pipeline's own dense distance (reid-strong-baseline: torch addmm, float32).
        x = torch.from_numpy(np.concatenate([qf, gf]))
        w0, c0 = time.perf_counter(), time.process_time()
        sq = x.pow(2).sum(dim=1, keepdim=True)
        dense = (sq + sq.T).addmm_(x, x.T, beta=1, alpha=-2).numpy()
        result["dist_wall_s"], result["dist_cpu_s"] = time.perf_counter() - w0, time.process_time() - c0
        del dense
    if out is not None:
        np.asarray(out, dtype=np.float32).tofile(spec["out"])
    if spec["impl"] == "vireid" and spec["method"] == "k-reciprocal" and spec.get("save_original"):
        np.save(spec["original"], original_distance_matrix(qf, gf, chunk_size=spec["chunk_size"]))
    print(json.dumps(result))


def _cli_worker(spec: dict) -> None:
    """``vireid evaluate-features --rerank k-reciprocal`` end to end in this process (torch import
    included in the peak), on an MSMT17-shaped manifest problem written by :func:`_write_cli_problem`."""
    import contextlib
    import io

    from vireid.cli import main as cli_main

    argv = ["evaluate-features", spec["feats"], "--dataset", "manifest", "--root", spec["manifest"],
            "--rerank", "k-reciprocal", "--json"]
    buf = io.StringIO()
    w0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(argv)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result = json.loads(buf.getvalue())
    print(json.dumps({"rc": rc, "wall_s": wall, "cpu_s": cpu, "peak_mb": _peak_rss_mb(), "mean": result["mean"],
                      "argv": argv}))


def _write_cli_problem(folder: str, nq: int, ng: int, dim: int, seed: int) -> tuple[str, str]:
    """MSMT17-shaped data: ``nq`` queries, ``ng`` gallery, 3,060 identities per 93,820 images, 15 cameras;
    clustered L2-normalised float32 features (FEATS.npz) and a manifest CSV (no images needed). The
    identity centres' scale shrinks as (512 / dim)^(1/4), so that a larger ``dim`` is not an easier problem
    (at 0.35 for every dim, D = 2048 ranks every query right)."""
    rng = np.random.default_rng(seed)
    n = nq + ng
    n_ids = max(2, n * 3060 // 93820)
    ids, cams = rng.integers(0, n_ids, n), rng.integers(1, 16, n)
    x = np.float32(0.35 * (512 / dim) ** 0.25) * rng.standard_normal((n_ids, dim), dtype=np.float32)[ids]
    x += rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    paths = np.array([f"img/{i:06d}.jpg" for i in range(n)])
    feats, manifest = f"{folder}/feats.npz", f"{folder}/manifest.csv"
    np.savez(feats, features=x, paths=paths)
    with open(manifest, "w") as fh:
        fh.write("path,identity,camera,modality,split\n")
        for i in range(n):
            fh.write(f"{paths[i]},{ids[i]},{cams[i]},visible,{'query' if i < nq else 'gallery'}\n")
    return feats, manifest


def _run(spec: dict) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(spec["threads"])
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    flag = "--cli-worker" if spec.get("cli") else "--worker"
    proc = subprocess.run([sys.executable, __file__, flag, json.dumps(spec)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed for {spec['method']} {spec['impl']} N={spec['n']}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 5000, 10000],
                        help="N = nq + ng (none: only the --cli run)")
    parser.add_argument("--methods", nargs="+", default=["k-reciprocal", "sim"], choices=["k-reciprocal", "sim"])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--query-fraction", type=float, default=0.2, help="nq / N (default 0.2: 1:4)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads in every run (default 1)")
    parser.add_argument("--device", default="cpu", help="device of the vireid runs (default cpu)")
    parser.add_argument("--chunk-size", type=int, default=2048, help="k-reciprocal tile side")
    parser.add_argument(
        "--sim-baseline-queries", type=int, default=50,
        help="run the SIM baseline on the first Q queries only when nq > Q, extrapolating its time",
    )
    parser.add_argument(
        "--skip-reference-above", type=int, default=10000,
        help="no k-reciprocal reference above this N (it holds several dense N x N matrices)",
    )
    parser.add_argument("--floor", action="store_true", help="also time the k-reciprocal distance tiles alone")
    parser.add_argument("--cli", type=int, nargs=2, metavar=("NQ", "NG"),
                        help="also run `vireid evaluate-features --rerank k-reciprocal` end to end on an "
                        "MSMT17-shaped problem (MSMT17: 11659 82161)")
    parser.add_argument("--plot-dir", help="write scaling_<method>.png and rerank_rows.json here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cli-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return 0
    if args.cli_worker:
        _cli_worker(json.loads(args.cli_worker))
        return 0

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    load_before = os.getloadavg()
    k_rec = {"k1": 20, "k2": 6, "lambda_value": 0.3}
    sim = {"lam": 1.0, "top_k": 3, "k_q": 10, "k_g": 10, "alpha": 0.5}
    rows, failures, curve = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            for n in args.sizes:
                nq = int(round(n * args.query_fraction))
                with_reference = method == "sim" or n <= args.skip_reference_above
                base = {
                    "method": method, "n": n, "dim": args.dim, "query_fraction": args.query_fraction,
                    "seed": args.seed, "threads": args.threads, "chunk_size": args.chunk_size,
                    "k_reciprocal": k_rec, "sim": sim, "queries": None, "original": f"{tmp}/original.npy",
                }
                ours = _run({**base, "impl": "vireid", "device": args.device, "save_original": with_reference,
                             "out": f"{tmp}/ours.f32" if with_reference else None})
                curve.append({"method": method, "series": "vireid (streamed)", "n": n, "seconds": ours["cpu_s"],
                              "peak_mb": ours["peak_mb"], "estimated": False})
                label = f"{n} ({nq}+{n - nq})"
                if method == "k-reciprocal" and args.floor:
                    floor = _run({**base, "impl": "gemm", "device": args.device, "out": None})
                    curve.append({"method": method, "series": "floor: distance tiles alone (N^2 D GEMM / 2)",
                                  "n": n, "seconds": floor["cpu_s"], "peak_mb": None})
                    rows.append((method, label, "floor: distance tiles GEMM alone", floor, ours, None, ""))
                if not with_reference:
                    rows.append((method, label, "vireid (streamed)", ours, None, None,
                                 "reference skipped: its dense N x N matrices do not fit"))
                    continue
                ours_out = np.fromfile(f"{tmp}/ours.f32", dtype=np.float32).reshape(nq, n - nq)
                queries = args.sim_baseline_queries if method == "sim" and nq > args.sim_baseline_queries else None
                ref = _run({**base, "impl": "reference", "device": "cpu", "queries": queries, "out": f"{tmp}/ref.f32"})
                core = dict(ref)
                if method == "k-reciprocal":  # total = the reference core + its own dense distance
                    ref["wall_s"] += ref["dist_wall_s"]
                    ref["cpu_s"] += ref["dist_cpu_s"]
                ref_out = np.fromfile(f"{tmp}/ref.f32", dtype=np.float32).reshape(-1, n - nq)
                diff = np.abs(ours_out[: len(ref_out)] - ref_out)
                max_diff, n_bad = float(diff.max()), int((diff > 1e-5).sum())
                if n_bad:
                    failures.append(f"{method} N={n}: {n_bad} entries differ by more than 1e-5")
                checked = f"first {len(ref_out)} query rows" if queries else "all rows"
                ref_name = {
                    "k-reciprocal": "reference re_ranking + dense distance",
                    "sim": "per-query numpy float64",
                }[method]
                curve.append({"method": method, "series": ref_name, "n": n, "seconds": ref["cpu_s"],
                              "peak_mb": ref["peak_mb"], "estimated": ref["est"]})
                rows.append((method, label, "vireid (streamed)", ours, None, None, ""))
                note = f"max abs diff {max_diff:.1e} over {checked}; {n_bad} entries > 1e-5"
                if method == "k-reciprocal":
                    note += (
                        f"; without the dense distance ({ref['dist_wall_s']:.2f} s): {core['wall_s']:.2f} s, "
                        f"{core['wall_s'] / ours['wall_s']:.1f}x / {core['cpu_s'] / ours['cpu_s']:.1f}x"
                    )
                rows.append((method, label, ref_name + (" (est.)" if ref["est"] else ""), ref, ours, max_diff, note))
        cli = None
        if args.cli:
            cli_nq, cli_ng = args.cli
            feats, manifest = _write_cli_problem(tmp, cli_nq, cli_ng, args.dim, args.seed)
            cli = _run({"cli": True, "threads": args.threads, "feats": feats, "manifest": manifest,
                        "method": "cli", "impl": "vireid", "n": cli_nq + cli_ng})
            curve.append({"method": "k-reciprocal", "series": "vireid evaluate-features CLI (whole process)",
                          "n": cli_nq + cli_ng, "seconds": cli["cpu_s"], "peak_mb": cli["peak_mb"]})

    print(f"\n`{command}` (torch threads = {args.threads}, device = {args.device}, D = {args.dim}; "
          f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f})\n")
    if rows:
        print("| method | N (nq+ng) | implementation | wall s | CPU s | peak MB | vireid speed-up (wall / CPU) | notes |")
        print("|---|---|---|---:|---:|---:|---:|---|")
    for method, label, impl, res, ours, _, note in rows:
        speed = "" if ours is None else f"{res['wall_s'] / ours['wall_s']:.1f}x / {res['cpu_s'] / ours['cpu_s']:.1f}x"
        if impl.startswith("floor"):
            speed = f"vireid / floor: {ours['wall_s'] / res['wall_s']:.2f}x / {ours['cpu_s'] / res['cpu_s']:.2f}x"
        times = [f"{res['wall_s']:.2f}", f"{res['cpu_s']:.2f}", f"{res['peak_mb']:.0f}"]
        cells = [method, label, impl, *times, speed, note]
        print("| " + " | ".join(cells) + " |")
    if cli is not None:
        m = cli["mean"]
        print(f"\n`vireid evaluate-features --rerank k-reciprocal` (manifest, {args.cli[0]:,} queries x "
              f"{args.cli[1]:,} gallery, D = {args.dim}, clustered features, image-level CMC, same-id-same-camera "
              f"excluded; whole process, torch import included): wall {cli['wall_s']:.0f} s, CPU {cli['cpu_s']:.0f} s, "
              f"peak RSS {cli['peak_mb']:.0f} MiB; rank-1 {m['rank1']:.2f}, mAP {m['mAP']:.2f}, mINP {m['mINP']:.2f}")
    if args.plot_dir:
        from scaling_plot import plot_scaling

        Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
        Path(args.plot_dir, f"rerank_rows_{'_'.join(args.methods)}.json").write_text(json.dumps(curve, indent=1))
        titles = {"k-reciprocal": "k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3), D = %d, nq:ng = 1:4",
                  "sim": "SIM re-ranking (lambda=1, K=3, k_q=k_g=10, alpha=0.5), D = %d, nq:ng = 1:4"}
        for method in args.methods:
            plot_scaling(Path(args.plot_dir, f"scaling_{method.replace('-', '_')}.png"), titles[method] % args.dim,
                         [r for r in curve if r["method"] == method],
                         note=f"one thread, same run; load {load_before[0]:.1f}; hollow = extrapolated")
    for failure in failures:
        print(f"\nMISMATCH: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
