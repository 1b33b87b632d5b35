"""Captions of synthetic people from their attributes, in the CUHK-PEDES form (Li et al., CVPR'17).

Every attribute the identity has (hair, top, bottom, shoes, hat, scarf, backpack, shoulder bag) is
written as a phrase; two captions per image fill two different sentence templates with the same
phrases (the template choice is a pure function of the seed and the image). Colours are the
visible dye names: the infrared image shows the fabric's material, not its colour
(:mod:`vireid.data.synthetic.identity`), so, as with real data, a caption's colour words cannot be
read from the infrared image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vireid.data.synthetic.identity import Garment, IdentitySpec

PATTERN_NOUNS = {"stripes": "stripes", "checks": "checks", "dots": "dots"}
BOTTOM_NOUNS = {"trousers": "trousers", "capri": "cropped trousers", "shorts": "shorts", "skirt": "skirt"}
TOP_NOUNS = {0: "sleeveless top", 1: "short-sleeved shirt", 2: "long-sleeved shirt"}
COAT_NOUNS = {0: "sleeveless coat", 1: "short-sleeved coat", 2: "long coat"}
ACCESSORY_NOUNS = ("backpack", "shoulder bag", "cap", "beanie", "scarf")
TEMPLATES = (
    "A person with {hair}, wearing {top} and {bottom} with {shoes}{extras}.",
    "This pedestrian wears {top}, {bottom} and {shoes}, and has {hair}{extras}.",
    "The person has {hair} and is dressed in {top} over {bottom}, with {shoes} on the feet{extras}.",
    "Wearing {top} and {bottom}, this person has {hair} and {shoes}{extras}.",
    "Someone in {top} and {bottom}, with {hair} and {shoes}{extras}.",
)


@dataclass(frozen=True)
class Attributes:
    """The phrases of one identity; ``colours`` lists every colour word used, in order."""

    hair: str
    top: str
    bottom: str
    shoes: str
    carried: tuple[str, ...]   # "a red backpack", "a grey shoulder bag"
    worn: tuple[str, ...]      # "a black cap", "a blue scarf"
    colours: tuple[str, ...]


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article ("an orange cap", "a red cap")."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _garment(g: Garment, noun: str, article: bool) -> tuple[str, list[str]]:
    head = _a(f"{g.colour_name} {noun}") if article else f"{g.colour_name} {noun}"
    if g.pattern.kind in PATTERN_NOUNS:
        return f"{head} with {g.pattern_colour_name} {PATTERN_NOUNS[g.pattern.kind]}", [g.colour_name,
                                                                                      g.pattern_colour_name]
    return f"{head}", [g.colour_name]


def describe(ident: IdentitySpec) -> Attributes:
    """The attribute phrases of ``ident`` (everything it has, nothing it has not)."""
    colours: list[str] = []
    style, hc = ident.hair_style, ident.hair_colour_name
    hair = {"bald": "a bald head", "ponytail": f"{hc} hair in a ponytail", "bun": f"{hc} hair in a bun"}.get(
        style, f"{style} {hc} hair")
    if style != "bald":
        colours.append(hc)
    nouns = COAT_NOUNS if ident.top_extra > 0.1 else TOP_NOUNS
    top, c = _garment(ident.top, nouns[ident.sleeve], True)
    colours += c
    bottom, c = _garment(ident.bottom, BOTTOM_NOUNS[ident.bottom_kind], ident.bottom_kind == "skirt")
    colours += c
    shoes = f"{ident.shoes.colour_name} shoes"
    colours.append(ident.shoes.colour_name)
    carried, worn = [], []
    if ident.backpack is not None:
        carried.append(_a(f"{ident.backpack.colour_name} backpack"))
        colours.append(ident.backpack.colour_name)
    if ident.bag is not None:
        carried.append(_a(f"{ident.bag.colour_name} shoulder bag"))
        colours.append(ident.bag.colour_name)
    if ident.hat is not None:
        worn.append(_a(f"{ident.hat.colour_name} {ident.hat_kind}"))
        colours.append(ident.hat.colour_name)
    if ident.scarf is not None:
        worn.append(_a(f"{ident.scarf.colour_name} scarf"))
        colours.append(ident.scarf.colour_name)
    return Attributes(hair, top, bottom, shoes, tuple(carried), tuple(worn), tuple(colours))


def _extras(attrs: Attributes) -> str:
    out = ""
    if attrs.carried:
        out += ", carrying " + " and ".join(attrs.carried)
    if attrs.worn:
        out += (", and wearing " if attrs.carried else ", wearing ") + " and ".join(attrs.worn)
    return out


def make_captions(ident: IdentitySpec, rng: np.random.Generator, n: int = 2) -> list[str]:
    """``n`` captions of ``ident`` from ``n`` different templates drawn with ``rng``."""
    attrs = describe(ident)
    picks = rng.choice(len(TEMPLATES), size=n, replace=False)
    return [TEMPLATES[int(i)].format(hair=attrs.hair, top=attrs.top, bottom=attrs.bottom, shoes=attrs.shoes,
                                     extras=_extras(attrs)) for i in picks]


def tokenize(caption: str) -> list[str]:
    """Lower-case word tokens (the ``processed_tokens`` field of CUHK-PEDES)."""
    return re.findall(r"[a-z]+", caption.lower())
