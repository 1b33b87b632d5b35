"""SPOT: Structure-aware Positional Transformer, Chen et al., "Structure-Aware Positional Transformer
for Visible-Infrared Person Re-Identification", IEEE TIP 2022 (seeds/001 §4; METHODS.md §11).

- :mod:`.structure`: relation net ``F_S = N_r(S)`` over keypoint heatmaps, part masks
  ``M = sigmoid(W_theta F_S)``, part pooling ``f_i = sum M^i F / K^i``, the uniform-heatmap fallback;
- :mod:`.asr`: fusion ``F~_S = W_phi2(ReLU(W_phi1[F_I, F_S]))``, attention ``m_{j,t} = softmax_t
  K(F~_S,j)^T Q(F~_S,t)`` (standard order, METHODS.md §11), ``F_IS = sum_t m_{j,t} V(F_I,t) + BN(F_I)``;
- :mod:`.tpi`: ``F^_P = Transformer(F_P + PE)`` with sinusoidal part positions, ``F_IP`` = their mean;
- :mod:`.model`: the network and the fusion block ``F_IF = W_gamma [F_IS, F_IP]``;
- :mod:`.losses`: ``L = L_B + lambda1 L_IS + lambda2 L_IP + L_IF`` (``spot_base``, ``spot_is``,
  ``spot_ip``, ``spot_if``).
- Recipes: ``configs/spot_sysu.yaml`` (paper), ``configs/spot_synthetic.yaml`` (CPU); the grid
  ``configs/grids/spot_synthetic.yaml`` (ground-truth keypoints vs the uniform fallback).
"""

from vireid.methods.registry import Method, register_method
from vireid.methods.spot.losses import SPOTBaseLoss, SPOTFusedLoss, SPOTPartLoss, SPOTStructureLoss
from vireid.methods.spot.model import SPOT

METHOD = register_method(Method(
    name="spot",
    paper="Chen, Ye, Qi, Wu, Jiang and Lin, Structure-Aware Positional Transformer for Visible-Infrared Person "
          "Re-Identification, IEEE TIP 2022",
    seed="seeds/001 §4",
    reference="METHODS.md §11",
    recipes=("spot_sysu.yaml", "spot_synthetic.yaml"),
    status="implemented, tested; 3-seed synthetic table in the README (ground-truth keypoints vs uniform fallback)",
    requires_aux=("keypoints",),
    aux_policy="fallback",
    models={"spot": SPOT},
    losses={"spot_base": SPOTBaseLoss, "spot_is": SPOTStructureLoss, "spot_ip": SPOTPartLoss,
            "spot_if": SPOTFusedLoss},
))

__all__ = ["METHOD", "SPOT", "SPOTBaseLoss", "SPOTFusedLoss", "SPOTPartLoss", "SPOTStructureLoss"]
