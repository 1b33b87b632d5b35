"""The one output contract shared by every model, in train and eval mode alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    """What ``model(images, modality)`` returns.

    Attributes:
        features: (B, D) pooled embedding before the BNNeck (metric losses use it).
        bn_features: (B, D) embedding after the BNNeck (retrieval uses it, L2-normalised).
        logits: (B, num_classes) identity logits, or ``None`` for a model without a classifier.
        extras: named auxiliary tensors a method's losses need (e.g. stage maps, masked-copy
            features, domain logits). Keys are documented by the model that sets them.
    """

    features: torch.Tensor
    bn_features: torch.Tensor
    logits: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def embedding(self) -> torch.Tensor:
        """The retrieval embedding: the post-BN feature (AGW tests on it, L2-normalised later)."""
        return self.bn_features
