"""Identity (classification) loss with label smoothing.

Cross-entropy against the smoothed target ``q_c = 1 - eps + eps/N`` for the true class and
``eps/N`` otherwise (METHODS.md §1, seeds/003 Eq. 18; the seed's ``1 - (N-1)/N * xi`` is the same
value), as used for AGW's identity loss (Ye et al., TPAMI 2021, seeds/001 §1) and MRDA's L_id.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid.types import Batch
from vireid.losses.registry import register_loss
from vireid.types import ModelOutput


def cross_entropy_label_smooth(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """``mean_i sum_c -q_ic log softmax(logits_i)_c`` with label-smoothed ``q`` (seeds/003 Eq. 18).

    Args:
        logits: (B, N) class scores (any float dtype; computed in float32).
        targets: (B,) class indices in ``[0, N)``.
        epsilon: smoothing ``xi`` in ``[0, 1)``; 0 is the plain cross-entropy.
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy_label_smooth: expected logits (B, N) and targets (B,), "
                         f"got {tuple(logits.shape)} and {tuple(targets.shape)}")
    n = logits.shape[1]
    bad = targets[(targets < 0) | (targets >= n)]
    if bad.numel():
        raise ValueError(f"cross_entropy_label_smooth: targets must be class indices in [0, {n}); "
                         f"got {bad[:5].tolist()} (are the training pids relabelled to 0..N-1?)")
    log_probs = F.log_softmax(logits.float(), dim=1)  # (B, N)
    q = torch.full_like(log_probs, epsilon / n)  # (B, N)
    q.scatter_(1, targets.long().unsqueeze(1), 1.0 - epsilon + epsilon / n)
    return -(q * log_probs).sum(dim=1).mean()


@register_loss("cross_entropy")
class CrossEntropyLabelSmooth(nn.Module):
    """Label-smoothed identity loss on ``output.logits`` against ``batch.pids`` (seeds/003 Eq. 18).

    Args:
        epsilon: smoothing ``xi`` (default 0.1; 0 = plain cross-entropy).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"CrossEntropyLabelSmooth: epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if output.logits is None:
            raise ValueError("cross_entropy: the model output has no logits (built with num_classes=0?)")
        return cross_entropy_label_smooth(output.logits, batch.pids, self.epsilon)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
