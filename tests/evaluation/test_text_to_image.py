"""The text-to-image protocol against a straightforward per-caption loop."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.evaluation.text_to_image import evaluate_text_to_image, text_to_image_plan
from vireid.types import Modality, Sample


def _loop(tf, tp, imf, ip):
    """Per caption: rank all images by dot product of L2-normalised features; first hit, AP, INP."""
    tf = tf / np.linalg.norm(tf, axis=1, keepdims=True)
    imf = imf / np.linalg.norm(imf, axis=1, keepdims=True)
    hits, aps, inps = [], [], []
    for q in range(len(tp)):
        order = np.argsort(-(imf @ tf[q]), kind="stable")
        match = ip[order] == tp[q]
        if not match.any():
            continue
        pos = np.flatnonzero(match)
        hits.append(pos[0])
        aps.append(np.mean([(k + 1) / (p + 1) for k, p in enumerate(pos)]))
        inps.append(len(pos) / (pos[-1] + 1))
    hits = np.array(hits)
    return {"rank1": 100 * np.mean(hits < 1), "rank5": 100 * np.mean(hits < 5), "rank10": 100 * np.mean(hits < 10),
            "mAP": 100 * np.mean(aps), "mINP": 100 * np.mean(inps), "num_valid": len(hits)}


def test_matches_the_per_caption_loop():
    rng = np.random.default_rng(0)
    ip = rng.integers(0, 15, 60)
    tp = np.concatenate([rng.integers(0, 15, 90), [99]])  # one caption without any image: skipped
    centres = rng.normal(size=(100, 16))
    imf = centres[ip] + 1.5 * rng.normal(size=(60, 16))
    tf = centres[tp] * rng.uniform(0.5, 3.0, (91, 1)) + 1.5 * rng.normal(size=(91, 16))  # norms differ: ignored
    got = evaluate_text_to_image(tf, tp, imf, ip)
    want = _loop(tf, tp, imf, ip)
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    assert got["num_valid"] == want["num_valid"] == 90 and got["num_query"] == 91 and got["num_gallery"] == 60


def test_plan_puts_captions_against_all_images():
    samples = [Sample("imgs/a.jpg", 1, 0, Modality.VISIBLE), Sample("imgs/a.jpg#0", 1, 0, Modality.TEXT),
               Sample("imgs/b.jpg", 2, 0, Modality.VISIBLE), Sample("imgs/b.jpg#1", 2, 0, Modality.TEXT)]
    plan = text_to_image_plan("x", samples, {"split": "test"})
    assert plan.trials[0].query.tolist() == [1, 3] and plan.trials[0].gallery.tolist() == [0, 2]
    assert plan.exclusion.value == "none" and plan.cmc_mode == "image" and plan.settings["split"] == "test"
    with pytest.raises(ValueError, match="needs captions and images"):
        text_to_image_plan("x", samples[::2])
