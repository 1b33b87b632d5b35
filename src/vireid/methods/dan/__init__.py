"""DAN: Dual Alignment Network for cross-modal cross-domain (unsupervised) adaptation, Fu et al.,
TCSVT 2022 (seeds/000 Eq. 1-15; METHODS.md §2).

- :mod:`.config`: the ``target`` and ``dan`` config sections (:class:`AdaptConfig`), the Table-4 variants.
- :mod:`.trainer`: :class:`AdaptTrainer`, the ordinary trainer with its public hooks filled
  (pseudo-label refresh, target batches, DAA + soft labels + CMA, exemplar memory updates).
- :mod:`.losses`: domain adversarial loss and proxy A-distance (Eq. 1-4), soft labels (Eq. 8-9),
  cross-modal alignment (Eq. 12-14, registered as ``cma``).
- :mod:`.pseudo_labels`: hard labels from source prototypes (Eq. 5-7), exemplar memory, DBSCAN.
- :mod:`.discriminator`, :mod:`.grl`: per-modality discriminators behind a gradient reversal layer.
- :mod:`.domains`: the synthetic target domains (noise, lighting, colour, occlusion) of DAN's Syn-SYSU.
- Commands: ``vireid adapt``, ``vireid domains``. Recipes: ``configs/dan_tw_regdb.yaml`` (paper),
  ``configs/dan_synthetic_cpu.yaml`` (CPU); the grid ``configs/grids/dan_synthetic.yaml``.
"""

from vireid.methods.dan.losses import CrossModalAlignment
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="dan",
    paper="Fu et al., Dual Alignment Network for cross-modal cross-domain person re-identification, TCSVT 2022",
    seed="seeds/000",
    reference="METHODS.md §2",
    recipes=("dan_tw_regdb.yaml", "dan_synthetic_cpu.yaml"),
    status="implemented, tested; 3-seed synthetic table in the README (DAN trails source-only at the CPU budget)",
    losses={"cma": CrossModalAlignment},
    commands=("adapt", "domains"),
))

__all__ = ["METHOD", "CrossModalAlignment"]
