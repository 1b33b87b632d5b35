"""The six synthetic cameras: modality, scene, geometry, illumination and sensor.

Part of the procedural synthetic VI-ReID dataset, which copies the camera set-up of SYSU-MM01
(Wu et al., ICCV'17; PROTOCOLS.md "SYSU-MM01"): cameras 1, 2 (indoor) and 4, 5 (outdoor) are
visible, 3 (indoor) and 6 (outdoor) infrared, and camera 3 films the same room as camera 2, so
they share the scene layout (the reason the protocol drops cam-2 gallery images for cam-3
queries). A scene object has a visible colour and, independently, an infrared level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vireid.types import Modality

CAMERA_MODALITY: dict[int, Modality] = {
    1: Modality.VISIBLE, 2: Modality.VISIBLE, 3: Modality.INFRARED,
    4: Modality.VISIBLE, 5: Modality.VISIBLE, 6: Modality.INFRARED,
}
CAMERA_ROOM: dict[int, int] = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}
OUTDOOR_ROOMS = frozenset({4, 5, 6})
# The background canvas is this much larger than an image; each image crops it at random.
CANVAS_SCALE = (1.2, 1.6)


@dataclass(frozen=True)
class SceneObject:
    """A rectangle or ellipse of the background, in fractions of the background canvas."""

    kind: str            # "rect" | "ellipse"
    box: tuple[float, float, float, float]   # x0, y0, x1, y1
    colour: tuple[float, float, float]
    ir: float


@dataclass(frozen=True)
class Scene:
    """A room or street: wall/sky above the horizon, floor/ground below, clutter objects."""

    outdoor: bool
    horizon: float
    wall: tuple[float, float, float]
    wall_ir: float
    floor: tuple[float, float, float]
    floor_ir: float
    objects: tuple[SceneObject, ...]
    texture: np.ndarray  # (8, 8) low-frequency brightness texture, upsampled when rendered


@dataclass(frozen=True)
class CameraSpec:
    """Everything that is constant for one camera.

    ``fill`` is the share of the image height a person of average stature occupies; ``tilt``
    (radians) and ``shear`` distort the view; ``mirror`` flips the scene; ``view_p`` are the
    probabilities of front, back and side views. Visible cameras apply ``gain``, ``contrast``,
    a per-channel ``cast`` and ``gamma``; infrared cameras ``ir_gain`` and ``ir_offset``. Both
    then blur (Gaussian of ``blur`` pixels for a 128-pixel-high image, scaled with the height)
    and add Gaussian ``noise`` (intensity units in [0, 1]).
    """

    camid: int
    modality: Modality
    scene: Scene
    fill: float
    tilt: float
    shear: float
    mirror: bool
    view_p: tuple[float, float, float]
    blur: float
    noise: float
    gain: float
    contrast: float
    cast: tuple[float, float, float]
    gamma: float
    ir_gain: float
    ir_offset: float
    occlusion_p: float


def _colour(rng: np.random.Generator, low: float = 0.1, high: float = 0.9) -> tuple[float, float, float]:
    c = rng.uniform(low, high, 3)
    return (float(c[0]), float(c[1]), float(c[2]))


def sample_scene(rng: np.random.Generator, outdoor: bool) -> Scene:
    """Draw a scene. Infrared levels of walls and objects are drawn apart from their colours."""
    objects: list[SceneObject] = []
    horizon = float(rng.uniform(0.55, 0.8))
    for _ in range(int(rng.integers(5, 11))):
        w, h = float(rng.uniform(0.08, 0.4)), float(rng.uniform(0.1, 0.5))
        x0 = float(rng.uniform(-0.1, 1.0))
        y1 = horizon + float(rng.uniform(-0.05, 0.15))
        kind = "ellipse" if (outdoor and rng.random() < 0.5) else "rect"
        if outdoor and kind == "ellipse":   # trees
            colour = _colour(rng, 0.05, 0.55)
            colour = (colour[0] * 0.6, min(1.0, colour[1] * 1.3 + 0.1), colour[2] * 0.5)
        else:
            colour = _colour(rng)
        warm = rng.random() < 0.15  # radiators, screens, engines
        ir = float(rng.uniform(0.55, 0.8) if warm else rng.uniform(0.08, 0.45))
        objects.append(SceneObject(kind, (x0, y1 - h, x0 + w, y1), colour, ir))
    if outdoor:
        wall = (float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.6, 0.85)), float(rng.uniform(0.75, 0.95)))
        floor = _colour(rng, 0.25, 0.55)
    else:
        wall, floor = _colour(rng, 0.35, 0.9), _colour(rng, 0.2, 0.7)
    return Scene(outdoor, horizon, wall, float(rng.uniform(0.12, 0.35)), floor, float(rng.uniform(0.10, 0.40)),
                 tuple(objects), rng.normal(0.0, 1.0, (8, 8)).astype(np.float32))


def sample_camera(rng: np.random.Generator, scene_rng: np.random.Generator, camid: int) -> CameraSpec:
    """Draw camera ``camid`` (1..6). ``scene_rng`` draws the scene (shared by cams 2 and 3)."""
    modality = CAMERA_MODALITY[camid]
    scene = sample_scene(scene_rng, CAMERA_ROOM[camid] in OUTDOOR_ROOMS)
    view = rng.dirichlet([2.0, 2.0, 2.0])
    ir = modality is Modality.INFRARED
    cast = rng.uniform(0.85, 1.15, 3)
    return CameraSpec(
        camid=camid, modality=modality, scene=scene,
        fill=float(rng.uniform(0.78, 0.90)),
        tilt=float(np.deg2rad(rng.uniform(-3.0, 3.0))),
        shear=float(rng.uniform(-0.06, 0.06)),
        mirror=bool(rng.random() < 0.5),
        view_p=(float(view[0]), float(view[1]), float(view[2])),
        blur=float(rng.uniform(0.4, 0.9) if ir else rng.uniform(0.2, 0.8)),
        noise=float(rng.uniform(0.015, 0.035) if ir else rng.uniform(0.006, 0.02)),
        gain=float(rng.uniform(0.75, 1.2)),
        contrast=float(rng.uniform(0.8, 1.15)),
        cast=(float(cast[0]), float(cast[1]), float(cast[2])),
        gamma=float(rng.uniform(0.85, 1.2)),
        ir_gain=float(rng.uniform(0.8, 1.2)),
        ir_offset=float(rng.uniform(-0.08, 0.08)),
        occlusion_p=float(rng.uniform(0.05, 0.2)),
    )


def render_scene(scene: Scene, modality: Modality, height: int, width: int) -> np.ndarray:
    """The background canvas of a camera: (height, width, 3) for visible, (height, width, 1) for infrared.

    Values in [0, 1]. Rendered once per camera; every image crops it at a random offset.
    """
    ir = modality is Modality.INFRARED
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]  # (H, 1)
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]  # (1, W)
    px = 1.0 / height

    def paint(rgb: tuple[float, float, float], level: float) -> np.ndarray:
        return np.array([level] if ir else rgb, dtype=np.float32)  # (C,)

    below = np.clip((y - scene.horizon) / px + 0.5, 0.0, 1.0)[..., None]  # (H, 1, 1)
    canvas = paint(scene.wall, scene.wall_ir) * (1.0 - below) + paint(scene.floor, scene.floor_ir) * below
    canvas = np.broadcast_to(canvas, (height, width, canvas.shape[-1])).copy()  # (H, W, C)
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.box
        if obj.kind == "rect":
            sd = np.maximum(np.maximum(x0 - x, x - x1) * (width / height), np.maximum(y0 - y, y - y1))  # (H, W)
        else:
            cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            rho = np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)  # (H, W)
            sd = (rho - 1.0) * min(a * width / height, b)
        alpha = np.clip(0.5 - sd / px, 0.0, 1.0)[..., None]  # (H, W, 1)
        canvas += alpha * (paint(obj.colour, obj.ir) - canvas)
    texture = ndimage.zoom(scene.texture, (height / 8.0, width / 8.0), order=1)[:height, :width]  # (H, W)
    shade = 1.0 + (0.04 if ir else 0.08) * texture[..., None] - (0.0 if ir else 0.12) * y[..., None]  # (H, W, 1)
    return np.clip(canvas * shade, 0.0, 1.0).astype(np.float32)
