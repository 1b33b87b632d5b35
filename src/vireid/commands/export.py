"""``vireid export --run D --format onnx --out model.onnx``: the retrieval embedding as an ONNX model.

Inputs ``images`` (N, 3, H, W) float32 and ``modality`` (N,) int64, dynamic batch; outputs
``embedding`` (L2-normalised) and ``features`` (raw post-BN). The preprocessing (size, mean, std,
pixel range, channel order) and the model fingerprint are written into the model's metadata.
With ``--check`` (default on) the file is run by ONNX Runtime against PyTorch on random images of
both modalities and refused if max |diff| exceeds 1e-4.
"""

from __future__ import annotations

import argparse

PARITY_TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder written by vireid train")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, or a path")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    parser.add_argument("--out", required=True, help="output file, e.g. model.onnx")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the ONNX Runtime vs PyTorch parity check")


def parity(model, spec, onnx_path: str, batch: int = 4, seed: int = 0) -> float:
    """max |ONNX - PyTorch| of the normalised embeddings on random images, mixed modalities."""
    import numpy as np

    from vireid.retrieval.embedder import OnnxEmbedder, TorchEmbedder

    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (spec.height, spec.width, 3), dtype=np.uint8) for _ in range(batch)]
    modality = [i % 2 for i in range(batch)]
    ref = TorchEmbedder(model, spec, model_name="").embed(images, modality)
    got = OnnxEmbedder(onnx_path).embed(images, modality)
    return float(np.abs(ref - got).max())


def run(args: argparse.Namespace) -> int:
    from vireid.api import load_run_model
    from vireid.retrieval.export import ExportError, export_onnx

    model, spec, name, _ = load_run_model(args.run, args.checkpoint)
    meta = export_onnx(model, spec, args.out, model_name=name)
    if args.check:
        diff = parity(model, spec, args.out)
        if diff > PARITY_TOLERANCE:
            raise ExportError(f"{args.out}: ONNX Runtime differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}")
        print(f"parity: max |onnxruntime - pytorch| = {diff:.2e} (<= {PARITY_TOLERANCE})")
    print(f"wrote {args.out}: model {name}, fingerprint {meta['vireid.fingerprint']}, "
          f"input {spec.height}x{spec.width}")
    return 0
