"""The attribute-word / colour-histogram text baseline on hand-made inputs."""

from __future__ import annotations

import numpy as np

from vireid.baselines.text_attributes import COLOURS, caption_vector, embed, image_vector
from vireid.data.synthetic.identity import PALETTE
from vireid.evaluation.text_to_image import evaluate_text_to_image


def test_vectors():
    v = caption_vector("A red shirt with white stripes, red shoes and a dark brown bag")
    assert v[COLOURS.index("red")] == 2 and v[COLOURS.index("white")] == 1 and v[COLOURS.index("brown")] == 1
    assert v.sum() == 4
    red = np.zeros((20, 10, 3), np.uint8) + (np.array(PALETTE["red"]) * 255).astype(np.uint8)
    assert image_vector(red)[COLOURS.index("red")] == 1.0
    gray = np.full((20, 10), 128, np.uint8)  # infrared: R = G = B
    assert image_vector(gray)[COLOURS.index("grey")] == 1.0


def test_colour_words_find_the_matching_image():
    images = [np.zeros((20, 10, 3), np.uint8) + (np.array(PALETTE[c]) * 255).astype(np.uint8)
              for c in ("red", "blue", "green")]
    tf, imf = embed(["a red coat", "blue trousers", "a green hat"], images)
    r = evaluate_text_to_image(tf, np.array([1, 2, 3]), imf, np.array([1, 2, 3]))
    assert r["rank1"] == 100.0 and r["mAP"] == 100.0
