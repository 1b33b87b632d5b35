"""SAP: Semi-Attention Partition for occluded person re-ID (seeds/002 §4; METHODS.md §14): a ViT student
learns part-aware attention from a noisy semantic-partition teacher (a human parser), cooperatively
(distillation) and competitively (MAPR, SSD).

- :mod:`.targets`: the teacher's patch-level targets from a part map: part distribution ``m^``, foreground
  flag ``m_f``, ``A_patch``; the parsing teacher (ATR ids -> 8 coarse groups) and the rule-based one
  (horizontal bands, all foreground).
- :mod:`.model`: the student: ViT, learnable part proxies, proxy attention, MAPR.
- :mod:`.losses`: patch- and proxy-attention distillation with the corrected sign (``-sum target * log
  student``), SSD, the part identity loss.
- Recipes: ``configs/sap_occluded_duke.yaml`` (paper: ViT-B/16, Occluded-Duke), ``configs/sap_synthetic.yaml``
  (CPU, the synthetic Market-layout set with parsing, scored on the synthetic Occluded-REID set).
"""

from vireid.methods.registry import Method, register_method
from vireid.methods.sap.losses import SAPDistillation, SAPPartID, patch_distillation, proxy_distillation, ssd_drop_mask
from vireid.methods.sap.model import SAP
from vireid.methods.sap.targets import band_part_map, part_map_from_parsing, patch_affinity_target, patch_part_targets

METHOD = register_method(Method(
    name="sap",
    paper="Semi-Attention Partition for occluded person re-identification (thesis slides, seeds/002 §4)",
    seed="seeds/002 §4",
    reference="METHODS.md §14",
    recipes=("sap_occluded_duke.yaml", "sap_synthetic.yaml"),
    status="implemented, tested (targets and losses against hand-worked values)",
    requires_aux=("parsing",),
    aux_policy="fallback",  # the rule-based teacher (sap_distill teacher: bands), chosen for the whole run
    models={"sap": SAP},
    losses={"sap_distill": SAPDistillation, "sap_part_id": SAPPartID},
))

__all__ = ["METHOD", "SAP", "SAPDistillation", "SAPPartID", "band_part_map", "part_map_from_parsing",
           "patch_affinity_target", "patch_distillation", "patch_part_targets", "proxy_distillation",
           "ssd_drop_mask"]
