"""Losses. Each is an ``nn.Module`` called as ``loss_fn(output: ModelOutput, batch: Batch) -> scalar``,
with a plain functional form on tensors beside it.

``build_loss(name, **kwargs)`` builds a registered loss; the explicit imports below fill the
registry, so a new loss module needs one import line here.
"""

from vireid.losses.registry import LOSSES, build_loss, get_loss_class, list_losses, register_loss

# Registration by explicit import: one line per loss module.
from vireid.losses.identity import CrossEntropyLabelSmooth, cross_entropy_label_smooth  # noqa: E402  isort: skip
from vireid.losses.triplet import (  # noqa: E402  isort: skip
    TripletBatchHard,
    WeightedRegularizedTriplet,
    triplet_batch_hard,
    weighted_regularized_triplet,
)

from vireid.losses.distance import pairwise_euclidean  # noqa: E402

__all__ = [
    "CrossEntropyLabelSmooth", "LOSSES", "TripletBatchHard", "WeightedRegularizedTriplet", "build_loss",
    "cross_entropy_label_smooth", "get_loss_class", "list_losses", "pairwise_euclidean", "register_loss",
    "triplet_batch_hard", "weighted_regularized_triplet",
]
