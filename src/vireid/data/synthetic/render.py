"""Render one synthetic image: background crop, camera geometry, person, occluder, sensor.

Part of the procedural synthetic VI-ReID dataset (stands in for SYSU-MM01, Wu et al. ICCV'17;
not from a seed paper). Per-image jitter (pose, view, crop offset, scale, illumination, blur)
makes the images of one person in one camera differ; per-camera settings make cameras differ.
Everything is vectorised NumPy on the (H, W) pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vireid.data.synthetic.camera import CameraSpec
from vireid.data.synthetic.identity import IdentitySpec
from vireid.data.synthetic.person import Marks, Pose, draw_person, sample_pose
from vireid.data.synthetic.shapes import Grid
from vireid.types import Modality


@dataclass(frozen=True)
class ImageJitter:
    """What changes from one image to the next within a camera."""

    pose: Pose
    facing_left: bool
    scale: float          # multiplies the camera's fill
    dx: float             # person centre offset, share of the width
    dy: float             # share of the height
    tilt: float           # extra rotation (radians)
    crop: tuple[float, float]   # background crop offset in [0, 1] (x, y)
    gain: float           # multiplies the camera gain
    blur: float           # multiplies the camera blur
    occluder: tuple[float, float, float, float] | None   # x0, x1, y0 (shares) and paint index in [0, 1)


def sample_jitter(rng: np.random.Generator, camera: CameraSpec) -> ImageJitter:
    """Draw the per-image jitter of one image of ``camera``."""
    pose = sample_pose(rng, camera.view_p)
    occluder = None
    if rng.random() < camera.occlusion_p:
        x0 = float(rng.uniform(-0.2, 0.5))
        occluder = (x0, x0 + float(rng.uniform(0.4, 1.0)), float(rng.uniform(0.74, 0.9)), float(rng.random()))
    return ImageJitter(
        pose=pose, facing_left=bool(rng.random() < 0.5), scale=float(rng.uniform(0.95, 1.05)),
        dx=float(rng.uniform(-0.07, 0.07)), dy=float(rng.uniform(-0.035, 0.035)),
        tilt=float(np.deg2rad(rng.uniform(-2.0, 2.0))), crop=(float(rng.random()), float(rng.random())),
        gain=float(rng.uniform(0.9, 1.1)), blur=float(rng.uniform(0.8, 1.25)), occluder=occluder)


def body_grid(height: int, width: int, fill: float, dx: float, dy: float, tilt: float, shear: float,
              mirror: bool) -> Grid:
    """Map every pixel to body space: the person's height spans ``fill * height`` pixels.

    The body centre (``v = 0.5``) sits at ``(width * (0.5 + dx), height * (0.5 + dy))``; the
    view is rotated by ``tilt``, sheared by ``shear`` and mirrored (``u -> -u``) if asked.
    """
    person_px = fill * height
    c, s = np.cos(tilt), np.sin(tilt)
    m = -1.0 if mirror else 1.0
    # (column, row, 1) -> (u, v, 1): centre, scale, rotate, shear, mirror, shift v by 0.5
    centre = np.array([[1.0, 0.0, 0.5 - width * (0.5 + dx)], [0.0, 1.0, 0.5 - height * (0.5 + dy)], [0, 0, 1]])
    rotate = np.array([[c, s, 0.0], [-s, c, 0.0], [0, 0, 1]]) / np.array([[person_px], [person_px], [1.0]])
    shear_mirror = np.array([[m, -m * shear, 0.0], [0.0, 1.0, 0.5], [0, 0, 1]])
    forward = shear_mirror @ rotate @ centre  # (3, 3)
    cols = np.arange(width, dtype=np.float64)[None, :]  # (1, W)
    rows = np.arange(height, dtype=np.float64)[:, None]  # (H, 1)
    u = forward[0, 0] * cols + forward[0, 1] * rows + forward[0, 2]  # (H, W)
    v = forward[1, 0] * cols + forward[1, 1] * rows + forward[1, 2]  # (H, W)
    inverse = np.linalg.inv(forward)
    to_pixel = (tuple(float(x) for x in inverse[0]), tuple(float(x) for x in inverse[1]))
    return Grid(u.astype(np.float32), v.astype(np.float32), 1.0 / person_px, to_pixel)


def image_mirrored(camera: CameraSpec, jitter: ImageJitter) -> bool:
    """Whether the body-space drawing is mirrored in the image (camera mirror, or a side view facing left)."""
    return camera.mirror ^ (jitter.facing_left and jitter.pose.view == "side")


def occluder_alpha(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """(H, W) coverage of the rectangle ``box`` = (x0, x1, y0, y1) in shares of the width/height (soft edge)."""
    x0, x1, y0, y1 = box
    xs = (np.arange(width, dtype=np.float32) + 0.5)[None, :] / width  # (1, W)
    ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None] / height  # (H, 1)
    sd = np.maximum(np.maximum(x0 - xs, xs - x1) * (width / height), np.maximum(y0 - ys, ys - y1))  # (H, W)
    return np.clip(0.5 - sd * height, 0.0, 1.0)


def render_image(ident: IdentitySpec, camera: CameraSpec, jitter: ImageJitter, background: np.ndarray,
                 height: int, width: int, noise_rng: np.random.Generator, marks: Marks | None = None,
                 extra_occluder: tuple[float, float, float, float, float] | None = None) -> np.ndarray:
    """One image as uint8: (H, W, 3) RGB for a visible camera, (H, W) grayscale for infrared.

    ``background`` is the camera's canvas from ``camera.render_scene`` (larger than the image).
    ``marks`` (optional) collects the ground truth (:class:`~vireid.data.synthetic.person.Marks`);
    an occluder counts as background in it. ``extra_occluder`` = (x0, x1, y0,
    y1, paint pick) draws one more scene-coloured rectangle in front of the person (occluded views).
    """
    infrared = camera.modality is Modality.INFRARED
    bh, bw = background.shape[:2]
    oy = int(round(jitter.crop[1] * (bh - height)))
    ox = int(round(jitter.crop[0] * (bw - width)))
    canvas = background[oy:oy + height, ox:ox + width].copy()  # (H, W, C)

    fill = min(camera.fill * ident.body.height * jitter.scale, 0.98)
    grid = body_grid(height, width, fill, jitter.dx, jitter.dy, camera.tilt + jitter.tilt, camera.shear,
                     image_mirrored(camera, jitter))
    draw_person(canvas, grid, ident, jitter.pose, infrared, marks)
    if marks is not None:
        marks.to_pixel = grid.to_pixel

    boxes = []
    if jitter.occluder is not None:
        x0, x1, y0, pick = jitter.occluder
        boxes.append(((x0, x1, y0, np.inf), pick))
    if extra_occluder is not None:
        boxes.append((extra_occluder[:4], extra_occluder[4]))
    for box, pick in boxes:
        objects = camera.scene.objects
        obj = objects[int(pick * len(objects))]
        alpha = occluder_alpha(box, height, width)[..., None]  # (H, W, 1)
        paint = np.array([obj.ir] if infrared else obj.colour, dtype=np.float32) * 0.85  # (C,)
        canvas += alpha * (paint - canvas)
        if marks is not None:  # the occluder is background for the parsing map and the keypoints
            marks.composite((slice(None), slice(None)), alpha[..., 0], 0, 0)

    if infrared:
        out = canvas * (camera.ir_gain * jitter.gain) + camera.ir_offset  # (H, W, 1)
    else:
        out = canvas * (np.asarray(camera.cast, dtype=np.float32) * camera.gain * jitter.gain)  # (H, W, 3)
        out = (out - 0.5) * camera.contrast + 0.5
        out = np.clip(out, 0.0, 1.0) ** camera.gamma
    sigma = camera.blur * jitter.blur * height / 128.0  # blur is given in pixels of a 128-pixel-high image
    out = ndimage.gaussian_filter(out, sigma=(sigma, sigma, 0.0), mode="nearest")  # (H, W, C)
    out = out + noise_rng.normal(0.0, camera.noise, out.shape).astype(np.float32)
    img = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)  # (H, W, C)
    return img[..., 0] if infrared else img
