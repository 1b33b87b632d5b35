"""SAP's teacher targets at patch level, from a part map (seeds/002 §4; METHODS.md §14).

For a part map ``m`` (B, H, W) of part ids in ``[0, G)`` (0 = background B) and the student's overlapping
P x P patches at stride S (grid gh x gw, N = gh * gw):

* ``m^ = softmax(lambda * sum_{i,j<=P} G_oh(m)[i,j])``, the part distribution of each patch (N x G); the
  part counts are divided by P^2 (METHODS.md §14 [UNSPEC]), so lambda acts on the fraction of the patch
  each part covers;
* ``m_f = 1[m^[B] < gamma]``, the foreground flag per patch (N,);
* ``A_patch = [[1, m_f^T], [m_f, m^ m^T]]`` (1 + N) x (1 + N): [cls] row/column first.

Teachers: the parsing teacher maps ATR labels (``batch.aux["parsing"]``, 18 ids) to the eight coarse groups of
:data:`vireid.data.synthetic.truth.COARSE` (background, head/hair, upper, lower, arms, legs, shoes, bag); the
rule-based teacher (METHODS.md §14 "External inputs" fallback) cuts the image into ``num_parts`` horizontal
bands, every pixel foreground.

Note on the defaults: with lambda = 1 the softmax over G = 8 groups of fractions in [0, 1] never gives the
background more than e / (e + 7) = 0.28, so ``m^[B] < 0.5`` marks every patch foreground; the recipes use
lambda = 10 (a whole-background patch then has m^[B] = 0.9997) and say so.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ATR_TO_PART", "NUM_GROUPS", "band_part_map", "part_map_from_parsing", "patch_affinity_target",
           "patch_part_targets"]

# ATR label id (0-17) -> coarse group (0 = background, 1-7 = parts): vireid.data.synthetic.truth.COARSE
ATR_TO_PART = np.array([0, 1, 1, 1, 2, 3, 3, 2, 7, 6, 6, 1, 5, 5, 4, 4, 7, 7], dtype=np.int64)
NUM_GROUPS = 8  # background + 7 parts


def part_map_from_parsing(parsing: torch.Tensor) -> torch.Tensor:
    """ATR label maps (B, H, W) int -> coarse part ids (B, H, W) int64 in [0, 8). Ids outside 0-17: ValueError."""
    if parsing.numel() and (int(parsing.min()) < 0 or int(parsing.max()) >= len(ATR_TO_PART)):
        raise ValueError(f"SAP parsing teacher: ATR label ids must lie in 0..{len(ATR_TO_PART) - 1}, got "
                         f"{int(parsing.min())}..{int(parsing.max())}")
    table = torch.as_tensor(ATR_TO_PART, device=parsing.device)
    return table[parsing.long()]


def band_part_map(batch: int, height: int, width: int, num_parts: int, device: torch.device | str = "cpu"
                  ) -> torch.Tensor:
    """The rule-based teacher: ``num_parts`` equal horizontal bands, ids 1..num_parts, no background: (B, H, W)."""
    rows = 1 + (torch.arange(height, device=device) * num_parts) // height  # (H,) band of each row
    return rows.view(1, height, 1).expand(batch, height, width).clone()


def patch_part_targets(part_map: torch.Tensor, num_groups: int, patch_size: int, stride: int,
                       lam: float = 1.0, gamma: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m^ (B, N, G), m_f (B, N) bool)`` of the patches of a part map (see the module docs).

    Patches are the student's: P x P windows at stride S in row-major order, as
    :class:`vireid.models.vit.OverlapPatchEmbed` cuts them.
    """
    onehot = F.one_hot(part_map.long(), num_groups).permute(0, 3, 1, 2).float()  # (B, G, H, W)
    fractions = F.avg_pool2d(onehot, kernel_size=patch_size, stride=stride)  # (B, G, gh, gw) = counts / P^2
    fractions = fractions.flatten(2).transpose(1, 2)  # (B, N, G)
    m_hat = torch.softmax(lam * fractions, dim=-1)  # (B, N, G)
    return m_hat, m_hat[..., 0] < gamma


def patch_affinity_target(m_hat: torch.Tensor, m_f: torch.Tensor) -> torch.Tensor:
    """``A_patch = [[1, m_f^T], [m_f, m^ m^T]]``: (B, 1 + N, 1 + N) from m^ (B, N, G) and m_f (B, N)."""
    b, n, _ = m_hat.shape
    a = m_hat.new_empty(b, n + 1, n + 1)
    a[:, 0, 0] = 1.0
    a[:, 0, 1:] = m_f.to(a.dtype)
    a[:, 1:, 0] = m_f.to(a.dtype)
    a[:, 1:, 1:] = m_hat @ m_hat.transpose(1, 2)  # (B, N, N)
    return a
