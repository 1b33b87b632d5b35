"""Images/s and peak memory of one AGW training step: float32 vs channels_last vs bf16 autocast.

One step = forward (under autocast for the bf16 variants) + label-smoothed identity loss + WRT
on the pre-BN feature + backward + SGD (Nesterov, momentum 0.9, wd 5e-4; AdamW for the ``adamw``
variants, the demo recipes' optimiser) step, on a synthetic
P x (K visible + K infrared) batch, as the trainer runs it. Each variant runs in its own
subprocess so the CPU peak (``ru_maxrss``) belongs to it alone; on CUDA the peak is
``torch.cuda.max_memory_allocated``. Times are the median of ``--steps`` steps after
``--warmup`` steps; ratios are against the first variant listed, in the same run. "first step" is
the wall time of the first warm-up step: for the compile variants it holds the compilation
(Dynamo tracing + Inductor code generation and C++ builds), a real cost for a short run. With
``--threads N`` the children run with ``OMP_NUM_THREADS=N`` and ``TORCHINDUCTOR_COMPILE_THREADS=N``
(Inductor otherwise compiles in a pool of worker processes). ``--phases`` also times forward + loss,
backward and the optimiser step apart (steadier than the whole step on a shared machine for the
optimiser variants); ``--profile N`` prints the top operators of one extra step.

    python benchmarks/bench_train_step.py                      # AGW-ResNet-50, 32 x 288x144
    python benchmarks/bench_train_step.py --arch resnet18 --batch 8 --height 128 --width 64
    python benchmarks/bench_train_step.py --arch resnet18 --batch 64 --height 64 --width 32 --num-classes 150 \
        --steps 30 --warmup 3 --threads 1 --phases --variants bf16+cl+adamw,bf16+cl+fused-adamw   # the demo's step
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {  # name -> (channels_last, bf16 autocast)
    "float32": (False, False),
    "channels_last": (True, False),
    "bf16": (False, True),
    "bf16+channels_last": (True, True),
    # issue 17 candidates, each on top of bf16 + channels_last (the recipes' setting):
    "bf16+cl+foreach-sgd": (True, True),  # SGD(foreach=True): one multi-tensor kernel per op
    "bf16+cl+fused-sgd": (True, True),  # SGD(fused=True)
    "bf16+cl+adamw": (True, True),  # AdamW (the demo recipes' optimiser), torch's CPU default: a loop over tensors
    "bf16+cl+foreach-adamw": (True, True),  # AdamW(foreach=True)
    "bf16+cl+fused-adamw": (True, True),  # AdamW(fused=True)
    "bf16+cl+compile": (True, True),  # torch.compile of the model and of the summed losses
    "bf16+cl+compile-autotune": (True, True),  # the same, mode="max-autotune-no-cudagraphs"
}
EXTRA_VARIANTS = ("bf16+cl+foreach-sgd", "bf16+cl+fused-sgd", "bf16+cl+adamw", "bf16+cl+foreach-adamw",
                  "bf16+cl+fused-adamw", "bf16+cl+compile", "bf16+cl+compile-autotune")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_variant(args: argparse.Namespace, variant: str) -> dict[str, float]:
    """Time ``args.steps`` training steps of one variant in this process."""
    import torch

    import vireid.methods  # noqa: F401  registers the built-in methods' models and losses
    from vireid.losses import build_loss
    from vireid.models import create_model
    from vireid.types import Batch

    if args.threads:
        torch.set_num_threads(args.threads)
    variant = variant.split("#")[0]  # "name#2": the same variant again (to see the run-to-run noise)
    channels_last, bf16 = VARIANTS[variant]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model("agw", num_classes=args.num_classes, arch=args.arch).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ce, wrt = build_loss("cross_entropy"), build_loss("wrt")
    kernel = {"foreach": True} if "foreach-" in variant else {"fused": True} if "fused-" in variant \
        else {"foreach": False}  # torch's default on CPU (on CUDA it is foreach)
    if variant.endswith("adamw"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4, **kernel)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                    **kernel)
    forward = model

    def losses(out, batch):
        return ce(out, batch) + wrt(out, batch)

    if "compile" in variant:
        mode = "max-autotune-no-cudagraphs" if variant.endswith("autotune") else None
        forward = torch.compile(model, mode=mode)
        losses = torch.compile(losses, mode=mode)

    k = args.batch // 8 or 1  # 4 identities x (k visible + k infrared)
    pids = torch.arange(args.batch, device=device) // (2 * k) % args.num_classes
    modality = (torch.arange(args.batch, device=device) // k) % 2
    images = torch.randn(args.batch, 3, args.height, args.width, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    batch = Batch(images, pids, torch.zeros_like(pids), modality, torch.arange(args.batch, device=device))
    rss_start = _rss_mib()  # model, optimizer and batch exist; no activations, gradients or momenta yet

    phases: list[tuple[float, float, float]] = []  # (forward + loss, backward, optimiser) per step

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step() -> None:
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(batch.images, batch.modality)
        loss = losses(out, batch)
        if args.phases:  # the extra syncs on CUDA cost the overlap between phases: off by default
            sync()
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.phases:
            sync()
        t2 = time.perf_counter()
        optimizer.step()
        if args.phases:
            sync()
            phases.append((t1 - t0, t2 - t1, time.perf_counter() - t2))

    warmup_times = []  # the first step includes torch.compile's tracing and code generation
    for _ in range(args.warmup):
        t0 = time.perf_counter()
        step()
        sync()
        warmup_times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, cpu_times = [], []
    phases.clear()
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    median = statistics.median(times)
    # on a shared CPU the process CPU time per step (one thread) is steadier than the wall time
    result = {"step_s": median, "images_per_s": args.batch / median, "cpu_step_s": statistics.median(cpu_times),
              "first_step_s": warmup_times[0] if warmup_times else float("nan")}
    if phases:
        result["phases_s"] = [statistics.median(p) for p in zip(*phases)]
    if args.profile:  # one more step under torch.profiler, after the timed ones
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
            sync()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile,
                                                      max_name_column_width=50)
    if device.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        result["peak_mib"] = peak
        result["peak_over_start_mib"] = peak - rss_start
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--width", type=int, default=144)
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=395, help="SYSU-MM01 training identities")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="print the N operators with the most self CPU time in one extra profiled step")
    p.add_argument("--phases", action="store_true",
                   help="also time forward + loss, backward and the optimiser step apart (median of each)")
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if v not in EXTRA_VARIANTS),
                   help="comma-separated subset of " + ", ".join(VARIANTS)
                   + " (a '#2' suffix repeats a variant, to see the noise)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.threads:  # inductor compiles in a pool of worker processes unless told otherwise
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(args.threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.child:  # one variant, result as JSON on the last line
        if "compile" in args.child and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
            import shutil
            import tempfile

            cache = tempfile.mkdtemp(prefix="bench-inductor-")  # a cold compile: no kernels from earlier runs
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            try:
                print(json.dumps(run_variant(args, args.child)))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            return 0
        print(json.dumps(run_variant(args, args.child)))
        return 0

    variants = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in variants if v.split("#")[0] not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; valid: {list(VARIANTS)}")
    # ratios are against the first variant listed (float32 by default)
    results: dict[str, dict[str, float]] = {}
    base_cmd = [sys.executable, os.path.abspath(__file__)]
    for name in ("arch", "batch", "height", "width", "steps", "warmup", "num_classes", "device", "threads"):
        base_cmd += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.phases:
        base_cmd.append("--phases")
    if args.profile:
        base_cmd += ["--profile", str(args.profile)]
    for v in variants:
        proc = subprocess.run(base_cmd + ["--child", v], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            results[v] = {}
            continue
        results[v] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {v}: {results[v]['step_s']:.3f} s/step", file=sys.stderr)

    import torch

    base = results[variants[0]]
    print(f"AGW-{args.arch} training step, batch {args.batch} x {args.height}x{args.width}, "
          f"{args.num_classes} classes, device {args.device}, torch {torch.__version__}, "
          f"threads {args.threads or torch.get_num_threads()}, "
          f"median of {args.steps} steps after {args.warmup} warm-up\n")
    mem_col = "peak CUDA alloc (MiB)" if args.device.startswith("cuda") else "peak RSS (MiB)"
    extra = "" if args.device.startswith("cuda") else " peak over model+batch (MiB) |"
    print(f"| variant | s/step | CPU s/step | images/s | speed vs {variants[0]} (wall / CPU) | {mem_col} | "
          f"memory vs {variants[0]} | first step (s) |{extra}")
    print("|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""))
    for v in variants:
        r = results[v]
        if not r:
            print(f"| {v} | failed | | | | | | |" + (" |" if extra else ""))
            continue
        row = (f"| {v} | {r['step_s']:.3f} | {r['cpu_step_s']:.3f} | {r['images_per_s']:.1f} | "
               f"{base['step_s'] / r['step_s']:.2f}x / {base['cpu_step_s'] / r['cpu_step_s']:.2f}x | "
               f"{r['peak_mib']:.0f} | {r['peak_mib'] / base['peak_mib']:.2f}x | {r['first_step_s']:.1f} |")
        if extra:
            row += f" {r['peak_over_start_mib']:.0f} |"
        print(row)
    if args.phases:
        print("\nphases (median s): forward + loss / backward / optimiser step")
        for v in variants:
            if results[v].get("phases_s"):
                print(f"- {v}: " + " / ".join(f"{t:.3f}" for t in results[v]["phases_s"]))
    for v in variants:
        if results[v].get("profile"):
            print(f"\nprofile of one {v} step (torch.profiler, self CPU time):\n```\n{results[v]['profile']}```")
    print("\ncommand: python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
