"""What a synthetic person looks like: body shape, clothes, materials, hair and accessories.

Part of the procedural synthetic VI-ReID dataset (stands in for SYSU-MM01, Wu et al. ICCV'17;
not from a seed paper). The design point is the one that makes VI-ReID hard: a garment has a
visible **colour** and, independently, a **material** whose thermal level sets its infrared
intensity, so colour does not carry over between modalities. What does carry over is
geometry (body proportions, sleeve/leg length, coat length, skirt, hair style, accessories) and
fabric **patterns** (the two dyes of a pattern also differ in infrared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vireid.data.synthetic.shapes import PatternSpec

# Visible dye palette (RGB in [0, 1]). Several identities share each colour on purpose.
PALETTE: dict[str, tuple[float, float, float]] = {
    "black": (0.09, 0.09, 0.10), "white": (0.92, 0.92, 0.90), "grey": (0.50, 0.50, 0.52),
    "navy": (0.10, 0.14, 0.38), "blue": (0.20, 0.40, 0.80), "red": (0.80, 0.14, 0.14),
    "green": (0.18, 0.58, 0.25), "olive": (0.42, 0.44, 0.20), "beige": (0.85, 0.78, 0.60),
    "brown": (0.45, 0.30, 0.18), "yellow": (0.95, 0.84, 0.20), "pink": (0.95, 0.60, 0.70),
    "purple": (0.48, 0.24, 0.58), "orange": (0.95, 0.50, 0.10), "teal": (0.10, 0.55, 0.55),
    "sky": (0.55, 0.75, 0.95), "denim": (0.22, 0.32, 0.52), "khaki": (0.66, 0.60, 0.42),
}
TOP_COLOURS = tuple(PALETTE)
BOTTOM_COLOURS = ("black", "grey", "navy", "denim", "denim", "khaki", "brown", "beige", "black",
                  "blue", "olive", "white", "red", "green")
SHOE_COLOURS = ("black", "white", "brown", "grey", "red", "navy")

# Fabric -> infrared level (emissivity x body heat through the fabric), in [0, 1].
MATERIALS: dict[str, float] = {
    "silk": 0.70, "linen": 0.66, "cotton": 0.62, "polyester": 0.50, "denim": 0.52,
    "nylon": 0.45, "wool": 0.40, "fleece": 0.36, "down": 0.31, "leather": 0.26,
}
SKIN_TONES: tuple[tuple[float, float, float], ...] = (
    (0.96, 0.80, 0.69), (0.88, 0.68, 0.55), (0.74, 0.53, 0.39), (0.52, 0.35, 0.24), (0.36, 0.24, 0.17))
HAIR_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.06, 0.05, 0.05), (0.22, 0.14, 0.08), (0.42, 0.28, 0.15), (0.85, 0.72, 0.42),
    (0.62, 0.62, 0.62), (0.62, 0.26, 0.10))
HAIR_COLOUR_NAMES = ("black", "dark brown", "brown", "blond", "grey", "red")  # names of HAIR_COLOURS, for captions
HAIR_STYLES = ("short", "long", "bald", "ponytail", "bun")
TOP_PATTERNS = (("plain", 0.30), ("stripes", 0.34), ("checks", 0.18), ("dots", 0.18))
BOTTOM_PATTERNS = (("plain", 0.55), ("stripes", 0.18), ("checks", 0.15), ("dots", 0.12))


@dataclass(frozen=True)
class Garment:
    """A piece of fabric: visible colours of its two dyes, infrared levels, and pattern.

    ``ir_level`` is the infrared intensity of the first dye; the second dye (the pattern) is
    ``ir_level + ir_pattern_delta``. ``material`` names the fabric that set ``ir_level``.
    """

    colour: tuple[float, float, float]
    pattern_colour: tuple[float, float, float]
    ir_level: float
    ir_pattern_delta: float
    pattern: PatternSpec
    material: str
    colour_name: str = ""            # palette name of ``colour`` (captions)
    pattern_colour_name: str = ""    # palette name of ``pattern_colour``


@dataclass(frozen=True)
class BodyShape:
    """Proportions in units of the person's height (``v = 0`` top of head, ``v = 1`` soles)."""

    height: float        # relative stature, ~1; taller people fill more of the crop
    head_r: float        # head half-width
    shoulder_w: float    # half-width at the shoulders
    hip_w: float         # half-width at the hips
    hip_v: float         # where the legs start (leg length = 1 - hip_v)
    leg_r: float         # thigh radius
    arm_r: float         # upper-arm radius
    arm_len: float       # shoulder to wrist


@dataclass(frozen=True)
class IdentitySpec:
    """Everything that is constant for one person across cameras and images."""

    pid: int
    body: BodyShape
    skin: tuple[float, float, float]
    skin_ir: float
    hair_style: str
    hair_colour: tuple[float, float, float]
    hair_ir: float
    top: Garment
    sleeve: int              # 0 sleeveless, 1 short, 2 long
    top_extra: float         # coat length below the hips (0 = ends at the hips)
    bottom: Garment
    bottom_kind: str         # "trousers" | "capri" | "shorts" | "skirt"
    bottom_len: float        # covered share of the leg, or skirt length below the hips
    shoes: Garment
    hat: Garment | None
    hat_kind: str            # "cap" | "beanie" (meaningless without a hat)
    scarf: Garment | None
    backpack: Garment | None
    backpack_size: tuple[float, float]   # (half-width share of shoulders, height)
    bag: Garment | None
    bag_side: int            # +1 right shoulder strap, -1 left
    bag_size: tuple[float, float]        # (width, height)
    hair_colour_name: str = ""           # name of ``hair_colour`` (captions)


def _jitter_colour(rng: np.random.Generator, rgb: tuple[float, float, float],
                   amount: float = 0.07) -> tuple[float, float, float]:
    c = np.clip(np.asarray(rgb) * (1.0 + rng.normal(0.0, amount, 3)), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


def _choose(rng: np.random.Generator, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in weighted]
    p = np.array([w for _, w in weighted], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_pattern(rng: np.random.Generator, weighted: tuple[tuple[str, float], ...]) -> PatternSpec:
    """Draw a fabric pattern: kind, frequency (cycles per body height), orientation and phase."""
    kind = _choose(rng, weighted)
    phase = float(rng.random())
    if kind == "stripes":
        freq = float(rng.choice([6.0, 9.0, 13.0, 18.0]))
        angle = float(rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4]))
        return PatternSpec("stripes", freq * float(rng.uniform(0.93, 1.07)), angle, phase)
    if kind == "checks":
        freq = float(rng.choice([6.0, 9.0, 13.0]))
        angle = float(rng.choice([0.0, np.pi / 4]))
        return PatternSpec("checks", freq * float(rng.uniform(0.93, 1.07)), angle, phase)
    if kind == "dots":
        freq = float(rng.choice([8.0, 12.0, 16.0]))
        return PatternSpec("dots", freq * float(rng.uniform(0.95, 1.05)), 0.0, phase)
    return PatternSpec("plain", 0.0, 0.0, 0.0)


def sample_garment(rng: np.random.Generator, colours: tuple[str, ...],
                   patterns: tuple[tuple[str, float], ...] | None,
                   materials: tuple[str, ...] | None = None) -> Garment:
    """Draw a garment. Colour, material and pattern are drawn independently of each other."""
    first = str(rng.choice(colours))
    second = str(rng.choice([c for c in TOP_COLOURS if c != first]))
    material = str(rng.choice(materials if materials is not None else tuple(MATERIALS)))
    ir = float(np.clip(MATERIALS[material] + rng.normal(0.0, 0.03), 0.05, 0.95))
    delta = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.13, 0.26))
    if not 0.05 <= ir + delta <= 0.95:
        delta = -delta
    pattern = sample_pattern(rng, patterns) if patterns is not None else PatternSpec()
    return Garment(_jitter_colour(rng, PALETTE[first]), _jitter_colour(rng, PALETTE[second]),
                   ir, delta, pattern, material, first, second)


def _cold_accessory(rng: np.random.Generator, low: float, high: float,
                    patterns: tuple[tuple[str, float], ...] | None = None) -> Garment:
    """Accessories are not worn against the body: cold in infrared whatever their colour."""
    g = sample_garment(rng, TOP_COLOURS, patterns)
    return Garment(g.colour, g.pattern_colour, float(rng.uniform(low, high)), g.ir_pattern_delta * 0.6,
                   g.pattern, "accessory", g.colour_name, g.pattern_colour_name)


def sample_identity(rng: np.random.Generator, pid: int) -> IdentitySpec:
    """Draw one person. Pure function of the generator state (see ``generator.identity_rng``)."""
    shoulder = float(rng.uniform(0.085, 0.14))
    body = BodyShape(
        height=float(rng.uniform(0.90, 1.10)),
        head_r=float(rng.uniform(0.052, 0.068)),
        shoulder_w=shoulder,
        hip_w=shoulder * float(rng.uniform(0.70, 1.05)),
        hip_v=float(rng.uniform(0.46, 0.55)),
        leg_r=float(rng.uniform(0.030, 0.050)),
        arm_r=float(rng.uniform(0.021, 0.031)),
        arm_len=float(rng.uniform(0.34, 0.42)),
    )
    skin = _jitter_colour(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 0.04)
    hair_style = _choose(rng, (("short", 0.40), ("long", 0.25), ("bald", 0.08), ("ponytail", 0.15),
                               ("bun", 0.12)))
    hair_index = int(rng.integers(len(HAIR_COLOURS)))
    hair_colour = _jitter_colour(rng, HAIR_COLOURS[hair_index], 0.05)
    top = sample_garment(rng, TOP_COLOURS, TOP_PATTERNS)
    sleeve = int(rng.choice(3, p=[0.12, 0.35, 0.53]))
    top_extra = float(rng.uniform(0.18, 0.30)) if rng.random() < 0.18 else float(rng.uniform(0.0, 0.04))
    bottom = sample_garment(rng, BOTTOM_COLOURS, BOTTOM_PATTERNS)
    bottom_kind = _choose(rng, (("trousers", 0.55), ("capri", 0.10), ("shorts", 0.20), ("skirt", 0.15)))
    bottom_len = {"trousers": 0.96, "capri": float(rng.uniform(0.62, 0.75)),
                  "shorts": float(rng.uniform(0.28, 0.45)),
                  "skirt": float(rng.uniform(0.14, 0.30))}[bottom_kind]
    shoes = sample_garment(rng, SHOE_COLOURS, None, ("leather", "nylon", "down"))
    shoes = Garment(shoes.colour, shoes.colour, float(rng.uniform(0.16, 0.32)), 0.0, PatternSpec(), "shoe",
                    shoes.colour_name, shoes.colour_name)
    hat = _cold_accessory(rng, 0.22, 0.40) if rng.random() < 0.18 else None
    hat_kind = str(rng.choice(["cap", "beanie"]))
    scarf = _cold_accessory(rng, 0.30, 0.50, TOP_PATTERNS) if rng.random() < 0.15 else None
    backpack = _cold_accessory(rng, 0.10, 0.28) if rng.random() < 0.30 else None
    backpack_size = (float(rng.uniform(0.55, 0.85)), float(rng.uniform(0.17, 0.26)))
    bag = _cold_accessory(rng, 0.10, 0.30) if rng.random() < 0.25 else None
    bag_side = int(rng.choice([-1, 1]))
    bag_size = (float(rng.uniform(0.05, 0.09)), float(rng.uniform(0.06, 0.11)))
    return IdentitySpec(
        pid=pid, body=body, skin=skin, skin_ir=float(rng.uniform(0.84, 0.95)), hair_style=hair_style,
        hair_colour=hair_colour, hair_ir=float(rng.uniform(0.50, 0.64)), top=top, sleeve=sleeve,
        top_extra=top_extra, bottom=bottom, bottom_kind=bottom_kind, bottom_len=bottom_len, shoes=shoes,
        hat=hat, hat_kind=hat_kind, scarf=scarf, backpack=backpack, backpack_size=backpack_size,
        bag=bag, bag_side=bag_side, bag_size=bag_size, hair_colour_name=HAIR_COLOUR_NAMES[hair_index])
