"""DAN's per-modality domain discriminators behind a gradient reversal layer.

Dual Alignment Network, Fu et al., TCSVT 2022 (seeds/000 slide "Domain adversarial alignment",
Eq. 1-4; METHODS.md §2 DAA): one discriminator ``D_p`` per modality ``p`` (visible, infrared)
scores an embedding as source (1) or target (0); the extractor sees the reversed gradient. Which
embedding is the trainer's choice (``dan.daa_feature``, default the BNNeck output: the seed lists
"BN" with DAA, and on AGW's pooled pre-BN features the discriminators measured at chance).

The discriminators are kept out of the re-ID model on purpose: the retrieval model's checkpoint
stays loadable by ``vireid test`` and the adaptation trainer owns these extra parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vireid.types import Modality
from vireid.methods.dan.grl import grad_reverse


class DomainDiscriminator(nn.Module):
    """MLP ``in_dim -> hidden... -> 1`` returning a source-vs-target logit per row.

    METHODS.md §2 [UNSPEC->default]: ``2048-1024-1024-1`` (input size = the embedding's), ReLU
    between the layers; ``dropout`` after each hidden layer (0.5 in the public DANN/CDAN code [ext]).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (1024, 1024), dropout: float = 0.5) -> None:
        super().__init__()
        if in_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"DomainDiscriminator: dimensions must be positive, got {in_dim} and {list(hidden)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DomainDiscriminator: dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) logits of "source"."""
        return self.net(features).squeeze(1)  # (B,)


class ModalityDiscriminators(nn.Module):
    """``D_r`` and ``D_ir`` of seeds/000 Eq. 3: row ``i`` is scored by the discriminator of its modality.

    ``forward(features, modality, coeff)`` applies the gradient reversal layer with coefficient
    ``coeff`` (``0`` stops the extractor's adversarial gradient, the discriminators still learn),
    then each discriminator on the rows of its modality.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (1024, 1024), dropout: float = 0.5) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(DomainDiscriminator(in_dim, hidden, dropout) for _ in Modality)

    def forward(self, features: torch.Tensor, modality: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
        """(B, D) features, (B,) modality labels -> (B,) source logits (float32)."""
        if features.dim() != 2 or modality.shape != features.shape[:1]:
            raise ValueError(f"ModalityDiscriminators: expected features (B, D) and modality (B,), got "
                             f"{tuple(features.shape)} and {tuple(modality.shape)}")
        x = grad_reverse(features.float(), coeff)  # (B, D)
        logits = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)  # (B,)
        for m, disc in zip(Modality, self.discriminators):
            rows = torch.nonzero(modality == int(m), as_tuple=True)[0]  # (B_m,)
            if rows.numel():
                logits = logits.index_put((rows,), disc(x.index_select(0, rows)))  # (B,)
        return logits
