"""MCMA: Multi-level Cross-Modality Alignment for text -> image person re-ID (seeds/002 §6,
"文本-图像"; METHODS.md §15). Text is a third modality (:attr:`vireid.types.Modality.TEXT`).

- :mod:`.tokenizer`: a WordPiece caption tokenizer trained on the training captions (``tokenizers``).
- :mod:`.text_encoder`: a small transformer trained from scratch (default), or any local Hugging
  Face text model by path (``transformers``, ``local_files_only``: never downloads).
- :mod:`.model`: image patch tokens, the shared 2-layer reconstruction decoder ``E_rec``, the
  bisimulation predictors, the EMA teacher (reconstruction targets), a shared identity classifier.
- :mod:`.losses`: masked-patch reconstruction (masked positions only), bisimulation ``L_bisim`` over
  identity relation vectors, CMPM (base matching).
- :mod:`.train`: the step (self- and cross-instance caption-prompted reconstruction, bisimulation,
  CMPM + ID, EMA update after every step) and the text-to-image protocol.
- Commands: ``vireid train-text``, ``vireid search-text``. Recipe: ``configs/mcma_synthetic.yaml`` (CPU),
  ``configs/mcma_cuhk_pedes.yaml`` (CUHK-PEDES).
"""

from vireid.methods.mcma.losses import bisimulation, cmpm, masked_reconstruction
from vireid.methods.mcma.model import MCMA
from vireid.methods.mcma.tokenizer import CaptionTokenizer
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="mcma",
    paper="MCMA, multi-level cross-modality alignment for text-based person re-identification, thesis chapter 6 "
          "(seeds/002 §6; venue not named in the seed)",
    seed="seeds/002 §6",
    reference="METHODS.md §15",
    recipes=("mcma_synthetic.yaml", "mcma_cuhk_pedes.yaml"),
    status="implemented, tested (own training loop: vireid train-text; not on the shared trainer)",
    commands=("train-text", "search-text"),
))

__all__ = ["METHOD", "MCMA", "CaptionTokenizer", "bisimulation", "cmpm", "masked_reconstruction"]
