"""A contact sheet of a dataset in the SYSU-MM01 layout: identities x cameras, to look at.

Works on any folder in the SYSU-MM01 layout (Wu et al., ICCV'17; PROTOCOLS.md), the synthetic
dataset or the real one: row = identity, columns = the visible cameras 1, 2, 4, 5, a gap, then
the infrared cameras 3, 6, each cell the identity's first image in that camera (grey when the
identity is not in that camera).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from vireid.utils.io import atomic_path

VISIBLE_COLUMNS = (1, 2, 4, 5)
INFRARED_COLUMNS = (3, 6)
_GAP, _BLOCK_GAP, _LABEL_W, _HEADER_H = 2, 10, 40, 16
_BG, _MISSING, _TEXT = (255, 255, 255), (200, 200, 200), (0, 0, 0)


def _first_image(root: Path, cam: int, pid: int) -> Path | None:
    folder = root / f"cam{cam}" / f"{pid:04d}"
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
    return files[0] if files else None


def make_contact_sheet(root: str | os.PathLike[str], pids: Sequence[int], out_path: str | os.PathLike[str],
                       cell: tuple[int, int] = (128, 64)) -> tuple[int, int]:
    """Write the contact sheet of ``pids`` to ``out_path`` (PNG); return its (width, height).

    ``cell`` is (height, width) of each thumbnail; images are resized to it.
    """
    root = Path(root)
    ch, cw = cell
    columns: list[int | None] = [*VISIBLE_COLUMNS, None, *INFRARED_COLUMNS]
    x_of: list[int] = []
    x = _LABEL_W
    for col in columns:
        if col is None:
            x += _BLOCK_GAP - _GAP
            continue
        x_of.append(x)
        x += cw + _GAP
    width, height = x, _HEADER_H + len(pids) * (ch + _GAP) + _GAP
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    cams = [c for c in columns if c is not None]
    for x0, cam in zip(x_of, cams):
        draw.text((x0 + 2, 2), f"cam{cam} {'IR' if cam in INFRARED_COLUMNS else 'RGB'}", fill=_TEXT)
    for row, pid in enumerate(pids):
        y0 = _HEADER_H + row * (ch + _GAP)
        draw.text((2, y0 + ch // 2 - 5), f"{pid:04d}", fill=_TEXT)
        for x0, cam in zip(x_of, cams):
            path = _first_image(root, cam, pid)
            if path is None:
                draw.rectangle((x0, y0, x0 + cw - 1, y0 + ch - 1), fill=_MISSING)
                draw.line((x0, y0, x0 + cw - 1, y0 + ch - 1), fill=_BG)
                continue
            with Image.open(path) as img:
                thumb = img.convert("RGB").resize((cw, ch), Image.Resampling.BILINEAR)
            sheet.paste(thumb, (x0, y0))
    with atomic_path(out_path) as tmp:
        sheet.save(tmp, format="PNG")
    return width, height
