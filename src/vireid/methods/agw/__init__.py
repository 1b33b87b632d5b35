"""AGW: Attention-Generalized mean pooling with Weighted regularized triplet, the cross-modal
re-ID baseline of Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
TPAMI 2021 (seeds/001 §1; METHODS.md §3).

- :mod:`.model`: two-stream ResNet (stage 0 modality-specific), non-local blocks in stages 2-3,
  GeM pooling, BNNeck, bias-free classifier.
- Losses: label-smoothed identity + WRT (``wrt``, seeds/001 §1 Eq. "WRT"), shared with other methods,
  so they live in :mod:`vireid.losses`; the mINP metric lives in :mod:`vireid.evaluation.metrics`.
- Recipes: ``configs/agw_sysu.yaml``, ``configs/agw_regdb.yaml`` (paper), ``configs/demo_cpu.yaml`` (CPU).
"""

from vireid.methods.agw.model import AGW, agw_non_local
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="agw",
    paper="Ye et al., Deep Learning for Person Re-identification: A Survey and Outlook, TPAMI 2021",
    seed="seeds/001 §1",
    reference="METHODS.md §3",
    recipes=("agw_sysu.yaml", "agw_regdb.yaml", "demo_cpu.yaml"),
    status="implemented, tested; trained in the demo (synthetic SYSU layout: rank-1 14.13 / mAP 20.30)",
    models={"agw": AGW},
))

__all__ = ["AGW", "METHOD", "agw_non_local"]
