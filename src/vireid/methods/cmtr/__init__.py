"""CMTR: Cross-Modality Transformer, Liang et al., "CMTR: Cross-modality Transformer for
Visible-infrared Person Re-identification" (seeds/001 §2; METHODS.md §6).

- :mod:`.model`: the ViT (:mod:`vireid.models.vit`: overlapping patches, §3.1) with learnable modality
  embeddings added to every token (ME, §3.2 ``I(x^m) = LP + e^pos + e^m``), ``f = BN(V)``, the modality
  removal ``f - phi_m(e^m)`` and the subtraction option at test time.
- :mod:`.losses`: the modality-aware enhancement loss L_MAE = L_MAC (joint or per-modality centre) +
  L_MAID (through the shared identity classifier), §3.3; with ``L_ID`` (``cross_entropy``) and
  ``L_WRT`` (``wrt``): ``L = L_ID + L_WRT + lambda L_MAE`` (lambda = the two losses' weight).
- Recipes: ``configs/cmtr_sysu.yaml``, ``configs/cmtr_regdb.yaml`` (paper: ViT-B/16, local ImageNet
  weights), ``configs/cmtr_synthetic.yaml`` (CPU); the comparison grid ``configs/grids/cmtr_vs_agw.yaml``.
"""

from vireid.methods.cmtr.losses import ModalityAwareCentre, ModalityAwareID, modality_aware_centre
from vireid.methods.cmtr.model import CMTR
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="cmtr",
    paper="Liang, Jin, Gao, Liu, Feng, Wang, Li, CMTR: Cross-modality Transformer for Visible-infrared "
          "Person Re-identification (arXiv 2110.08994)",
    seed="seeds/001 §2",
    reference="METHODS.md §6",
    recipes=("cmtr_sysu.yaml", "cmtr_regdb.yaml", "cmtr_synthetic.yaml"),
    status="implemented, tested",
    models={"cmtr": CMTR},
    losses={"cmtr_mac": ModalityAwareCentre, "cmtr_maid": ModalityAwareID},
))

__all__ = ["CMTR", "METHOD", "ModalityAwareCentre", "ModalityAwareID", "modality_aware_centre"]
