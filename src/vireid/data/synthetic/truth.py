"""Ground-truth conventions of the synthetic world: COCO-17 keypoints, ATR parsing labels, and
how the renderer's body-space limb slots become the person's left and right.

- Keypoints: the 17 COCO joints (Lin et al., ECCV'14) in COCO order, ``[x, y, v]`` with ``v`` = 2
  visible, 1 inside the image but hidden (behind another part, an occluder, or the head in a back
  view), 0 outside the image (then ``x = y = 0``, as COCO writes unlabelled joints). ``x, y`` are
  continuous pixel coordinates with pixel ``i`` spanning ``[i, i + 1)``, so a horizontal flip of a
  width-``W`` image maps ``x`` to ``W - x``.
- Parsing: the 18 labels of ATR (Liang et al., TPAMI'15), the convention of SCHP's ATR model and
  of the parsing teachers of occluded re-ID; :data:`COARSE` merges them into the eight groups
  background, head/hair, upper clothes, lower clothes, arms, legs, shoes, bag/accessory.
- Left and right are the person's own: a front view shows the person's left on the image's
  right. The renderer draws limbs in *slots* (0: the +u limb in front/back views, the near limb in
  side views, which face +u and show the person's right side); :func:`slot0_is_left` says which
  side slot 0 is once the view is known and whether the image is mirrored.
"""

from __future__ import annotations

import numpy as np

COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
                 (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))  # 1-based, as in COCO
# index of the mirrored joint: a horizontal flip swaps these
COCO_FLIP = tuple(COCO_KEYPOINTS.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
                  for n in COCO_KEYPOINTS)

ATR_LABELS = ("background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt",
              "left-shoe", "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf")
BG, HAT, HAIR, UPPER, SKIRT, PANTS, FACE, BAG, SCARF = 0, 1, 2, 4, 5, 6, 11, 16, 17
LEFT_SHOE, RIGHT_SHOE, LEFT_LEG, RIGHT_LEG, LEFT_ARM, RIGHT_ARM = 9, 10, 12, 13, 14, 15
# a horizontal flip swaps left and right labels: label -> label of the mirrored part
ATR_FLIP = np.arange(len(ATR_LABELS), dtype=np.uint8)
for _a, _b in ((LEFT_SHOE, RIGHT_SHOE), (LEFT_LEG, RIGHT_LEG), (LEFT_ARM, RIGHT_ARM)):
    ATR_FLIP[_a], ATR_FLIP[_b] = _b, _a
COARSE_NAMES = ("background", "head/hair", "upper clothes", "lower clothes", "arms", "legs", "shoes",
                "bag/accessory")
COARSE = np.array([0, 1, 1, 1, 2, 3, 3, 2, 7, 6, 6, 1, 5, 5, 4, 4, 7, 7], dtype=np.uint8)  # ATR -> coarse

# instance ids of the parts the renderer draws (which primitive covers a pixel; visibility uses it)
PARTS = ("background", "head", "hair", "hat", "neck", "torso", "coat", "pelvis", "arm0", "arm1", "leg0", "leg1",
         "shoe0", "shoe1", "scarf", "backpack", "bag")
P = {name: i for i, name in enumerate(PARTS)}


def slot0_is_left(view: str, mirrored: bool) -> bool:
    """Whether limb slot 0 is the person's left (front view unmirrored: the +u limb is on the image's
    right, which is the person's left; back and side views the other way; mirroring swaps)."""
    return (view == "front") != mirrored


def joint_owners(view: str) -> dict[str, tuple[str, ...]]:
    """Per slot-named joint, the parts whose pixels show it (elsewhere it is hidden: ``v = 1``).

    Face joints are hidden in back views (nose, eyes) and on the far side of side views; joints of
    the far limbs of a side view are shown only by that limb itself.
    """
    side = view == "side"
    out: dict[str, tuple[str, ...]] = {"nose": () if view == "back" else ("head", "hair", "hat")}
    for s in ("0", "1"):
        far = side and s == "1"
        face = () if far else ("head", "hair", "hat")
        out[f"eye{s}"] = () if view == "back" else face
        out[f"ear{s}"] = face
        out[f"shoulder{s}"] = (f"arm{s}",) if far else (f"arm{s}", "torso")
        out[f"elbow{s}"] = (f"arm{s}",)
        out[f"wrist{s}"] = (f"arm{s}",)
        out[f"hip{s}"] = (f"leg{s}",) if far else (f"leg{s}", "pelvis", "coat", "torso")
        out[f"knee{s}"] = (f"leg{s}",) if far else (f"leg{s}", "pelvis")
        out[f"ankle{s}"] = (f"leg{s}", f"shoe{s}")
    return out


def coco_name(joint: str, left0: bool) -> str:
    """COCO name of a slot-named joint (``shoulder0`` -> ``left_shoulder`` when slot 0 is left)."""
    if joint == "nose":
        return joint
    base, slot = joint[:-1], joint[-1]
    side = "left" if (slot == "0") == left0 else "right"
    return f"{side}_{base}"


def resolve_labels(labels: np.ndarray, left0: bool) -> np.ndarray:
    """Slot-named labels (slot 0 written as 'left') to the person's left/right."""
    return labels if left0 else ATR_FLIP[labels]


def keypoints_from_marks(joints: dict[str, tuple[float, float]], to_pixel: tuple[tuple[float, float, float],
                         tuple[float, float, float]], parts: np.ndarray, view: str, left0: bool) -> np.ndarray:
    """(17, 3) float COCO keypoints ``[x, y, v]`` from body-space joints and the parts map (H, W)."""
    (a, b, c), (d, e, f) = to_pixel
    h, w = parts.shape
    owners = joint_owners(view)
    out = np.zeros((len(COCO_KEYPOINTS), 3), dtype=np.float64)
    for joint, (u, v) in joints.items():
        col, row = a * u + b * v + c, d * u + e * v + f  # pixel-centre coordinates
        k = COCO_KEYPOINTS.index(coco_name(joint, left0))
        ri, ci = int(round(row)), int(round(col))
        if not (0 <= ri < h and 0 <= ci < w):
            continue  # outside the image: v = 0, x = y = 0
        shown = PARTS[int(parts[ri, ci])] in owners[joint]
        out[k] = (col + 0.5, row + 0.5, 2.0 if shown else 1.0)
    return out
