"""CM-LSP + BN-GE: Wang, Li, Ma, "Cross-modal Local Shortest Path and Global Enhancement for
Visible-Thermal Person Re-Identification" (seeds/001 §6; METHODS.md §9).

- :mod:`.model`: AGW-style two-stream attention ResNet with the global branch (GeM, BNNeck), the
  BN-GE enhancement branch (f^eg = FC(BN(f^g))) and h horizontal stripes (1x1 reduction, one
  classifier per stripe).
- :mod:`.local`: the per-stripe normalised L1 stripe distance d_ij and the DP local shortest path S_hh
  (§6 "3.2"; compared with AlignedReID's public ``shortest_dist`` in its docstring).
- :mod:`.losses`: ``cmlsp_id`` (L_id^g + L_id^eg + L_id^lv + L_id^lt), ``cmlsp_centre_triplet``
  (L_Tri^g + L_Tri^eg, the cross-modal centre triplet), ``cmlsp_local`` (L_PA^vt: the AlignedReID-style
  S_hh / h reading or the literal stripe-wise one).
- Recipes: ``configs/cmlsp_sysu.yaml``, ``configs/cmlsp_regdb.yaml`` (paper), ``configs/cmlsp_synthetic.yaml`` (CPU).
"""

from vireid.methods.cmlsp.local import local_path_distances, shortest_path, stripe_distances
from vireid.methods.cmlsp.losses import CMLSPCentreTriplet, CMLSPIdentity, CMLSPLocal
from vireid.methods.cmlsp.model import CMLSP
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="cmlsp",
    paper="Wang, Li, Ma, Cross-modal Local Shortest Path and Global Enhancement for Visible-Thermal Person "
          "Re-Identification",
    seed="seeds/001 §6",
    reference="METHODS.md §9",
    recipes=("cmlsp_sysu.yaml", "cmlsp_regdb.yaml", "cmlsp_synthetic.yaml"),
    status="implemented, tested (losses vs hand-worked numbers, DP vs brute force over monotone paths)",
    models={"cmlsp": CMLSP},
    losses={"cmlsp_id": CMLSPIdentity, "cmlsp_centre_triplet": CMLSPCentreTriplet, "cmlsp_local": CMLSPLocal},
))

__all__ = ["CMLSP", "METHOD", "CMLSPCentreTriplet", "CMLSPIdentity", "CMLSPLocal", "local_path_distances",
           "shortest_path", "stripe_distances"]
