"""MCMA end to end: ``vireid train-text`` then ``vireid search-text`` on a tiny caption + image set. Each of
10 colour combinations is worn by one training and one test identity (other renderings: background and noise),
so the test checks that the whole pipeline learns and retrieves, not that it generalises to new wordings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vireid.cli import main

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 50, 220), "yellow": (230, 220, 40),
           "white": (245, 245, 245)}


def _dataset(root, rng):
    names = list(COLOURS)
    combos = [(t, b) for t in names for b in names if t != b]
    chosen = [combos[i] for i in rng.permutation(len(combos))[:10]]
    entries = []
    for pid in range(1, 21):
        top, bottom = chosen[(pid - 1) % 10]
        split = "train" if pid <= 10 else "test"
        for k in range(3):
            img = np.zeros((32, 16, 3), np.float32) + rng.uniform(40, 90)  # background
            img[4:16, 3:13] = COLOURS[top]
            img[16:29, 4:12] = COLOURS[bottom]
            img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
            rel = f"p{pid:02d}/{k}.png"
            (root / "imgs" / f"p{pid:02d}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / "imgs" / rel)
            entries.append({"split": split, "file_path": rel, "id": pid,
                            "captions": [f"a person wearing a {top} shirt and {bottom} trousers.",
                                         f"the {bottom} trousers go with a {top} top."]})
    (root / "reid_raw.json").write_text(json.dumps(entries))


@pytest.mark.slow
def test_train_text_then_search_text(tmp_path, capsys):
    _dataset(tmp_path / "pedes", np.random.default_rng(0))
    recipe = tmp_path / "mcma.yaml"
    recipe.write_text(f"""
name: tiny
data: {{dataset: cuhk-pedes, root: {tmp_path / 'pedes'}, height: 32, width: 16, num_ids: 4, num_instances: 2,
        pad: 0, flip: false, caption_length: 16, vocab_size: 64, batches_per_epoch: 20}}
model: {{arch: resnet18, dim: 32, text_depth: 1, text_heads: 2, decoder_depth: 2, ema_momentum: 0.9}}
optim: {{lr: 0.002, epochs: 4}}
runtime: {{device: cpu, seed: 0, num_threads: 1}}
""")
    assert main(["train-text", "--config", str(recipe), "--run-dir", str(tmp_path / "run"), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert (tmp_path / "run" / "tokenizer.json").is_file() and (tmp_path / "run" / "last.pt").is_file()
    assert main(["search-text", "--run", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mean"] == pytest.approx(trained["mean"], abs=1e-6)  # the saved run scores as trained
    assert result["trials"][0]["num_query"] == 60 and result["trials"][0]["num_gallery"] == 30
    chance = result["settings"]["chance_rank1"]
    assert chance == pytest.approx(10.0, abs=0.01)  # 3 of 30 gallery images per caption
    assert result["mean"]["rank1"] > 3 * chance, result["mean"]
    # a gallery of two identities' folders: their 6 images, and their 12 captions as the queries
    assert main(["search-text", "--run", str(tmp_path / "run"), "--gallery-dir", "p11", "--gallery-dir", "p12",
                 "--json"]) == 0
    part = json.loads(capsys.readouterr().out)
    assert part["trials"][0]["num_query"] == 12 and part["trials"][0]["num_gallery"] == 6
    assert part["settings"]["chance_rank1"] == pytest.approx(50.0, abs=0.01)
    assert main(["search-text", "--run", str(tmp_path / "run"), "--gallery-dir", "p01", "--json"]) == 2
    assert "--gallery-dir p01: no test image" in capsys.readouterr().err
    assert main(["search-text", "--run", str(tmp_path / "run"), "--query", "a person wearing a red shirt and blue trousers.",
                 "--top", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    code = main(["search-text", "--run", str(tmp_path), "--json"])
    assert code == 2 and "not a vireid train-text run folder" in capsys.readouterr().err
