"""Hi-CMD: Hierarchical Cross-Modality Disentanglement, Choi et al., CVPR 2020 (seeds/001 §9;
METHODS.md §12).

- :mod:`.networks`: the ID-PIG parts: prototype encoder ``E_p``, attribute encoder ``E_a``
  (``a^s``, ``a^c``, ``a^p``), the AdaIN decoder ``G``, the PatchGAN discriminators.
- :mod:`.model`: :class:`HiCMD`, generator + hierarchical feature learning (HFL) from the
  ID-discriminative codes ``p`` and ``a^s`` only; in training it swaps the ID-excluded codes of each
  visible/infrared pair of the batch.
- :mod:`.losses`: ``L_cross``, ``L_same``, ``L_cycle``, ``L_code`` (their recipe weights are
  lambda_1..4 of ``L_recon``), ``L_kl``, ``L_adv`` (the generator's side; the loss owns the
  per-modality discriminators), and the re-ID loss on the generated images.
- :mod:`.trainer`: :class:`HiCMDTrainer` (``trainer: hicmd``): a discriminator step, then the
  generator/HFL step, every iteration; the discriminators' optimiser is saved for ``--resume``.
- :mod:`.sheet`: the contact sheet of swaps (``scripts/hicmd_swap_sheet.py``).
- Recipes: ``configs/hicmd_sysu.yaml`` (paper-scale), ``configs/hicmd_synthetic.yaml`` (CPU); the grid
  ``configs/grids/hicmd_synthetic.yaml`` (with and without generated data, 3 seeds).
"""

from vireid.methods.hicmd.losses import (CodeReconstruction, CrossReconstruction, CycleReconstruction,
                                         GeneratedIdentity, HiCMDAdversarial, KLDivergence, SameReconstruction)
from vireid.methods.hicmd.model import HiCMD
from vireid.methods.hicmd.trainer import HiCMDTrainer
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="hicmd",
    paper="Choi et al., Hi-CMD: Hierarchical Cross-Modality Disentanglement for Visible-Infrared Person "
          "Re-Identification, CVPR 2020",
    seed="seeds/001 §9",
    reference="METHODS.md §12",
    recipes=("hicmd_sysu.yaml", "hicmd_synthetic.yaml"),
    status="implemented, tested; 3-seed synthetic table in the README (the attribute-code collapse fixed: "
           "L_code's target detached, He init + LeakyReLU in E_a, L_code weight 0.1 in the CPU recipe; the "
           "swap sheet's columns differ, but at 120 CPU steps L_cross does not clearly fall and generated "
           "data makes no measurable difference)",
    models={"hicmd": HiCMD},
    losses={"hicmd_cross": CrossReconstruction, "hicmd_same": SameReconstruction,
            "hicmd_cycle": CycleReconstruction, "hicmd_code": CodeReconstruction, "hicmd_kl": KLDivergence,
            "hicmd_adv": HiCMDAdversarial, "hicmd_generated_id": GeneratedIdentity},
    trainers={"hicmd": HiCMDTrainer},
))

__all__ = ["METHOD", "HiCMD", "HiCMDTrainer", "CodeReconstruction", "CrossReconstruction", "CycleReconstruction",
           "GeneratedIdentity", "HiCMDAdversarial", "KLDivergence", "SameReconstruction"]
