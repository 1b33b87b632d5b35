"""Models. Every model's ``forward(images, modality)`` returns a :class:`ModelOutput`.

``create_model(name, **kwargs)`` builds a registered model. The generic models (the plain
BNNeck baseline) register when this package is imported; each paper's models register from its
package under :mod:`vireid.methods`.
"""

from vireid.types import ModelOutput
from vireid.models.registry import MODELS, create_model, get_model_constructor, list_models, register_model

# Registration by explicit import: one line per generic model module.
from vireid.models.baseline import Baseline  # noqa: E402  isort: skip
from vireid.models.vit import ReIDViT, ViTReID  # noqa: E402  isort: skip

from vireid.models.backbones import TwoStreamResNet  # noqa: E402
from vireid.models.layers import BNNeck, GeM, GlobalAvgPool, NonLocalBlock  # noqa: E402

__all__ = [
    "BNNeck", "Baseline", "GeM", "GlobalAvgPool", "ModelOutput", "NonLocalBlock", "ReIDViT", "TwoStreamResNet", "ViTReID",
    "MODELS", "create_model", "get_model_constructor", "list_models", "register_model",
]
