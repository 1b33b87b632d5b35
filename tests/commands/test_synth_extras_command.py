"""``vireid synth --extras``: the ground-truth sets through the CLI."""

from __future__ import annotations

import json

from vireid.cli import main


def test_synth_extras_writes_the_layouts(tmp_path, capsys):
    out = tmp_path / "extras"
    assert main(["synth", "--out", str(out), "--ids", "6", "--images-per-camera", "2", "--height", "64", "--width",
                 "32", "--extras", "--quiet"]) == 0
    assert "Market-1501:" in capsys.readouterr().out
    coco = json.loads((out / "Market-1501" / "annotations" / "person_keypoints.json").read_text())
    assert len(coco["categories"][0]["keypoints"]) == 17 and len(coco["annotations"][0]["keypoints"]) == 51
    assert (out / "contact_sheet.png").is_file() and (out / "CUHK-PEDES" / "reid_raw.json").is_file()
    assert main(["synth", "--out", str(out), "--ids", "6", "--extras", "--quiet"]) == 2  # not empty, no --force
