"""MAUM: Memory-Augmented Unidirectional Metrics, Liu et al., "Learning Memory-Augmented
Unidirectional Metrics for Cross-modality Person Re-identification", CVPR 2022 (seeds/001 §5;
METHODS.md §7).

- :mod:`.model`: two-stream ResNet (per-modality first block), GAP, BNNeck, the common, RGB-only and
  IR-only classifiers; the latter two's weights are the modality-specific proxies (MS-Proxies).
- :mod:`.memory`: the FIFO proxy memory (ring buffer in persistent buffers, restored by checkpoints).
- :mod:`.losses`: ``maum_id`` (L_common + L_RGB + L_IR, seed §5 first equation) and ``maum_metric``
  (the unidirectional RGB->IR and IR->RGB metrics with alpha and delta, seed §5 second equation,
  with the CE-only warm-up before the memories fill).
- :mod:`.trainer`: ``trainer: maum``, the default step plus telling the metric loss the epoch (its
  warm-up is counted in epochs, as the paper's).
- Recipes: ``configs/maum_sysu.yaml``, ``configs/maum_regdb.yaml`` (paper), ``configs/maum_synthetic.yaml`` (CPU).
"""

from vireid.methods.maum.losses import MAUMIdentity, MAUMUnidirectional
from vireid.methods.maum.memory import ProxyQueue
from vireid.methods.maum.model import MAUM
from vireid.methods.maum.trainer import MAUMTrainer
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="maum",
    paper="Liu, Sun, Zhu, Pei, Yang, Li, Learning Memory-Augmented Unidirectional Metrics for Cross-modality "
          "Person Re-identification, CVPR 2022",
    seed="seeds/001 §5",
    reference="METHODS.md §7",
    recipes=("maum_sysu.yaml", "maum_regdb.yaml", "maum_synthetic.yaml"),
    status="implemented, tested (losses vs hand-worked numbers, memory vs a plain queue, exact resume of the memories)",
    models={"maum": MAUM},
    losses={"maum_id": MAUMIdentity, "maum_metric": MAUMUnidirectional},
    trainers={"maum": MAUMTrainer},
))

__all__ = ["MAUM", "METHOD", "MAUMIdentity", "MAUMTrainer", "MAUMUnidirectional", "ProxyQueue"]
