"""Draw one synthetic person in body space, in the visible or the infrared rendering.

Part of the procedural synthetic VI-ReID dataset (stands in for SYSU-MM01, Wu et al. ICCV'17;
not from a seed paper). The geometry and the fabric patterns are drawn identically in both
modalities; only the paint differs: visible paints each dye's colour, infrared paints its
thermal level (skin warm, clothes cooler by material, accessories and shoes cold). So shape and
pattern carry over between modalities and colour does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import numpy as np

from vireid.data.synthetic import truth as T
from vireid.data.synthetic.identity import Garment, IdentitySpec
from vireid.data.synthetic.shapes import Grid, band, capsule, ellipse, pattern_field, rectangle, trapezoid

VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class Pose:
    """Per-image body pose: view, limb angles (radians) and foot placement (body units)."""

    view: str                    # "front" | "back" | "side" (side faces +u)
    leg_swing: float             # side view: stride angle of the near leg (far leg opposite)
    foot_spread: tuple[float, float]   # front/back: extra lateral foot offsets (left, right)
    foot_lift: tuple[float, float]     # raise of each foot
    arm_angle: tuple[float, float]     # front/back: abduction; side: swing (near, far)
    elbow: tuple[float, float]         # forearm bend


def sample_pose(rng: np.random.Generator, view_p: tuple[float, float, float]) -> Pose:
    """Draw a pose; the view follows the camera's view probabilities."""
    view = VIEWS[int(rng.choice(3, p=np.asarray(view_p) / sum(view_p)))]
    swing = float(rng.uniform(-0.35, 0.35))
    return Pose(
        view=view, leg_swing=swing,
        foot_spread=(float(rng.uniform(-0.01, 0.035)), float(rng.uniform(-0.01, 0.035))),
        foot_lift=(float(rng.uniform(0.0, 0.02)), float(rng.uniform(0.0, 0.02))),
        arm_angle=((float(rng.uniform(0.03, 0.25)), float(rng.uniform(0.03, 0.25))) if view != "side"
                   else (-0.8 * swing + float(rng.uniform(-0.1, 0.1)), 0.8 * swing + float(rng.uniform(-0.1, 0.1)))),
        elbow=(float(rng.uniform(0.0, 0.45)), float(rng.uniform(0.0, 0.45))),
    )


Paint = Union[np.ndarray, Garment]   # a (C,) solid paint or a garment (patterned)
Keep = Callable[[Grid], np.ndarray]   # an extra mask (e.g. "above the forehead") on a sub-grid
Part = tuple[int, int]   # (instance id of :mod:`truth`, provisional ATR label)


@dataclass
class Marks:
    """Ground truth collected while drawing: how much each part contributes to each pixel, and the joints.

    ``part_weight`` (H, W, len(PARTS)) and ``label_weight`` (H, W, len(ATR_LABELS)) hold the share
    of every pixel's final value that each part instance (:data:`vireid.data.synthetic.truth.PARTS`)
    and each parsing label contributes (channel 0, background, starts at 1; compositing a primitive
    of coverage ``a`` scales every share by ``1 - a`` and adds ``a`` to its own). :attr:`parts` and
    :attr:`labels` are the dominant contributor of each pixel. Limbs are labelled by *slot* (0: the
    +u limb in front/back views, the near limb in side views; see
    :func:`vireid.data.synthetic.truth.slot0_is_left`). ``joints`` maps joint names (``nose``,
    ``eye0``, ``shoulder1``...) to body-space (u, v).
    """

    part_weight: np.ndarray
    label_weight: np.ndarray
    joints: dict[str, tuple[float, float]]
    to_pixel: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None  # body (u, v) -> pixel

    @classmethod
    def empty(cls, height: int, width: int) -> "Marks":
        parts = np.zeros((height, width, len(T.PARTS)), np.float32)
        labels = np.zeros((height, width, len(T.ATR_LABELS)), np.float32)
        parts[..., 0] = 1.0
        labels[..., 0] = 1.0
        return cls(parts, labels, {})

    @property
    def parts(self) -> np.ndarray:
        """(H, W) uint8 instance id of the dominant part of each pixel."""
        return self.part_weight.argmax(axis=2).astype(np.uint8)

    @property
    def labels(self) -> np.ndarray:
        """(H, W) uint8 parsing label (slot-named) of the dominant contributor of each pixel."""
        return self.label_weight.argmax(axis=2).astype(np.uint8)

    def composite(self, sl: tuple[slice, slice], alpha: np.ndarray, part: int, labels: np.ndarray | int) -> None:
        """A primitive of coverage ``alpha`` (h, w) over window ``sl``, of instance ``part`` and parsing ``labels``."""
        keep = (1.0 - alpha)[..., None]  # (h, w, 1)
        self.part_weight[sl] *= keep
        self.part_weight[sl][..., part] += alpha
        self.label_weight[sl] *= keep
        if np.isscalar(labels) or np.ndim(labels) == 0:
            self.label_weight[sl][..., int(labels)] += alpha
        else:
            for value in np.unique(labels):
                self.label_weight[sl][..., int(value)] += alpha * (labels == value)


class _Painter:
    """Composites soft-edged primitives onto a canvas with the paint of one modality.

    Each primitive is evaluated only in the window of pixels its body-space box covers.
    """

    def __init__(self, grid: Grid, canvas: np.ndarray, infrared: bool, marks: Marks | None = None) -> None:
        self.grid, self.canvas, self.infrared = grid, canvas, infrared  # canvas (H, W, C)
        self.marks = marks

    def _mark(self, sl: tuple[slice, slice], alpha: np.ndarray, part: Part | None,
              labels: np.ndarray | None = None) -> None:
        """Record this primitive's contribution (``labels``: per-pixel parsing labels, else ``part[1]``)."""
        if self.marks is None or part is None:
            return
        self.marks.composite(sl, alpha, part[0], part[1] if labels is None else labels)

    def solid(self, rgb: tuple[float, float, float], level: float) -> np.ndarray:
        return np.array([level] if self.infrared else rgb, dtype=np.float32)  # (C,)

    def _paint(self, paint: Paint, g: Grid) -> np.ndarray:
        """A solid paint as is; a garment's two dyes mixed by its pattern on sub-grid ``g``."""
        if not isinstance(paint, Garment):
            return paint
        first = self.solid(paint.colour, paint.ir_level)
        if paint.pattern.kind == "plain":
            return first
        second = self.solid(paint.pattern_colour, paint.ir_level + paint.ir_pattern_delta)
        p = pattern_field(g, paint.pattern)[..., None]  # (h, w, 1)
        return first + p * (second - first)  # (h, w, C)

    def _composite(self, sl: tuple[slice, slice], alpha: np.ndarray, paint: np.ndarray,
                   d: np.ndarray | None, dim: float) -> None:
        if d is not None:
            k = 0.12 if self.infrared else 0.28
            paint = paint * (dim * (1.0 - k * d * d))[..., None]  # (h, w, C)
        elif dim != 1.0:
            paint = paint * np.float32(dim)
        region = self.canvas[sl]  # (h, w, C) view
        region += alpha[..., None] * (paint - region)

    def limb(self, p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float, paint: Paint,
             dim: float = 1.0, until: float = 1.01, rest: Paint | None = None, part: Part | None = None,
             rest_label: int | None = None) -> None:
        """A capsule painted ``paint`` for ``t < until`` along it and ``rest`` beyond (sleeves, shorts)."""
        r = max(r0, r1)
        win = self.grid.window(min(p0[0], p1[0]) - r, max(p0[0], p1[0]) + r,
                               min(p0[1], p1[1]) - r, max(p0[1], p1[1]) + r)
        if win is None:
            return
        g, sl = win
        alpha, t, d = capsule(g, p0, p1, r0, r1)
        colour = self._paint(paint, g)
        labels = None
        if rest is not None and until < 1.0:
            colour = np.where((t < until)[..., None], colour, self._paint(rest, g))  # (h, w, C)
            if part is not None and rest_label is not None:
                labels = np.where(t < until, part[1], rest_label).astype(np.uint8)  # (h, w)
        self._composite(sl, alpha, colour, d, dim)
        self._mark(sl, alpha, part, labels)

    def ellipse(self, centre: tuple[float, float], a: float, b: float, paint: Paint, dim: float = 1.0,
                keep: Keep | None = None, shade: bool = True, part: Part | None = None) -> None:
        win = self.grid.window(centre[0] - a, centre[0] + a, centre[1] - b, centre[1] + b)
        if win is None:
            return
        g, sl = win
        alpha, d = ellipse(g, centre, a, b)
        if keep is not None:
            alpha = alpha * keep(g)
        self._composite(sl, alpha, self._paint(paint, g), d if shade else None, dim)
        self._mark(sl, alpha, part)

    def trapezoid(self, v0: float, v1: float, w0: float, w1: float, paint: Paint, cu: float = 0.0,
                  round_top: float = 0.0, part: Part | None = None) -> None:
        w = max(w0, w1)
        win = self.grid.window(cu - w, cu + w, v0, v1)
        if win is None:
            return
        g, sl = win
        alpha, d = trapezoid(g, v0, v1, w0, w1, cu, round_top)
        self._composite(sl, alpha, self._paint(paint, g), d, 1.0)
        self._mark(sl, alpha, part)

    def rect(self, u0: float, u1: float, v0: float, v1: float, paint: Paint, part: Part | None = None) -> None:
        win = self.grid.window(u0, u1, v0, v1)
        if win is not None:
            g, sl = win
            alpha = rectangle(g, u0, u1, v0, v1)
            self._composite(sl, alpha, self._paint(paint, g), None, 1.0)
            self._mark(sl, alpha, part)

    def band(self, p0: tuple[float, float], p1: tuple[float, float], half_width: float, paint: Paint,
             part: Part | None = None) -> None:
        win = self.grid.window(min(p0[0], p1[0]) - half_width, max(p0[0], p1[0]) + half_width,
                               min(p0[1], p1[1]) - half_width, max(p0[1], p1[1]) + half_width)
        if win is not None:
            g, sl = win
            alpha = band(g, p0, p1, half_width)
            self._composite(sl, alpha, self._paint(paint, g), None, 1.0)
            self._mark(sl, alpha, part)


def draw_person(canvas: np.ndarray, grid: Grid, ident: IdentitySpec, pose: Pose, infrared: bool,
                marks: Marks | None = None) -> None:
    """Paint ``ident`` in ``pose`` onto ``canvas`` (H, W, C) in place, back to front.

    ``marks`` (optional) collects the parts map, the slot-named parsing labels and the body-space
    joints (:class:`Marks`); the painted pixels are the same with or without it.
    """
    pt = _Painter(grid, canvas, infrared, marks)
    b = ident.body
    side = pose.view == "side"
    k = 0.62 if side else 1.0
    skin = pt.solid(ident.skin, ident.skin_ir)
    hair = pt.solid(ident.hair_colour, ident.hair_ir)
    head_a, head_b = b.head_r, b.head_r * 1.18
    hc = (0.02 * b.head_r if side else 0.0, head_b)
    v_s = 2.0 * head_b + 0.03
    sw, hw = b.shoulder_w * k, b.hip_w * k
    near_right = ident.bag_side > 0  # side views face +u and show the person's right side

    # legs, shoes, pelvis / skirt
    leg_len = 0.955 - b.hip_v
    if side:
        legs = [((0.0, b.hip_v), (float(np.sin(s)) * leg_len, b.hip_v + float(np.cos(s)) * leg_len - lift), dim)
                for s, lift, dim in ((-pose.leg_swing, pose.foot_lift[1], 0.85),
                                     (pose.leg_swing, pose.foot_lift[0], 1.0))]
    else:
        legs = [((sgn * hw * 0.5, b.hip_v), (sgn * (hw * 0.5 + spread), 0.955 - lift), 1.0)
                for sgn, spread, lift in ((-1.0, pose.foot_spread[0], pose.foot_lift[0]),
                                          (1.0, pose.foot_spread[1], pose.foot_lift[1]))]
    covered = ident.bottom_len if ident.bottom_kind != "skirt" else 0.0
    lower = T.SKIRT if ident.bottom_kind == "skirt" else T.PANTS
    for index, (hip, foot, dim) in enumerate(legs):
        slot = 1 - index  # slot 0: the +u leg (front/back), the near leg (side)
        leg_label = (T.LEFT_LEG, T.RIGHT_LEG)[slot]
        pt.limb(hip, foot, b.leg_r * (1.1 if side else 1.0), b.leg_r * 0.65, ident.bottom, dim, covered, skin,
                part=(T.P[f"leg{slot}"], T.PANTS if covered > 0 else leg_label), rest_label=leg_label)
        shoe_len = 0.05 if side else b.leg_r * 0.95
        pt.ellipse((foot[0] + (0.015 if side else 0.0), foot[1] + 0.02), shoe_len, 0.024, ident.shoes, dim,
                   shade=False, part=(T.P[f"shoe{slot}"], (T.LEFT_SHOE, T.RIGHT_SHOE)[slot]))
        if marks is not None:
            marks.joints[f"hip{slot}"] = hip
            marks.joints[f"knee{slot}"] = ((hip[0] + foot[0]) / 2, (hip[1] + foot[1]) / 2)
            marks.joints[f"ankle{slot}"] = foot
    if ident.bottom_kind == "skirt":
        pt.trapezoid(b.hip_v - 0.03, b.hip_v + ident.bottom_len, hw, hw * 1.45, ident.bottom,
                     part=(T.P["pelvis"], lower))
    else:
        pt.trapezoid(b.hip_v - 0.03, b.hip_v + 0.06, hw, hw * 0.85, ident.bottom, part=(T.P["pelvis"], lower))

    # arms: joints, then the far arm (side view) before the torso
    upper, fore = 0.46 * b.arm_len, 0.54 * b.arm_len
    arms = []
    for i, sgn in enumerate((1.0, -1.0)):
        shoulder = (0.0, v_s + b.arm_r) if side else (sgn * (b.shoulder_w - b.arm_r * 1.2), v_s + b.arm_r * 1.2)
        out = 1.0 if side else sgn
        a1 = pose.arm_angle[i]
        a2 = a1 + (pose.elbow[i] if side else -pose.elbow[i] * 0.5)
        elbow = (shoulder[0] + out * float(np.sin(a1)) * upper, shoulder[1] + float(np.cos(a1)) * upper)
        wrist = (elbow[0] + out * float(np.sin(a2)) * fore, elbow[1] + float(np.cos(a2)) * fore)
        arms.append((shoulder, elbow, wrist, 0.85 if (side and i == 1) else 1.0, i))
        if marks is not None:
            marks.joints.update({f"shoulder{i}": shoulder, f"elbow{i}": elbow, f"wrist{i}": wrist})

    def draw_arm(shoulder: tuple[float, float], elbow: tuple[float, float], wrist: tuple[float, float],
                 dim: float, slot: int) -> None:
        sleeve = {0: 0.0, 1: 0.75, 2: 1.01}[ident.sleeve]
        inst, arm_label = T.P[f"arm{slot}"], (T.LEFT_ARM, T.RIGHT_ARM)[slot]
        pt.limb(shoulder, elbow, b.arm_r, b.arm_r * 0.85, ident.top, dim, sleeve, skin,
                part=(inst, T.UPPER if sleeve > 0 else arm_label), rest_label=arm_label)
        pt.limb(elbow, wrist, b.arm_r * 0.85, b.arm_r * 0.7, ident.top if ident.sleeve == 2 else skin, dim,
                part=(inst, T.UPPER if ident.sleeve == 2 else arm_label))
        pt.ellipse(wrist, b.arm_r * 1.05, b.arm_r * 1.3, skin, dim, shade=False, part=(inst, arm_label))

    if side:
        draw_arm(*arms[1])
        if ident.bag is not None and not near_right:
            _draw_bag(pt, ident, v_s, sw, hw, 0.0)

    # neck, torso, coat tail
    pt.limb((hc[0], hc[1] + head_b * 0.6), (0.0, v_s + 0.01), b.head_r * 0.42, b.head_r * 0.42, skin,
            part=(T.P["neck"], T.FACE))
    pt.trapezoid(v_s, b.hip_v, sw, hw, ident.top, round_top=0.4 * sw, part=(T.P["torso"], T.UPPER))
    if ident.top_extra > 0.01:
        pt.trapezoid(b.hip_v - 0.02, b.hip_v + ident.top_extra, hw * 1.02, hw * 1.22, ident.top,
                     part=(T.P["coat"], T.UPPER))

    # backpack
    if ident.backpack is not None:
        bp = ident.backpack
        bw, bh = b.shoulder_w * ident.backpack_size[0], ident.backpack_size[1]
        bp_part = (T.P["backpack"], T.BAG)
        if pose.view == "back":
            pt.rect(-bw, bw, v_s + 0.015, v_s + 0.015 + bh, bp, part=bp_part)
        elif pose.view == "front":
            for sgn in (-1.0, 1.0):
                pt.band((sgn * sw * 0.55, v_s - 0.005), (sgn * sw * 0.5, v_s + 0.17), 0.012, bp, part=bp_part)
        else:
            pt.rect(-sw - 0.5 * bw, -sw * 0.4, v_s + 0.015, v_s + 0.015 + bh, bp, part=bp_part)
            pt.band((sw * 0.2, v_s - 0.005), (sw * 0.35, v_s + 0.16), 0.011, bp, part=bp_part)

    if side:
        if ident.bag is not None and near_right:
            _draw_bag(pt, ident, v_s, sw, hw, 0.0)
        draw_arm(*arms[0])
    else:
        for arm in arms:
            draw_arm(*arm)

    # scarf, head, hair, hat, bag (front / back)
    if ident.scarf is not None:
        scarf_part = (T.P["scarf"], T.SCARF)
        pt.trapezoid(v_s - 0.03, v_s + 0.025, b.head_r * 0.75, sw * 0.65, ident.scarf, part=scarf_part)
        if pose.view == "front":
            pt.rect(0.005, 0.035, v_s, v_s + 0.14, ident.scarf, part=scarf_part)
    pt.ellipse(hc, head_a, head_b, skin, part=(T.P["head"], T.FACE))
    _draw_hair(pt, ident, pose, hc, head_a, head_b, v_s, hair)
    if ident.hat is not None:
        cut = hc[1] - (0.15 if ident.hat_kind == "beanie" else 0.3) * head_b
        pt.ellipse((hc[0], hc[1] - 0.25 * head_b), head_a * 1.1, head_b * 0.85, ident.hat,
                   keep=lambda g: g.v < cut, part=(T.P["hat"], T.HAT))
        if ident.hat_kind == "cap" and pose.view != "back":
            u0, u1 = (0.0, head_a * 1.8) if side else (-head_a * 1.1, head_a * 1.1)
            pt.rect(u0, u1, hc[1] - 0.4 * head_b, hc[1] - 0.28 * head_b, ident.hat, part=(T.P["hat"], T.HAT))
    if marks is not None:
        marks.joints.update(_face_joints(pose.view, hc, head_a, head_b))
    if ident.bag is not None and not side:
        u_side = -ident.bag_side if pose.view == "front" else ident.bag_side
        _draw_bag(pt, ident, v_s, sw, hw, float(u_side))


def _draw_bag(pt: _Painter, ident: IdentitySpec, v_s: float, sw: float, hw: float, u_side: float) -> None:
    """A shoulder bag: strap from the ``u_side`` shoulder to the bag at the opposite hip (0 = side view)."""
    assert ident.bag is not None
    bag_w, bag_h = ident.bag_size
    top_v = ident.body.hip_v - 0.05
    centre = -u_side * (hw + bag_w * 0.3)
    part = (T.P["bag"], T.BAG)
    pt.band((u_side * sw * 0.6, v_s - 0.005), (centre, top_v), 0.009, ident.bag, part=part)
    pt.trapezoid(top_v, top_v + bag_h, bag_w * 0.5, bag_w * 0.55, ident.bag, cu=centre, part=part)


def _face_joints(view: str, hc: tuple[float, float], a: float, b: float) -> dict[str, tuple[float, float]]:
    """Nose, eyes and ears in body space (slot 0: +u in front/back views, the near side in side views)."""
    u, v = hc
    if view == "side":  # facing +u
        return {"nose": (u + 0.8 * a, v + 0.3 * b), "eye0": (u + 0.55 * a, v), "eye1": (u + 0.55 * a, v),
                "ear0": (u - 0.1 * a, v + 0.05 * b), "ear1": (u - 0.1 * a, v + 0.05 * b)}
    return {"nose": (u, v + 0.3 * b), "eye0": (u + 0.38 * a, v), "eye1": (u - 0.38 * a, v),
            "ear0": (u + 0.85 * a, v + 0.05 * b), "ear1": (u - 0.85 * a, v + 0.05 * b)}


def _draw_hair(pt: _Painter, ident: IdentitySpec, pose: Pose, hc: tuple[float, float], a: float, b: float,
               v_s: float, hair: np.ndarray) -> None:
    style = ident.hair_style
    if style == "bald":
        return
    if pose.view == "front":
        def keep(g: Grid) -> np.ndarray:
            return g.v < hc[1] - 0.25 * b
    elif pose.view == "back":
        def keep(g: Grid) -> np.ndarray:
            return g.v < hc[1] + 0.55 * b
    else:
        def keep(g: Grid) -> np.ndarray:
            return (g.v < hc[1] - 0.25 * b) | (g.u < hc[0] - 0.15 * a)
    part = (T.P["hair"], T.HAIR)
    pt.ellipse((hc[0], hc[1] - 0.04 * b), a * 1.07, b * 1.04, hair, keep=keep, part=part)
    if style == "long":
        if pose.view == "front":
            for sgn in (-1.0, 1.0):
                lo, hi = sorted((sgn * 0.72 * a, sgn * 1.1 * a))
                pt.rect(lo, hi, hc[1] - 0.2 * b, v_s + 0.08, hair, part=part)
        elif pose.view == "back":
            pt.rect(-1.1 * a, 1.1 * a, hc[1], v_s + 0.1, hair, part=part)
        else:
            pt.rect(hc[0] - 1.05 * a, hc[0] - 0.1 * a, hc[1], v_s + 0.09, hair, part=part)
    elif style == "ponytail" and pose.view != "front":
        centre = (hc[0] - 1.15 * a, hc[1] + 0.2 * b) if pose.view == "side" else (0.0, hc[1] + 0.9 * b)
        pt.ellipse(centre, 0.38 * a, 0.9 * b, hair, part=part)
    elif style == "bun":
        centre = (hc[0] - 0.6 * a, hc[1] - 0.8 * b) if pose.view == "side" else (0.0, hc[1] - 0.95 * b)
        pt.ellipse(centre, 0.45 * a, 0.42 * b, hair, part=part)
