"""One synthetic image with its ground truth (keypoints, parsing), and its occluded and partial views.

The image is exactly :func:`~vireid.data.synthetic.generator.render_dataset_image`'s (same seed,
same bytes); the truth is collected while it is drawn (:class:`~vireid.data.synthetic.person.Marks`).
An occluded view draws one more scene-coloured rectangle in front of the person (its mask is the
rectangle's pixels); a partial view crops the image to the top share of the person's body (its
box is in the full image's pixels), as in Partial-REID (Zheng et al., ICCV'15).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from vireid.data.synthetic import truth as T
from vireid.data.synthetic.camera import CAMERA_ROOM, CANVAS_SCALE, render_scene, sample_camera
from vireid.data.synthetic.generator import _CAMERA, _IMAGE, _SCENE, SyntheticConfig, identity_spec, make_rng
from vireid.data.synthetic.person import Marks
from vireid.data.synthetic.render import image_mirrored, occluder_alpha, render_image, sample_jitter

_OCCLUDE, _PARTIAL = 101, 102   # spawn-key purposes of the views (apart from the generator's 0..6)


@dataclass
class Truth:
    """An image and its ground truth.

    Attributes:
        image: uint8 (H, W, 3) visible or (H, W) infrared.
        labels: uint8 (H, W) ATR parsing labels, the person's left/right (:mod:`truth`).
        keypoints: (17, 3) COCO keypoints ``[x, y, v]`` (:mod:`truth` for the conventions).
        view: "front" | "back" | "side"; ``mirrored``: whether the body drawing is mirrored.
        mask: bool (H, W) pixels of the extra occluder (occluded views), else ``None``.
        box: (x0, y0, x1, y1) of a partial view in the full image's pixels, else ``None``.
    """

    image: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray
    view: str
    mirrored: bool
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None

    def bbox(self) -> tuple[float, float, float, float]:
        """COCO box [x, y, w, h] of the labelled person pixels ([0, 0, 0, 0] when none)."""
        rows, cols = np.nonzero(self.labels)
        if rows.size == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1),
                float(rows.max() - rows.min() + 1))


def sample_occluder(config: SyntheticConfig, pid: int, cam: int, index: int) -> tuple[float, float, float, float,
                                                                                        float]:
    """An occluder (x0, x1, y0, y1 in image shares, paint pick): a low wall, a post on one side, or a box."""
    rng = make_rng(config.seed, _OCCLUDE, pid, cam, index)
    kind = int(rng.integers(3))
    if kind == 0:    # bottom: covers the legs
        box = (-0.1, 1.1, float(rng.uniform(0.45, 0.65)), 1.1)
    elif kind == 1:  # one side, full height
        w = float(rng.uniform(0.35, 0.55))
        box = (-0.1, w, -0.1, 1.1) if rng.random() < 0.5 else (1.0 - w, 1.1, -0.1, 1.1)
    else:            # a box in the middle of the body
        y0 = float(rng.uniform(0.3, 0.5))
        box = (float(rng.uniform(-0.1, 0.2)), float(rng.uniform(0.8, 1.1)), y0, y0 + float(rng.uniform(0.2, 0.35)))
    return (*box, float(rng.random()))


def render_truth(config: SyntheticConfig, pid: int, cam: int, index: int, cache: dict[Any, Any] | None = None,
                 occluded: bool = False, mirror_camera: bool = False) -> Truth:
    """Image ``index`` of ``pid`` in ``cam`` with its truth; ``occluded`` adds :func:`sample_occluder`'s occluder.

    ``mirror_camera`` renders the same draw through the camera's mirror image (a person seen the
    other way round: the ground truth that a horizontally flipped image must agree with).
    """
    cache = {} if cache is None else cache
    if ("cam", cam) not in cache:
        camera = sample_camera(make_rng(config.seed, _CAMERA, cam), make_rng(config.seed, _SCENE, CAMERA_ROOM[cam]),
                               cam)
        bh, bw = round(config.height * CANVAS_SCALE[0]), round(config.width * CANVAS_SCALE[1])
        cache[("cam", cam)] = (camera, render_scene(camera.scene, camera.modality, bh, bw))
    if ("id", pid) not in cache:
        cache[("id", pid)] = identity_spec(config, pid)
    camera, background = cache[("cam", cam)]
    if mirror_camera:
        camera = dataclasses.replace(camera, mirror=not camera.mirror)
    rng = make_rng(config.seed, _IMAGE, pid, cam, index)
    jitter = sample_jitter(rng, camera)
    marks = Marks.empty(config.height, config.width)
    extra = sample_occluder(config, pid, cam, index) if occluded else None
    image = render_image(cache[("id", pid)], camera, jitter, background, config.height, config.width, rng,
                         marks=marks, extra_occluder=extra)
    mirrored = image_mirrored(camera, jitter)
    left0 = T.slot0_is_left(jitter.pose.view, mirrored)
    assert marks.to_pixel is not None
    keypoints = T.keypoints_from_marks(marks.joints, marks.to_pixel, marks.parts, jitter.pose.view, left0)
    mask = occluder_alpha(extra[:4], config.height, config.width) >= 0.5 if extra is not None else None
    return Truth(image, T.resolve_labels(marks.labels, left0), keypoints, jitter.pose.view, mirrored, mask)


def partial_view(full: Truth, config: SyntheticConfig, pid: int, cam: int, index: int) -> Truth:
    """The top share (45-80 %, drawn from the seed) of the person's body, cropped from ``full``."""
    rng = make_rng(config.seed, _PARTIAL, pid, cam, index)
    share = float(rng.uniform(0.45, 0.8))
    _, y, _, h = full.bbox()
    y1 = int(np.clip(round(y + share * h), 8, full.labels.shape[0]))
    box = (0, 0, full.labels.shape[1], y1)
    kp = full.keypoints.copy()
    outside = kp[:, 1] >= y1
    kp[outside] = 0.0
    return Truth(full.image[:y1].copy(), full.labels[:y1].copy(), kp, full.view, full.mirrored, None, box)
