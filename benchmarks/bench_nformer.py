"""Benchmark NFormer's test-time refinement: the chunked refiner (``vireid.methods.nformer``) vs a
dense implementation holding the (h, N, N) affinity, mask and softmax of every block.

Both run the same randomly initialised encoder (CNN embedding D = 512 -> d = 256, 4 blocks, 2
heads, m = 5 landmarks, k = 20; the cost does not depend on the weights) on the same features with
the same landmarks; the output difference is reported. Each measurement runs in a fresh
subprocess; peak memory is the growth of its peak RSS (``resource.getrusage``) over the run.
Features: clustered, L2-normalised (about 10 images per identity), queries:gallery = 1:4.

    python benchmarks/bench_nformer.py                            # N = 2000, 5000 both; 10000 chunked
    python benchmarks/bench_nformer.py --sizes 2000 --dense-max 2000
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np


def make_features(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, max(1, n // 10), size=n)
    x = rng.normal(size=(max(1, n // 10), dim))[ids] + 0.8 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dense_refine(model, z, modality, landmarks, k):  # noqa: ANN001, ANN201  (benchmark helper)
    """The encoder with full (h, N, N) matrices per block (top-k by a full sort of each row)."""
    import torch
    import torch.nn.functional as F

    from vireid.methods.nformer.attention import landmark_factors

    enc = model.nformer
    x = enc.proj(F.normalize(z, dim=1) * math.sqrt(z.shape[1]))  # unit rows scaled by sqrt(D)
    n = x.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    for block, lm in zip(enc.blocks, landmarks):
        q, kk, v = block.split(block.ln1(x) if block.pre_norm else x)
        q_t, k_t = landmark_factors(q, kk, lm)
        a = q_t @ k_t.transpose(1, 2) / math.sqrt(q.shape[-1])  # (h, N, N)
        mk = torch.zeros_like(a, dtype=torch.bool).scatter_(2, a.topk(k, dim=2).indices, True)
        m = (mk & mk.transpose(1, 2)) | eye
        w = torch.softmax(a.masked_fill(~m, float("-inf")), dim=2)  # (h, N, N)
        att = (w @ v).permute(1, 0, 2).reshape(n, -1)
        del a, mk, m, w
        if block.pre_norm:
            h = x + block.proj(att)
            x = h + block.ff(block.ln2(h))
        else:
            h = block.ln1(x + block.proj(att))
            x = block.ln2(h + block.ff(h))
    return F.normalize(enc.bnneck(enc.final_norm(x)), dim=1)


def child(n: int, impl: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from vireid.methods.nformer.model import NFormerNet
    from vireid.methods.nformer.refine import refine_features

    torch.manual_seed(0)
    model = NFormerNet(0, arch="resnet18", dim=256, blocks=4, heads=2, landmarks=5, topk=20, dropout=0.0).eval()
    z = torch.from_numpy(make_features(n, 512, 0))
    modality = torch.cat([torch.zeros(n // 5, dtype=torch.long), torch.ones(n - n // 5, dtype=torch.long)])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        if impl == "chunked":
            out = refine_features(model, z, modality, seed=3, chunk_size=1024)
        else:
            gen = torch.Generator().manual_seed(3)
            lms = [torch.randperm(n, generator=gen)[:5] for _ in model.nformer.blocks]
            out = dense_refine(model, z, modality, lms, 20)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0
    np.save(f"/tmp/bench_nformer_{impl}_{n}.npy", out.numpy())
    return {"n": n, "impl": impl, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--dense-max", type=int, default=5000, help="largest N run densely (memory grows as N^2)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", nargs=2, metavar=("N", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.threads)))
        return
    print(f"torch threads = {args.threads}, D = 512 -> d = 256, 4 blocks, 2 heads, m = 5, k = 20\n")
    print("| N | implementation | wall s | CPU s | peak MB | dense / chunked (CPU, peak) | max abs diff |")
    print("|---:|---|---:|---:|---:|---|---:|")
    for n in args.sizes:
        rows = {}
        for impl in ("chunked", "dense") if n <= args.dense_max else ("chunked",):
            res = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", str(n), impl],
                                 capture_output=True, text=True, check=True)
            rows[impl] = json.loads(res.stdout.strip().splitlines()[-1])
        c = rows["chunked"]
        print(f"| {n} | chunked (vireid) | {c['wall_s']:.2f} | {c['cpu_s']:.2f} | {c['peak_mb']:.0f} | | |")
        if "dense" in rows:
            d = rows["dense"]
            diff = float(np.abs(np.load(f"/tmp/bench_nformer_chunked_{n}.npy")
                                - np.load(f"/tmp/bench_nformer_dense_{n}.npy")).max())
            print(f"| {n} | dense (h, N, N) | {d['wall_s']:.2f} | {d['cpu_s']:.2f} | {d['peak_mb']:.0f} | "
                  f"{d['cpu_s'] / c['cpu_s']:.2f}x, {d['peak_mb'] / max(c['peak_mb'], 1):.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
