"""MSCLNet: Zhang et al., "Modality Synergy Complement Learning with Cascaded Aggregation for
Visible-Infrared Person Re-Identification", ECCV 2022 (seeds/001 §7; METHODS.md §10).

- :mod:`.model`: per-sample instance normalisation, the Mogrifier-LSTM synergy feature over 6
  stripes, the modality complement parts (model ``msclnet``); the readings the equations force.
- :mod:`.losses`: L_id(f^s), L_t, L_div (clamped), L_local ((1 - cos) reading), L_global, and the
  cascaded aggregation L_sub / L_intra / bounded L_inter (sub-class = (identity, camera); on RegDB
  the sub-classes are the modalities).
- Recipes: ``configs/msclnet_sysu.yaml``, ``configs/msclnet_regdb.yaml`` (paper-scale),
  ``configs/msclnet_synthetic.yaml`` (CPU).
"""

from vireid.methods.msclnet.losses import (CascadeInter, CascadeIntra, CascadeSubclass, Diversity, GlobalComplement,
                                           LocalComplement, ModalityIdentity, SynergyIdentity)
from vireid.methods.msclnet.model import MSCLNet, MogrifierLSTMCell
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="msclnet",
    paper="Zhang et al., Modality Synergy Complement Learning with Cascaded Aggregation for Visible-Infrared "
          "Person Re-Identification, ECCV 2022",
    seed="seeds/001 §7",
    reference="METHODS.md §10",
    recipes=("msclnet_sysu.yaml", "msclnet_regdb.yaml", "msclnet_synthetic.yaml"),
    status="implemented, tested (every loss against hand-worked numbers); trained on synthetic data, see README",
    models={"msclnet": MSCLNet},
    losses={"msclnet_synergy_id": SynergyIdentity, "msclnet_modality_id": ModalityIdentity,
            "msclnet_diversity": Diversity, "msclnet_local": LocalComplement, "msclnet_global": GlobalComplement,
            "msclnet_subclass": CascadeSubclass, "msclnet_intra": CascadeIntra, "msclnet_inter": CascadeInter},
))

__all__ = ["METHOD", "MSCLNet", "MogrifierLSTMCell"]
