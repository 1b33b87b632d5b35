"""Gradient reversal layer (GRL) and its warm-up schedule.

Ganin & Lempitsky, ICML 2015 ("Unsupervised Domain Adaptation by Backpropagation"), as used by
DAN's domain adversarial alignment (Fu et al., TCSVT 2022; seeds/000 slide "Gradient Reversed
Layer", Eq. 2-4; METHODS.md §2): the identity in the forward pass, ``-coeff * grad`` in the
backward pass, so minimising the discriminator loss behind it *maximises* it for the extractor.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward; the backward pass multiplies the incoming gradient by ``-coeff`` (seeds/000 Eq. 4)."""
    return _GradReverse.apply(x, float(coeff))


def grl_coefficient(progress: float, gamma: float = 10.0, max_coeff: float = 1.0) -> float:
    """The DANN schedule ``max_coeff * (2 / (1 + exp(-gamma * p)) - 1)`` for training progress ``p`` in [0, 1].

    0 at the start (the discriminator learns before it pushes back), about ``max_coeff`` at the end.
    METHODS.md §2 [UNSPEC->default] ``gamma = 10``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return float(max_coeff) * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class GradReverse(nn.Module):
    """Module form of :func:`grad_reverse`; set ``coeff`` (e.g. from :func:`grl_coefficient`) during training."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff:.4f}"
