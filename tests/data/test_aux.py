"""Auxiliary data transformed with the image: flips swap left/right (checked against the renderer's
own mirrored view), crops and pads move coordinates, resizing keeps label ids; sidecar errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from vireid.data import aux as A
from vireid.data.aux_dataset import AuxImageDataset, Vocabulary, collate_aux
from vireid.data.synthetic import SyntheticConfig
from vireid.data.synthetic import truth as T
from vireid.data.synthetic.views import render_truth
from vireid.errors import DatasetError

CFG = SyntheticConfig(num_ids=60, seed=7, height=96, width=48)
OWN = {"wrist": ("arm", {T.UPPER}), "elbow": ("arm", {T.UPPER}), "ankle": ("leg", {T.PANTS, T.SKIRT}),
       "knee": ("leg", {T.PANTS, T.SKIRT})}
SIDE_LABELS = {("left", "arm"): T.LEFT_ARM, ("right", "arm"): T.RIGHT_ARM, ("left", "leg"): T.LEFT_LEG,
               ("right", "leg"): T.RIGHT_LEG}
SHOES = {"left": T.LEFT_SHOE, "right": T.RIGHT_SHOE}


def _sample(t):
    return A.AuxSample(t.image if t.image.ndim == 3 else np.stack([t.image] * 3, axis=2), t.keypoints.copy(),
                       {"parsing": t.labels.copy()}, {"parsing": T.ATR_FLIP})


def _side_x(kp, joint):
    """x of the left joint minus x of the right one (None unless both are visible)."""
    left, right = kp[T.COCO_KEYPOINTS.index(f"left_{joint}")], kp[T.COCO_KEYPOINTS.index(f"right_{joint}")]
    return None if left[2] < 2 or right[2] < 2 else left[0] - right[0]


def test_flipped_keypoints_land_on_the_mirrored_body_part():
    compared = 0
    for pid in range(1, 61):
        for cam in (1, 3, 4):
            flipped = A.hflip(_sample(render_truth(CFG, pid, cam, 0)))
            # every visible wrist/elbow/ankle/knee of the flipped sample lies on that side's part
            for name, (x, y, v) in zip(T.COCO_KEYPOINTS, flipped.keypoints):
                base = name.split("_")[-1]
                if v < 2 or base not in OWN:
                    continue
                side = name.split("_")[0]
                label = int(flipped.maps["parsing"][int(y), int(x)])
                allowed = OWN[base][1] | {SIDE_LABELS[(side, OWN[base][0])]}
                if base == "ankle":
                    allowed |= {SHOES[side]}
                assert label in allowed, (pid, cam, name, T.ATR_LABELS[label])
            # the renderer drawing the same person through the mirrored camera agrees on which side is which
            mirrored = render_truth(CFG, pid, cam, 0, mirror_camera=True)
            for joint in ("shoulder", "hip", "wrist", "ankle", "eye"):
                a, b = _side_x(flipped.keypoints, joint), _side_x(mirrored.keypoints, joint)
                if a is not None and b is not None and abs(a) > 2 and abs(b) > 2:
                    assert np.sign(a) == np.sign(b), (pid, cam, joint, a, b)
                    compared += 1
            for left, right in ((T.LEFT_ARM, T.RIGHT_ARM), (T.LEFT_LEG, T.RIGHT_LEG)):
                got, want = flipped.maps["parsing"], mirrored.labels
                if min((got == left).sum(), (got == right).sum(), (want == left).sum(), (want == right).sum()) < 5:
                    continue
                mean_x = lambda m, lab: np.nonzero(m == lab)[1].mean()  # noqa: E731
                a, b = mean_x(got, left) - mean_x(got, right), mean_x(want, left) - mean_x(want, right)
                if abs(a) > 2 and abs(b) > 2:
                    assert np.sign(a) == np.sign(b), (pid, cam, T.ATR_LABELS[left])
                    compared += 1
    assert compared > 200


def test_flip_twice_is_identity_and_swaps_labels():
    t = render_truth(CFG, 3, 1, 0)
    s = _sample(t)
    back = A.hflip(A.hflip(s))
    np.testing.assert_array_equal(back.image, s.image)
    np.testing.assert_array_equal(back.maps["parsing"], s.maps["parsing"])
    np.testing.assert_allclose(back.keypoints, s.keypoints)
    once = A.hflip(s)
    for lab in (T.LEFT_ARM, T.LEFT_LEG, T.LEFT_SHOE):
        assert (once.maps["parsing"] == T.ATR_FLIP[lab]).sum() == (s.maps["parsing"] == lab).sum()


def test_crop_pad_resize_move_coordinates():
    img = np.zeros((20, 10, 3), np.uint8)
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (4.5, 12.5, 2)
    kp[1] = (9.5, 1.5, 1)
    parsing = np.zeros((20, 10), np.uint8)
    parsing[12, 4] = T.FACE
    s = A.AuxSample(img, kp, {"parsing": parsing}, {"parsing": T.ATR_FLIP})
    c = A.crop(s, top=5, left=2, height=10, width=6)
    assert tuple(c.keypoints[0]) == (2.5, 7.5, 2) and tuple(c.keypoints[1]) == (0, 0, 0)  # left the window
    assert c.maps["parsing"][7, 2] == T.FACE and c.image.shape == (10, 6, 3)
    p = A.pad(s, 3)
    assert tuple(p.keypoints[0]) == (7.5, 15.5, 2) and p.maps["parsing"][15, 7] == T.FACE
    r = A.resize(s, 40, 20)
    assert tuple(r.keypoints[0]) == (9.0, 25.0, 2)
    assert set(np.unique(r.maps["parsing"])) == {0, T.FACE} and r.maps["parsing"][25, 9] == T.FACE
    f = A.hflip(s)
    assert tuple(f.keypoints[T.COCO_FLIP[0]]) == (5.5, 12.5, 2) and f.maps["parsing"][12, 5] == T.FACE
    with pytest.raises(ValueError, match="not inside"):
        A.crop(s, 15, 0, 10, 10)


def test_heatmaps_peak_at_the_joint():
    kp = np.zeros((17, 3), np.float32)
    kp[5] = (18.0, 34.0, 2)
    maps = A.keypoint_heatmaps(kp, 64, 32, stride=4)
    assert maps.shape == (17, 16, 8) and maps[0].abs().sum() == 0
    row, col = divmod(int(maps[5].argmax()), 8)
    assert (row, col) == (8, 4) and maps[5, 8, 4] == pytest.approx(np.exp(-(0.0**2 + 0.0**2)), abs=0.2)


@pytest.mark.slow
def test_dataset_batches_carry_consistent_aux(tmp_path, caplog):
    from vireid.data.datasets import build_dataset
    from vireid.data.synthetic.extras import generate_extras

    generate_extras(tmp_path / "x", SyntheticConfig(num_ids=6, seed=2, images_per_camera=2, height=64, width=32))
    root = tmp_path / "x" / "Market-1501"
    ds = build_dataset("market1501", root, counts="off")
    kps = A.KeypointSidecar(root / "annotations" / "person_keypoints.json")
    parsing = A.ParsingSidecar(root / "parsing")
    caps = A.CaptionSidecar(root / "captions.json")
    vocab = Vocabulary.build(c for v in caps.captions.values() for c in v)
    data = AuxImageDataset(ds.train[:8], 64, 32, train=True, keypoints=kps, parsing=parsing, captions=caps,
                           vocab=vocab, seed=1)
    batch = collate_aux([data[i] for i in range(8)])
    assert batch.images.shape == (8, 3, 64, 32) and batch.aux["keypoints"].shape == (8, 17, 3)
    assert batch.aux["heatmaps"].shape == (8, 17, 16, 8) and batch.aux["parsing"].shape == (8, 64, 32)
    assert batch.aux["tokens"].shape == (8, 64) and int(batch.aux["tokens"][:, 0].min()) > 1
    # every visible wrist of the augmented batch still lies on an arm of its side (or a long sleeve)
    for i in range(8):
        for side, lab in (("left", T.LEFT_ARM), ("right", T.RIGHT_ARM)):
            x, y, v = batch.aux["keypoints"][i, T.COCO_KEYPOINTS.index(f"{side}_wrist")].tolist()
            if v == 2:
                assert int(batch.aux["parsing"][i, int(y), int(x)]) in (lab, T.UPPER)
    missing = A.ParsingSidecar(tmp_path, missing="empty")
    with caplog.at_level(logging.WARNING):
        assert missing.get("query/none.jpg", (4, 2)).sum() == 0 and missing.num_missing == 1
    assert "using an all-background map" in caplog.text


def test_sidecar_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"missing label map .*a/b\.png for image 'a/b\.jpg'"):
        A.ParsingSidecar(tmp_path).get("a/b.jpg", (4, 2))
    (tmp_path / "k.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "q/x.jpg"}],
                                                 "annotations": [{"id": 1, "image_id": 1, "keypoints": [0] * 51}]}))
    side = A.KeypointSidecar(tmp_path / "k.json")
    assert side.get("q/x.jpg").shape == (17, 3)
    with pytest.raises(DatasetError, match=r"k\.json has no annotation for image 'q/y\.jpg'"):
        side.get("q/y.jpg")
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="not a COCO keypoints JSON"):
        A.KeypointSidecar(tmp_path / "bad.json")
    Image.fromarray(np.zeros((4, 2, 3), np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(DatasetError, match="mode RGB, expected a single-channel label PNG"):
        A.ParsingSidecar(tmp_path).get("c.jpg", (4, 2))
    with pytest.raises(DatasetError, match="has no captions for image"):
        A.CaptionSidecar(tmp_path / "k.json" if False else _captions(tmp_path)).get("nope.jpg")


def _captions(tmp_path):
    (tmp_path / "caps.json").write_text(json.dumps([{"file_path": "a.jpg", "captions": ["a red shirt"]}]))
    return tmp_path / "caps.json"
