"""Models. Every model's ``forward(images, modality)`` returns a :class:`ModelOutput`.

``create_model(name, **kwargs)`` builds a registered model. Models register themselves with
``@register_model("name")``; the explicit imports below fill the registry, so a new model module
needs one import line here.
"""

from vireid.types import ModelOutput
from vireid.models.registry import create_model, get_model_constructor, list_models, register_model

# Registration by explicit import: one line per model module.
from vireid.models.agw import AGW  # noqa: E402  isort: skip
from vireid.models.baseline import Baseline  # noqa: E402  isort: skip
from vireid.models.mrda import MRDA  # noqa: E402  isort: skip

from vireid.models.backbones import TwoStreamResNet  # noqa: E402
from vireid.models.layers import BNNeck, GeM, GlobalAvgPool, NonLocalBlock  # noqa: E402

__all__ = [
    "AGW", "BNNeck", "Baseline", "GeM", "GlobalAvgPool", "ModelOutput", "NonLocalBlock", "TwoStreamResNet",
    "create_model", "get_model_constructor", "list_models", "register_model",
]
