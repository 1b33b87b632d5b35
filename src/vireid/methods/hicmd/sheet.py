"""Contact sheet of Hi-CMD swaps (seeds/001 §9; METHODS.md §12): the identity of one image with the
pose and illumination of another.

Cell (i, j) of the grid is ``G(p_i, a^s_i, a^ex_j)``: the ID-discriminative codes (prototype, style)
of the image heading row i and the ID-excluded codes (illumination ``a^c``, pose ``a^p``) of the image
heading column j, all codes as their means (the model in eval mode). The top-left cell is blank.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vireid.data.transforms import build_test_transform
from vireid.methods.hicmd.model import HiCMD
from vireid.types import Sample
from vireid.utils.io import atomic_write_bytes

logger = logging.getLogger(__name__)

__all__ = ["pick_pairs", "render_sheet", "swap_grid", "swap_spread", "write_swap_sheet"]


@torch.no_grad()
def swap_grid(model: HiCMD, images: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Normalised ``images`` (R, 3, H, W) (rows: identity) and ``columns`` (C, 3, H, W) (pose/illumination)
    -> pixels (R, C, 3, H, W) in [0, 1]: ``G(p_i, a^s_i, a^ex_j)``."""
    was_training = model.training
    model.eval()
    try:
        p, style, _, _ = model.encode(images)  # (R, C_p, h, w), (R, ds)
        _, _, ex, _ = model.encode(columns)  # (C, dex): means
        r, c = images.shape[0], columns.shape[0]
        out = model.decode(p.repeat_interleave(c, 0), style.repeat_interleave(c, 0), ex.repeat(r, 1))
    finally:
        model.train(was_training)
    return out.view(r, c, *out.shape[1:])


def swap_spread(grid: torch.Tensor) -> tuple[float, float]:
    """How much a swap grid (R, C, 3, H, W) depends on its columns and on its rows: ``(within, between)``.

    ``within``: mean ``|cell(i, j) - mean_j cell(i, j)|`` over cells and pixels (0 when the ID-excluded
    codes of the columns change nothing); ``between``: mean ``|mean_j cell(i, j) - mean_ij cell(i, j)|``
    over rows and pixels (what the rows' identity codes change).
    """
    grid = grid.float()
    row_mean = grid.mean(dim=1, keepdim=True)  # (R, 1, 3, H, W)
    within = (grid - row_mean).abs().mean()
    between = (row_mean - row_mean.mean(dim=0, keepdim=True)).abs().mean()
    return float(within), float(between)


def render_sheet(row_heads: np.ndarray, col_heads: np.ndarray, grid: np.ndarray, gap: int = 2) -> np.ndarray:
    """uint8 HxWx3 picture: column heads on top, row heads on the left, the grid beside them.

    ``row_heads`` (R, H, W, 3), ``col_heads`` (C, H, W, 3), ``grid`` (R, C, H, W, 3), all in [0, 1].
    """
    r, c, h, w = grid.shape[:4]
    sheet = np.ones(((r + 1) * (h + gap) + gap, (c + 1) * (w + gap) + gap + gap, 3), dtype=np.float32)

    def put(i: int, j: int, img: np.ndarray) -> None:
        y, x = gap + i * (h + gap), gap + j * (w + gap) + (gap if j > 0 else 0)
        sheet[y:y + h, x:x + w] = img

    for j in range(c):
        put(0, j + 1, col_heads[j])
    for i in range(r):
        put(i + 1, 0, row_heads[i])
        for j in range(c):
            put(i + 1, j + 1, grid[i, j])
    return (np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)


def pick_pairs(samples: Sequence[Sample], count: int, seed: int = 0) -> list[Sample]:
    """``count`` identities with images of both modalities: one visible then one infrared image each
    (a seeded choice), identities in ascending order."""
    rng = np.random.default_rng(seed)
    by_id: dict[int, dict[int, list[Sample]]] = {}
    for s in samples:
        by_id.setdefault(s.pid, {}).setdefault(int(s.modality), []).append(s)
    ids = sorted(pid for pid, mods in by_id.items() if len(mods) == 2)
    if not ids:
        raise ValueError("no identity has images of both modalities")
    chosen = sorted(rng.choice(ids, size=min(count, len(ids)), replace=False).tolist())
    out = []
    for pid in chosen:
        for m in (0, 1):
            pool = sorted(by_id[pid][m], key=lambda s: s.relpath)
            out.append(pool[int(rng.integers(len(pool)))])
    return out


def write_swap_sheet(model: HiCMD, samples: Sequence[Sample], out: str | Path, height: int, width: int) -> Path:
    """Load ``samples`` (test transform), swap every pair of them and write the sheet PNG atomically."""
    from io import BytesIO

    from PIL import Image

    from vireid.data.loader import decode_image

    tf = build_test_transform(height, width)
    device = next(model.parameters()).device
    images = torch.stack([tf(decode_image(s.path)) for s in samples]).to(device)  # (N, 3, H, W)
    grid = swap_grid(model, images, images).float().cpu()  # (N, N, 3, H, W)
    heads = model.to_pixels(images).clamp(0, 1).cpu()  # (N, 3, H, W)
    pic = render_sheet(heads.permute(0, 2, 3, 1).numpy(), heads.permute(0, 2, 3, 1).numpy(),
                       grid.permute(0, 1, 3, 4, 2).numpy())
    buf = BytesIO()
    Image.fromarray(pic).save(buf, format="PNG")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    within, between = swap_spread(grid)
    logger.info("wrote %s: %d x %d swaps; cells differ from their row's mean by %.4f, rows from each other "
                "by %.4f (mean |difference| of pixels in [0, 1])", out, len(samples), len(samples), within, between)
    return out
