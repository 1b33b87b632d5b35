"""``vireid evaluate-features`` on the Market-style and text-to-image readers (tiny trees of empty files)."""

from __future__ import annotations

import json
import os

import numpy as np

from vireid.cli import main
from vireid.evaluation.features import save_features


def _touch(root, rel):
    for p in rel:
        os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
        open(os.path.join(root, p), "w").close()


def test_market_and_text_through_the_cli(tmp_path, capsys):
    market = ["bounding_box_train/0002_c1s1_000001_00.jpg", "query/0001_c1s1_000010_00.jpg",
              "bounding_box_test/0001_c1s1_000011_00.jpg", "bounding_box_test/0000_c3s1_000012_00.jpg",
              "bounding_box_test/0001_c2s1_000013_00.jpg", "bounding_box_test/-1_c1s1_000014_00.jpg"]
    _touch(tmp_path / "m", market)
    save_features(tmp_path / "m.npz", np.array([[0.0], [0.0], [1.0], [2.0]]), market[1:5])
    assert main(["evaluate-features", str(tmp_path / "m.npz"), "--dataset", "market1501", "--root",
                 str(tmp_path / "m"), "--counts", "off", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mean"]["rank1"] == 0.0 and result["mean"]["mAP"] == 50.0
    assert result["settings"]["exclusion"] == "same-id-same-camera" and result["settings"]["junk_dropped"] == 1

    entries = [{"split": "test", "file_path": f"p{pid}/{k}.jpg", "id": pid, "captions": [f"c{pid}a", f"c{pid}b"]}
               for pid in (1, 2, 3) for k in range(2)]
    _touch(tmp_path / "t", [f"imgs/{e['file_path']}" for e in entries])
    (tmp_path / "t" / "reid_raw.json").write_text(json.dumps(entries))
    paths = [f"imgs/{e['file_path']}" for e in entries] + [f"imgs/{e['file_path']}#{k}" for e in entries for k in (0, 1)]
    pid_of = {f"imgs/{e['file_path']}": e["id"] for e in entries}
    # caption features point at their identity's image direction but with a large norm: cosine ignores it,
    # euclidean would not (images of identity 3 have norm 1, the captions of identity 1 norm 10)
    feats = np.stack([np.eye(3)[pid_of[p.split("#")[0]] - 1] * (10.0 if "#" in p else 1.0) for p in paths])
    save_features(tmp_path / "t.npz", feats, paths)
    assert main(["evaluate-features", str(tmp_path / "t.npz"), "--dataset", "cuhk-pedes", "--root",
                 str(tmp_path / "t"), "--counts", "off", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mean"]["rank1"] == 100.0 and result["mean"]["mAP"] == 100.0
    assert result["settings"]["distance"] == "cosine" and result["settings"]["normalize"] is True
    assert result["trials"][0]["num_query"] == 12 and result["trials"][0]["num_gallery"] == 6
    code = main(["evaluate-features", str(tmp_path / "t.npz"), "--dataset", "market1501", "--version", "labeled"])
    assert code == 2 and "--version does not apply to --dataset market1501" in capsys.readouterr().err
