"""Pictures for a report: CMC curves and ranked lists (matplotlib, written atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from vireid.utils.io import atomic_path

GREEN, RED, GREY = (40, 170, 60), (215, 40, 40), (128, 128, 128)


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "CMC") -> None:
    """One line per method; ``curves[name][k-1]`` is rank-k accuracy in percent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for name, cmc in curves.items():
        ranks = np.arange(1, len(cmc) + 1)
        ax.plot(ranks, cmc, marker="o", markersize=3, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, max(len(c) for c in curves.values()))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _tile(path: str, size: tuple[int, int], frame: tuple[int, int, int] | None, border: int) -> Image.Image:
    img = Image.open(path).convert("RGB").resize(size, Image.Resampling.BILINEAR)
    if frame is None:
        return ImageOps.expand(img, border=border, fill=(255, 255, 255))
    return ImageOps.expand(img, border=border, fill=frame)


def _caption(name: str, width_px: int) -> list[str]:
    """Two short lines naming a file: its folders (e.g. ``cam3/0012``) and its file name, cut to fit."""
    parts = Path(name).parts
    lines = ["/".join(parts[-3:-1]), parts[-1] if parts else ""]
    chars = max(3, width_px // 6)  # PIL's default bitmap font: about 6 px per character
    return [line if len(line) <= chars else "~" + line[-(chars - 1):] for line in lines]


def ranked_list_image(
    query_paths: Sequence[str],
    ranked_gallery_paths: Sequence[Sequence[str]],
    correct: Sequence[Sequence[bool]],
    path: str | Path,
    *,
    tile: tuple[int, int] = (48, 96),
    border: int = 3,
    names: Sequence[Sequence[str]] | None = None,
    row_labels: Sequence[str] | None = None,
) -> None:
    """Each row: a query, then its top matches framed green (same identity) or red (wrong).

    ``names[row]`` (optional) holds the file names shown under the query and each match
    (query first); ``row_labels`` an optional label drawn at the left of each row.
    """
    w, h = tile[0] + 2 * border, tile[1] + 2 * border
    caption_h = 22 if names is not None else 0
    label_w = 60 if row_labels is not None else 0
    cols = 1 + max(len(r) for r in ranked_gallery_paths)
    gap = 12
    row_h = h + caption_h
    sheet = Image.new("RGB", (label_w + cols * w + gap, len(query_paths) * row_h + 14), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((label_w + 2, 1), "query", fill=(0, 0, 0))
    for k in range(1, cols):
        draw.text((label_w + gap + k * w + 2, 1), str(k), fill=(0, 0, 0))
    for row, (q, ranked, ok) in enumerate(zip(query_paths, ranked_gallery_paths, correct)):
        y = 14 + row * row_h
        if row_labels is not None:
            draw.text((2, y + h // 2), row_labels[row][:10], fill=(0, 0, 0))
        xs = [label_w] + [label_w + gap + k * w for k in range(1, len(ranked) + 1)]
        sheet.paste(_tile(q, tile, GREY, border), (xs[0], y))
        for k, (g, good) in enumerate(zip(ranked, ok), start=1):
            sheet.paste(_tile(g, tile, GREEN if good else RED, border), (xs[k], y))
        if names is not None:
            for x, name in zip(xs, names[row]):
                for i, line in enumerate(_caption(name, w)):
                    draw.text((x + 1, y + h + 1 + 10 * i), line, fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp)
