"""MRDA: mask reconstruction and dynamic attention, Zhang et al., "Cross-Modal Person
Re-Identification Based on Mask Reconstruction with Dynamic Attention", Laser & Optoelectronics
Progress (seeds/003 Eq. 1-23; METHODS.md §1).

- :mod:`.model`: MRM (Eq. 1-6), two-stream ResNet with stages 0-1 specific (Eq. 5-8), the pooler.
- :mod:`.attention`: DAM (Eq. 9-17) and the Table-1 alternatives BAM, CBAM, IWPAM.
- :mod:`.losses`: identity over originals and masked copies (Eq. 18), hetero-centre triplet
  (Eq. 19-20, corrected anchors), correlation consistency (Eq. 21-22), region centre (Eq. 7).
- Recipes: ``configs/mrda_sysu.yaml``, ``configs/mrda_regdb.yaml`` (paper), ``configs/mrda_synthetic.yaml``
  (CPU); the ablation grid ``configs/grids/mrda_ablation.yaml``.
"""

from vireid.methods.mrda.losses import CorrelationConsistency, HeteroCentreTriplet, MRDAIdentity, RegionCentre
from vireid.methods.mrda.model import MRDA
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="mrda",
    paper="Zhang et al., Cross-Modal Person Re-Identification Based on Mask Reconstruction with Dynamic "
          "Attention, Laser & Optoelectronics Progress (DOI 10.3788/LOP231742)",
    seed="seeds/003",
    reference="METHODS.md §1",
    recipes=("mrda_sysu.yaml", "mrda_regdb.yaml", "mrda_synthetic.yaml"),
    status="implemented, tested; 7-variant synthetic ablation in the README (MRM helps; DAM does not at that budget)",
    models={"mrda": MRDA},
    losses={"mrda_id": MRDAIdentity, "hetero_centre_triplet": HeteroCentreTriplet,
            "correlation_consistency": CorrelationConsistency, "region_centre": RegionCentre},
))

__all__ = ["METHOD", "MRDA", "CorrelationConsistency", "HeteroCentreTriplet", "MRDAIdentity", "RegionCentre"]
