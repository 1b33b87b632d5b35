"""Contact sheet of the synthetic ground truth: per identity a visible image, its parsing map and
keypoints overlaid, an infrared image with its keypoints, an occluded view (occluder tinted) and a
partial view (kept box drawn on the full image), and the first caption. To look at, and for the README.
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vireid.data.synthetic import truth as T
from vireid.data.synthetic.captions import make_captions
from vireid.data.synthetic.generator import DatasetPlan, SyntheticConfig, make_rng
from vireid.data.synthetic.views import Truth, partial_view, render_truth
from vireid.utils.io import atomic_path

SCALE = 2
# one colour per ATR label (background black)
PALETTE = np.array([[0, 0, 0], [128, 0, 128], [255, 200, 0], [0, 0, 0], [230, 40, 40], [255, 120, 180],
                    [40, 90, 230], [0, 0, 0], [0, 0, 0], [60, 200, 60], [0, 110, 0], [250, 190, 150],
                    [0, 210, 210], [0, 120, 140], [255, 140, 0], [160, 80, 0], [150, 150, 150], [200, 0, 255]],
                   dtype=np.uint8)
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = (0, 255, 0), (255, 0, 255), (255, 255, 0)


def _rgb(image: np.ndarray) -> Image.Image:
    img = Image.fromarray(image).convert("RGB")
    return img.resize((img.width * SCALE, img.height * SCALE), Image.Resampling.NEAREST)


def _overlay_parsing(t: Truth) -> Image.Image:
    base = np.asarray(Image.fromarray(t.image).convert("RGB"), dtype=np.float32)
    colour = PALETTE[t.labels].astype(np.float32)
    mixed = np.where((t.labels > 0)[..., None], 0.35 * base + 0.65 * colour, 0.5 * base).astype(np.uint8)
    return _rgb(mixed)


def _draw_keypoints(img: Image.Image, kp: np.ndarray) -> Image.Image:
    draw = ImageDraw.Draw(img)
    for a, b in T.COCO_SKELETON:
        pa, pb = kp[a - 1], kp[b - 1]
        if pa[2] > 0 and pb[2] > 0:
            draw.line((pa[0] * SCALE, pa[1] * SCALE, pb[0] * SCALE, pb[1] * SCALE), fill=(255, 255, 255), width=1)
    for name, (x, y, v) in zip(T.COCO_KEYPOINTS, kp):
        if v <= 0:
            continue
        fill = LEFT_COLOUR if name.startswith("left") else RIGHT_COLOUR if name.startswith("right") else CENTRE_COLOUR
        r = 3 if v == 2 else 2
        box = (x * SCALE - r, y * SCALE - r, x * SCALE + r, y * SCALE + r)
        draw.ellipse(box, fill=fill if v == 2 else None, outline=fill)
    return img


def make_extras_sheet(config: SyntheticConfig, plan: DatasetPlan, pids: list[int],
                      out_path: str | os.PathLike[str]) -> tuple[int, int]:
    """Write the sheet of ``pids`` (PNG); return its (width, height)."""
    h, w = config.height * SCALE, config.width * SCALE
    titles = ["visible", "parsing (ATR)", "keypoints", "infrared", "occluded", "partial box"]
    text_h, gap, header = 40, 4, 14
    width = len(titles) * (w + gap) + gap
    height = header + len(pids) * (h + text_h + gap)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles):
        draw.text((gap + c * (w + gap), 1), title, fill=(0, 0, 0))
    cache: dict[Any, Any] = {}
    for r, pid in enumerate(pids):
        y0 = header + r * (h + text_h + gap)
        vis_cam = next(c for c in (1, 2, 4, 5) if plan.counts[c].get(pid))
        ir_cam = next(c for c in (3, 6) if plan.counts[c].get(pid))
        t = render_truth(config, pid, vis_cam, 0, cache)
        ir = render_truth(config, pid, ir_cam, 0, cache)
        occ = render_truth(config, pid, vis_cam, 0, cache, occluded=True)
        part = partial_view(t, config, pid, vis_cam, 0)
        occ_img = np.asarray(Image.fromarray(occ.image).convert("RGB")).copy()
        if occ.mask is not None:
            occ_img[occ.mask] = (0.5 * occ_img[occ.mask] + [0, 0, 127]).astype(np.uint8)
        box_img = _rgb(t.image)
        assert part.box is not None
        x0, by0, x1, by1 = part.box
        ImageDraw.Draw(box_img).rectangle((x0 * SCALE, by0 * SCALE, x1 * SCALE - 1, by1 * SCALE - 1),
                                          outline=(255, 0, 0), width=2)
        cells = [_rgb(t.image), _overlay_parsing(t), _draw_keypoints(_rgb(t.image), t.keypoints),
                 _draw_keypoints(_rgb(ir.image), ir.keypoints), _draw_keypoints(_rgb(occ_img), occ.keypoints), box_img]
        for c, cell in enumerate(cells):
            sheet.paste(cell, (gap + c * (w + gap), y0))
        caption = make_captions(cache[("id", pid)], make_rng(config.seed, 103, pid, vis_cam, 0))[0]
        lines = textwrap.wrap(f"{pid:04d}: {caption}", width=max(20, width // 6))[:3]
        for i, line in enumerate(lines):
            draw.text((gap, y0 + h + 1 + 12 * i), line, fill=(0, 0, 0))
    with atomic_path(out_path) as tmp:
        sheet.save(tmp, format="PNG")
    return width, height
