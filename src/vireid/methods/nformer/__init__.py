"""NFormer: Wang et al., "NFormer: Robust Person Re-identification with Neighbor Transformer",
CVPR 2022 (seeds/001 §3; METHODS.md §8).

- :mod:`.attention`: landmark agent attention (LAA, §3.2) and reciprocal neighbour softmax (RNS,
  §3.3), chunked over rows on sparse neighbour lists; where the public code differs and which
  reading is the default.
- :mod:`.blocks`: NFormer blocks and the encoder (projection -> blocks -> BNNeck).
- :mod:`.model`: ``nformer``, the CNN embedding (train and eval) + the NFormer over the batch
  (training, in ``extras``).
- :mod:`.losses`: ``nformer_refined_id``, the refined features' identity loss.
- :mod:`.refine`: the test-time joint refinement of query + gallery, re-ranker ``nformer``
  (``vireid test --run D --rerank nformer``; flags ``--nformer-topk``, ``--nformer-landmarks``,
  ``--nformer-quota``, ``--nformer-seed``, ``--nformer-run``, ``--nformer-checkpoint``).
- Recipes: ``configs/nformer_sysu.yaml``, ``configs/nformer_regdb.yaml`` (paper-scale),
  ``configs/nformer_synthetic.yaml`` (CPU).
"""

from vireid.methods.nformer.losses import RefinedIdentity
from vireid.methods.nformer.model import NFormerNet
from vireid.methods.nformer.refine import RECORDED, nformer_stream, refine_features
from vireid.methods.registry import Method, register_method
from vireid.rerank.registry import register_rerank_flag

METHOD = register_method(Method(
    name="nformer",
    paper="Wang et al., NFormer: Robust Person Re-identification with Neighbor Transformer, CVPR 2022",
    seed="seeds/001 §3",
    reference="METHODS.md §8",
    recipes=("nformer_sysu.yaml", "nformer_regdb.yaml", "nformer_synthetic.yaml"),
    status="implemented, tested (LAA, RNS, chunked = dense refinement); trained on synthetic data, see README",
    models={"nformer": NFormerNet},
    losses={"nformer_refined_id": RefinedIdentity},
    rerankers={"nformer": (nformer_stream, RECORDED)},
))

for _dest, _key, _kind, _metavar, _text in (
    ("nformer_run", "run", str, "RUN", "nformer: run folder of the trained NFormer (default: vireid test's --run, "
     "or the run recorded in the features file)"),
    ("nformer_checkpoint", "checkpoint", str, "CKPT", "nformer: best, last or a path (default: --checkpoint / best)"),
    ("nformer_topk", "topk", int, "K", "nformer: reciprocal-neighbour top-k (default: as trained)"),
    ("nformer_landmarks", "landmarks", int, "M", "nformer: landmark agents m (default: as trained)"),
    ("nformer_quota", "cross_modal_quota", int, "Q", "nformer: neighbours reserved for the other modality "
     "(query vs gallery rows; default: as trained)"),
    ("nformer_seed", "seed", int, "S", "nformer: seed of the landmark draw (default 0)"),
):
    register_rerank_flag(_dest, "nformer", _key, _kind, _metavar, _text)

__all__ = ["METHOD", "RefinedIdentity", "NFormerNet", "nformer_stream", "refine_features"]
