"""The Python API: ``vireid.load(run_dir | checkpoint | model.onnx)`` -> an embedder.

Example (a run trained by ``make demo``)::

    import vireid
    model = vireid.load("demo/run")                                  # best.pt of the run, CPU, float32
    feats = model.embed(["a.jpg", "b.png"], modality="infrared")     # (2, D) float32, L2-normalised
    hits = model.search("demo/gallery", "a.jpg", modality="infrared", k=5)
    for hit in hits:
        print(hit.rank, hit.score, hit.path, hit.camera)

Images may be paths, encoded bytes, PIL images, NumPy arrays (uint8 0-255 or float 0-1, HWC or
CHW) or tensors; the run's own test transform is applied (see :mod:`vireid.retrieval.preprocess`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from vireid.errors import ConfigError
from vireid.retrieval.embedder import Embedder, OnnxEmbedder, TorchEmbedder
from vireid.retrieval.preprocess import Preprocessing

logger = logging.getLogger(__name__)

__all__ = ["Embedder", "load", "load_run_model"]


def load_run_model(run: str | Path, checkpoint: str = "best", overrides: list[str] | None = None):
    """(model on CPU in eval mode, its Preprocessing, model name, run config) of a trained run.

    ``run`` is a run folder (``checkpoint`` = ``best``/``last``/a path) or a checkpoint file
    inside a run folder (its ``config.yaml`` beside it).
    """
    import vireid.methods  # noqa: F401  (registers the built-in methods' models)
    from vireid.commands._common import load_run_config
    from vireid.engine.evaluate import load_trained_model, resolve_checkpoint
    from vireid.engine.runtime import Runtime, resolve_device

    run = Path(run)
    if run.is_file():
        run, checkpoint = run.parent, str(run)
    cfg = load_run_config(run, overrides)
    model, _ = load_trained_model(cfg, resolve_checkpoint(run, checkpoint), Runtime(resolve_device("cpu")))
    spec = Preprocessing(height=cfg.data.height, width=cfg.data.width)
    return model.float().eval(), spec, cfg.model.name, cfg


def load(source: str | Path, *, device: str = "cpu", checkpoint: str = "best", batch_size: int = 64) -> Embedder:
    """An embedder with ``.embed(images, modality)`` and ``.search(index, image, modality, k=...)``.

    ``source``: a run folder written by ``vireid train`` (its ``best.pt`` unless ``checkpoint``
    says ``last`` or a path), a checkpoint file inside a run folder, or an ``.onnx`` file written
    by ``vireid export`` (run by ONNX Runtime on the CPU; ``device`` must then be ``cpu``).
    """
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        if device != "cpu":
            raise ConfigError(f"vireid.load: ONNX models run on the CPU here, got device={device!r}")
        return OnnxEmbedder(path, batch_size=batch_size)
    if not path.exists():
        raise ConfigError(f"vireid.load: {path} does not exist (expected a run folder, checkpoint or .onnx file)")
    model, spec, name, _ = load_run_model(path, checkpoint)
    return TorchEmbedder(model, spec, model_name=name, device=device, batch_size=batch_size)
