"""Builders of dataset trees of empty files with the real naming and the official counts
(PROTOCOLS.md "Single-modality, occluded, partial and text-based re-ID"), for the reader tests."""

from __future__ import annotations

import json
import os
from pathlib import Path


def touch(root: Path, relpaths: list[str]) -> None:
    """Empty files at ``root/relpath`` (hard links to one blank file: fast)."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in {os.path.dirname(p) for p in relpaths}:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(relpaths):
        if i % 60000 == 0:  # ext4 allows 65,000 links per file
            blank = root.parent / f".blank-{root.name}-{len(os.listdir(root.parent))}"
            blank.touch()
        os.link(blank, root / p)


def spread(n_images: int, pids: list[int]) -> list[int]:
    """The pid of each of ``n_images`` images, every pid at least once, as even as possible."""
    return [pids[i % len(pids)] for i in range(n_images)]


def market_names(pids: list[int], num_cameras: int, style: str = "market", start: int = 0) -> list[str]:
    out = []
    n_ids = len(set(pids))
    for k, pid in enumerate(pids):
        cam = (k // n_ids) % num_cameras + 1  # an identity's images cycle through the cameras
        if style == "market":
            out.append(f"{pid:04d}_c{cam}s1_{start + k:06d}_00.jpg" if pid >= 0 else f"-1_c{cam}s1_{start + k:06d}_00.jpg")
        elif style == "duke":
            out.append(f"{pid:04d}_c{cam}_f{start + k:07d}.jpg")
        else:  # cuhk03-np copy
            out.append(f"{pid:04d}_c{cam}_{start + k:02d}.png")
    return out


def build_market_style(root: Path, counts: dict[str, tuple[int, int]], num_cameras: int, style: str,
                       junk: int = 0, distractors: int = 0, gallery_distractor_ids: int = 0) -> None:
    """``counts[split] = (images, ids)``; query ids are the first of the test ids."""
    train_ids = list(range(1, 2 * counts["train"][1], 2))
    test_ids = list(range(2, 2 * counts["gallery"][1] + 1, 2))
    rel = [f"bounding_box_train/{n}" for n in market_names(spread(counts["train"][0], train_ids), num_cameras, style)]
    q_ids = test_ids[: counts["query"][1]]
    rel += [f"query/{n}" for n in market_names(spread(counts["query"][0], q_ids), num_cameras, style, 10**5)]
    g_pids = spread(counts["gallery"][0] - distractors, test_ids) + [0] * distractors + [-1] * junk
    rel += [f"bounding_box_test/{n}" for n in market_names(g_pids, num_cameras, style, 2 * 10**5)]
    touch(root, rel)


def build_text(root: Path, json_name: str, path_key: str, counts: dict[str, tuple[int, int, int]],
               id_base: int = 1) -> list[dict]:
    """``counts[split] = (images, ids, captions)`` (captions 0: two per image, as in the datasets)."""
    entries, rel, next_id = [], [], id_base
    for split, (n_images, n_ids, n_captions) in counts.items():
        ids = list(range(next_id, next_id + n_ids))
        next_id += n_ids
        n_captions = n_captions or 2 * n_images
        for k, pid in enumerate(spread(n_images, ids)):
            caps = n_captions // n_images + (1 if k < n_captions % n_images else 0)
            path = f"{split}/{pid:05d}/{pid:05d}_{k:06d}.jpg"
            entries.append({"split": split, path_key: path, "id": pid,
                            "captions": [f"a person {pid} caption {c}" for c in range(caps)],
                            "processed_tokens": [["a", "person"] for _ in range(caps)]})
            rel.append(f"imgs/{path}")
    touch(root, rel)
    (root / json_name).write_text(json.dumps(entries))
    return entries
