"""MoS: Matching on Set, partial-to-holistic re-ID (seeds/002 §3, "语义模式集合隐式匹配";
METHODS.md §13).

Each channel of a non-negative embedding is a pattern and a person the set of its patterns; the
Jaccard similarity of two sets replaces part-to-part matching (O(M x N) -> O(M + N)).

- :mod:`.jaccard`: hard Jaccard ``sum min / sum max`` and the soft Jaccard of Eq. 5 (temperature tau).
- :mod:`.conflict`: the co-occurrence prior ``M^p`` over same-identity training pairs and the conflict
  penalty ``CP`` (restricted to the top-activated channels), ``S = J - lambda CP``.
- :mod:`.losses`: the Jaccard triplet loss ``L_J`` (batch-hard, ``D_J = 1 - J_s``), ``jaccard_triplet``.
- :mod:`.distance`: MoS as a test-time distance for any model's non-negative features
  (``vireid test|evaluate-features --distance jaccard``).
- :mod:`.model`: ``mos`` (backbone -> average pooling -> g >= 0, retrieval on g; BNNeck + classifier).
- Recipes: ``configs/mos_market.yaml`` (paper setting), ``configs/mos_synthetic.yaml`` (CPU).
"""

from vireid.methods.mos.conflict import conflict_penalty, cooccurrence_prior, pairwise_conflict_penalty
from vireid.methods.mos.distance import JaccardDistance, load_prior, save_prior
from vireid.methods.mos.jaccard import hard_jaccard, pairwise_hard_jaccard, pairwise_soft_jaccard, soft_jaccard
from vireid.methods.mos.losses import JaccardTriplet, jaccard_triplet
from vireid.methods.mos.model import MoSNet, SetOutput
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="mos",
    paper="Matching on Set (MoS) for partial-to-holistic person re-identification, thesis chapter 3 "
          "(seeds/002 §3; venue not named in the seed)",
    seed="seeds/002 §3",
    reference="METHODS.md §13",
    recipes=("mos_market.yaml", "mos_synthetic.yaml"),
    status="implemented, tested (Jaccard, soft Jaccard, conflict penalty, Jaccard triplet, --distance jaccard)",
    models={"mos": MoSNet},
    losses={"jaccard_triplet": JaccardTriplet},
))

__all__ = ["METHOD", "JaccardDistance", "JaccardTriplet", "MoSNet", "SetOutput", "conflict_penalty",
           "cooccurrence_prior", "hard_jaccard", "jaccard_triplet", "load_prior", "pairwise_conflict_penalty",
           "pairwise_hard_jaccard", "pairwise_soft_jaccard", "save_prior", "soft_jaccard"]
