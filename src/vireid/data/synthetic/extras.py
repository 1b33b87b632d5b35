"""The synthetic world's ground truth and derived sets, in the layouts real tools read.

``generate_extras(OUT, SyntheticConfig(...), workers=N)`` writes, for the same people as the
SYSU-layout dataset of that config (same images, same bytes)::

    OUT/Market-1501/{bounding_box_train,query,bounding_box_test}/<pid>_c<cam>s1_<frame>_00.jpg
        visible cams 1, 2, 4, 5; train ids -> train; test ids: image 0 of each camera -> query, the
        rest -> gallery; val ids -> gallery distractors (0000) and one junk crop each (-1)
    OUT/Market-1501/annotations/person_keypoints.json    COCO keypoints (17 joints, visibility)
    OUT/Market-1501/parsing/<split>/<name>.png            ATR label PNGs (single channel, ids 0..17)
    OUT/Market-1501/captions.json                         CUHK-PEDES form, file_path = the image path
    OUT/CUHK-PEDES/imgs/cam<c>/<pid>_<k>.jpg + reid_raw.json   all six cameras (3, 6 infrared), 1-based ids
    OUT/SYSU-layout/annotations/person_keypoints.json, SYSU-layout/parsing/cam<c>/<pid>/<k>.png
        keypoints and ATR parsing of every image of the SYSU-layout set ``vireid synth`` writes with
        the same arguments (``cam<c>/<pid:04d>/<k:04d>.jpg``, infrared cameras included): the
        ``data.aux`` sidecars of VI-ReID training with keypoints or parsing (SPOT, SAP)
    OUT/Occluded_REID/{occluded_body_images,whole_body_images}/NNN/NNN_XX.jpg, occluder_masks/NNN/NNN_XX.png,
        annotations/person_keypoints.json                 test ids, visible cams
    OUT/Partial_REID/{partial_body_images,whole_body_images}/NNN_XX.jpg, partial_boxes.json,
        annotations/person_keypoints.json
    OUT/contact_sheet.png (keypoints and parsing overlaid), OUT/meta.json

Identities are rendered in parallel processes (``workers``); every record is sorted before it is
written, so the output is byte-identical whatever the number of workers (a pure function of the
config). Written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vireid.data.synthetic import truth as T
from vireid.data.synthetic.captions import make_captions, tokenize
from vireid.data.synthetic.generator import (GENERATOR_NAME, GENERATOR_VERSION, JPEG_QUALITY, DatasetPlan,
                                             SyntheticConfig, _check_target, identity_spec, make_rng, plan_dataset)
from vireid.data.synthetic.views import Truth, partial_view, render_truth
from vireid.utils.io import atomic_write_json, replace_dir

VISIBLE_CAMS = (1, 2, 4, 5)
ALL_CAMS = (1, 2, 3, 4, 5, 6)
VIEWS_PER_ID = 5   # occluded + whole, partial + whole images per identity (Occluded-REID / Partial-REID)
_CAPTION = 103


def _save_jpg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def _kp_record(file_name: str, t: Truth) -> dict[str, Any]:
    h, w = t.labels.shape
    return {"file_name": file_name, "width": int(w), "height": int(h), "view": t.view,
            "keypoints": [round(float(x), 2) for x in t.keypoints.reshape(-1)],
            "num_keypoints": int((t.keypoints[:, 2] > 0).sum()), "bbox": [float(x) for x in t.bbox()]}


def _captions(config: SyntheticConfig, pid: int, cam: int, k: int, cache: dict[Any, Any]) -> list[str]:
    return make_captions(cache[("id", pid)], make_rng(config.seed, _CAPTION, pid, cam, k))


def _identity(args: tuple[SyntheticConfig, DatasetPlan, int, str, str]) -> dict[str, list[Any]]:
    """Render and write everything of one identity; return its JSON records."""
    config, plan, pid, split, root_str = args
    root = Path(root_str)
    cache: dict[Any, Any] = {("id", pid): identity_spec(config, pid)}
    out: dict[str, list[Any]] = {"market_kp": [], "market_cap": [], "pedes": [], "occ_kp": [], "par_kp": [],
                                 "par_box": [], "sysu_kp": []}
    market = root / "Market-1501"
    visible: list[tuple[int, int]] = []
    for cam in ALL_CAMS:
        for k in range(plan.counts[cam].get(pid, 0)):
            t = render_truth(config, pid, cam, k, cache)
            caps = _captions(config, pid, cam, k, cache)
            rel = f"cam{cam}/{pid:04d}_{k + 1:02d}.jpg"
            _save_jpg(root / "CUHK-PEDES" / "imgs" / rel, t.image)
            out["pedes"].append({"split": split, "captions": caps, "file_path": rel, "id": pid,
                                 "processed_tokens": [tokenize(c) for c in caps]})
            sysu_rel = f"cam{cam}/{pid:04d}/{k + 1:04d}"  # the image of `vireid synth` with the same arguments
            out["sysu_kp"].append(_kp_record(f"{sysu_rel}.jpg", t))
            _save_png(root / "SYSU-layout" / "parsing" / f"{sysu_rel}.png", t.labels)
            if cam not in VISIBLE_CAMS:
                continue
            visible.append((cam, k))
            if split == "train":
                folder, name = "bounding_box_train", f"{pid:04d}_c{cam}s1_{k + 1:06d}_00.jpg"
            elif split == "test":
                folder, name = ("query" if k == 0 else "bounding_box_test"), f"{pid:04d}_c{cam}s1_{k + 1:06d}_00.jpg"
            else:  # val ids: distractors of the gallery
                folder, name = "bounding_box_test", f"0000_c{cam}s1_{pid * 100 + k + 1:06d}_00.jpg"
            _save_jpg(market / folder / name, t.image)
            _save_png(market / "parsing" / folder / name.replace(".jpg", ".png"), t.labels)
            out["market_kp"].append(_kp_record(f"{folder}/{name}", t))
            out["market_cap"].append({"split": split, "captions": caps, "file_path": f"{folder}/{name}",
                                      "id": 0 if split == "val" else pid,
                                      "processed_tokens": [tokenize(c) for c in caps]})
            if split == "val" and len(visible) == 1:  # a junk detection: the legs only, stretched
                h = t.image.shape[0]
                junk = np.asarray(Image.fromarray(t.image[h // 2:]).resize((t.image.shape[1], h)))
                _save_jpg(market / "bounding_box_test" / f"-1_c{cam}s1_{pid * 100:06d}_01.jpg", junk)
    if split == "test" and len(visible) >= 2:
        half = min(VIEWS_PER_ID, len(visible) // 2)
        for j, (cam, k) in enumerate(visible[:2 * half]):
            whole = j >= half
            n = (j - half if whole else j) + 1
            t = render_truth(config, pid, cam, k, cache, occluded=not whole)
            sub = "whole_body_images" if whole else "occluded_body_images"
            name = f"{pid:03d}/{pid:03d}_{n:02d}"
            _save_jpg(root / "Occluded_REID" / sub / f"{name}.jpg", t.image)
            out["occ_kp"].append(_kp_record(f"{sub}/{name}.jpg", t))
            if t.mask is not None:
                _save_png(root / "Occluded_REID" / "occluder_masks" / f"{name}.png", t.mask.astype(np.uint8) * 255)
            full = render_truth(config, pid, cam, k, cache)
            p = full if whole else partial_view(full, config, pid, cam, k)
            sub = "whole_body_images" if whole else "partial_body_images"
            name = f"{pid:03d}_{n:02d}.jpg"
            _save_jpg(root / "Partial_REID" / sub / name, p.image)
            out["par_kp"].append(_kp_record(f"{sub}/{name}", p))
            if p.box is not None:
                out["par_box"].append([f"{sub}/{name}", {"box": list(p.box), "source": f"cam{cam}/{pid:04d}_{k + 1:02d}.jpg"}])
    return out


def _coco(records: list[dict[str, Any]], description: str) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r["file_name"])
    images, anns = [], []
    for i, r in enumerate(records, start=1):
        images.append({"id": i, "file_name": r["file_name"], "width": r["width"], "height": r["height"]})
        x, y, w, h = r["bbox"]
        anns.append({"id": i, "image_id": i, "category_id": 1, "keypoints": r["keypoints"],
                     "num_keypoints": r["num_keypoints"], "bbox": r["bbox"], "area": w * h, "iscrowd": 0,
                     "view": r["view"]})
    return {"info": {"description": description, "version": GENERATOR_VERSION}, "images": images,
            "annotations": anns, "categories": [{"id": 1, "name": "person", "supercategory": "person",
                                                 "keypoints": list(T.COCO_KEYPOINTS),
                                                 "skeleton": [list(p) for p in T.COCO_SKELETON]}]}


def generate_extras(out_dir: str | os.PathLike[str], config: SyntheticConfig, *, workers: int = 1,
                    force: bool = False, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the sets above to ``out_dir``; return the summary saved as ``meta.json``."""
    from vireid.data.synthetic.extras_sheet import make_extras_sheet

    config.validate()
    out = Path(out_dir).absolute()
    _check_target(out, force)
    plan = plan_dataset(config)
    split_of = {**{p: "train" for p in plan.train_ids}, **{p: "val" for p in plan.val_ids},
                **{p: "test" for p in plan.test_ids}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        jobs = [(config, plan, pid, split_of[pid], str(tmp)) for pid in range(1, config.num_ids + 1)]
        merged: dict[str, list[Any]] = {}
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                results = pool.map(_identity, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
                for i, res in enumerate(results, start=1):
                    for key, recs in res.items():
                        merged.setdefault(key, []).extend(recs)
                    if progress is not None:
                        progress(i, len(jobs))
        else:
            for i, job in enumerate(jobs, start=1):
                for key, recs in _identity(job).items():
                    merged.setdefault(key, []).extend(recs)
                if progress is not None:
                    progress(i, len(jobs))
        by_path = lambda r: r["file_path"]  # noqa: E731
        atomic_write_json(tmp / "Market-1501" / "annotations" / "person_keypoints.json",
                          _coco(merged["market_kp"], "vireid synthetic Market-1501-layout set"), indent=None)
        atomic_write_json(tmp / "Market-1501" / "captions.json", sorted(merged["market_cap"], key=by_path), indent=None)
        atomic_write_json(tmp / "CUHK-PEDES" / "reid_raw.json", sorted(merged["pedes"], key=by_path), indent=None)
        atomic_write_json(tmp / "SYSU-layout" / "annotations" / "person_keypoints.json",
                          _coco(merged["sysu_kp"], "vireid synthetic SYSU-layout set (vireid synth, same arguments)"),
                          indent=None)
        atomic_write_json(tmp / "Occluded_REID" / "annotations" / "person_keypoints.json",
                          _coco(merged["occ_kp"], "vireid synthetic Occluded-REID-layout set"), indent=None)
        atomic_write_json(tmp / "Partial_REID" / "annotations" / "person_keypoints.json",
                          _coco(merged["par_kp"], "vireid synthetic Partial-REID-layout set"), indent=None)
        atomic_write_json(tmp / "Partial_REID" / "partial_boxes.json", dict(sorted(merged["par_box"])))
        sheet_ids = list(plan.test_ids[:4])
        make_extras_sheet(config, plan, sheet_ids, tmp / "contact_sheet.png")
        meta = {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "layout": "extras", "config": asdict(config),
                "sets": {"SYSU-layout": len(merged["sysu_kp"]), "Market-1501": len(merged["market_kp"]), "CUHK-PEDES images": len(merged["pedes"]),
                         "Occluded_REID": len(merged["occ_kp"]), "Partial_REID": len(merged["par_kp"])},
                "parsing_labels": list(T.ATR_LABELS), "keypoints": list(T.COCO_KEYPOINTS),
                "contact_sheet_ids": sheet_ids}
        atomic_write_json(tmp / "meta.json", meta)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file written by :func:`generate_extras`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
