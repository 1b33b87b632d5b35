"""Embedding throughput on the CPU: ONNX Runtime vs PyTorch eager, same model, batch and threads.

The model is a registered re-ID model at random initialisation (throughput does not depend on the
weights), exported by :func:`vireid.retrieval.export.export_onnx`; both runtimes get the same
preprocessed float32 batch (preprocessing is not timed), mixed modalities, ``--threads`` threads.
PyTorch runs the model's own forward in fp32 under ``torch.no_grad`` (the API's path); ONNX Runtime
runs the exported graph (which computes the modality-specific stem for both streams, see
:mod:`vireid.retrieval.export`). Also prints max |diff| between the two.

    python benchmarks/bench_embed.py --model agw --arch resnet50 --height 288 --width 144 --batch 16
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import onnxruntime as ort

    import vireid.methods  # noqa: F401  (registers agw, mrda)
    from vireid.models import create_model
    from vireid.retrieval.export import export_onnx
    from vireid.retrieval.preprocess import Preprocessing

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="agw")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--width", type=int, default=144)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    params = {"arch": a.arch} | ({"non_local": True} if a.model == "agw" else {})
    model = create_model(a.model, num_classes=0, **params)
    # BatchNorm statistics of real activations (at initialisation running_var = 1 lets activations
    # grow layer after layer, far from what a trained model computes): a few train-mode passes
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, a.height, a.width), torch.arange(8) % 2)
    model.eval()
    spec = Preprocessing(height=a.height, width=a.width)
    x = torch.randn(a.batch, 3, a.height, a.width)
    mod = torch.arange(a.batch) % 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(model, spec, path, model_name=a.model)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = a.threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {"images": x.numpy(), "modality": mod.numpy()}

    def run_torch() -> np.ndarray:
        with torch.no_grad():
            return torch.nn.functional.normalize(model(x, mod).bn_features, dim=1).numpy()

    def run_ort() -> np.ndarray:
        return session.run(["embedding"], feeds)[0]

    diff = float(np.abs(run_torch() - run_ort()).max())  # also the warm-up
    times = {}
    for name, fn in (("PyTorch eager fp32", run_torch), ("ONNX Runtime fp32", run_ort)):
        fn()
        t = time.perf_counter()
        for _ in range(a.repeats):
            fn()
        times[name] = (time.perf_counter() - t) / a.repeats
    base = times["PyTorch eager fp32"]
    print(f"{a.model} ({a.arch}) {a.height}x{a.width}, batch {a.batch} (mixed modalities), {a.threads} thread(s), "
          f"{a.repeats} timed batches; max |onnx - torch| = {diff:.1e}; process peak RSS {rss_mb():.0f} MB")
    print("| runtime | images/s | ms per batch | ratio vs PyTorch eager |")
    print("|---|---|---|---|")
    for name, s in times.items():
        print(f"| {name} | {a.batch / s:.1f} | {1000 * s:.0f} | {base / s:.2f}x |")


if __name__ == "__main__":
    main()
