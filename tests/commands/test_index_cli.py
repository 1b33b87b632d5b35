"""``vireid index build|search|add|delete`` through the command line."""

from __future__ import annotations

import json

from PIL import Image

from vireid.cli import main


def test_build_search_add_delete(tiny_run, tiny_sysu, tmp_path, capsys):
    g = tmp_path / "g"
    assert main(["index", "build", "--run", str(tiny_run), "--run-test-set", "--modality", "visible",
                 "--out", str(g)]) == 0
    assert "wrote" in capsys.readouterr().out
    from pathlib import Path

    from vireid.retrieval.index import GalleryIndex

    query_src = Path(GalleryIndex.open(g).get(1).path)  # a test-set visible image
    # a manifest with times and a track, holding one enlarged copy of a gallery image
    img = Image.open(query_src)
    copy = tmp_path / "new" / "copy.png"
    copy.parent.mkdir()
    img.resize((img.width * 2, img.height * 2)).save(copy)
    manifest = tmp_path / "new" / "m.csv"
    manifest.write_text("path,modality,camera,timestamp,track_id,identity\n"
                        "copy.png,visible,gate,2026-12-01T08:00:00Z,t7,\n")
    assert main(["index", "add", str(g), "--run", str(tiny_run), "--manifest", str(manifest)]) == 0
    capsys.readouterr()
    assert main(["index", "search", str(g), "--run", str(tiny_run), "--query", str(query_src), "--modality",
                 "visible", "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {hits[0]["path"], hits[1]["path"]} == {str(query_src.resolve()), str(copy.resolve())}
    assert main(["index", "search", str(g), "--run", str(tiny_run), "--query", str(query_src), "--modality",
                 "visible", "--since", "2026-12-01", "--camera", "gate", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["track_id"] == "t7" and only["time"] == "2026-12-01T08:00:00+00:00"
    assert main(["index", "delete", str(g), str(only["id"])]) == 0
    assert "removed 1 of 1 ids" in capsys.readouterr().out
    assert main(["index", "search", str(g), "--run", str(tiny_run), "--query", str(query_src), "--modality",
                 "visible", "--camera", "gate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_errors_exit_2_with_one_line(tiny_run, tiny_sysu, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,modality,colour\nx.jpg,visible,red\n")
    assert main(["index", "build", "--run", str(tiny_run), "--manifest", str(bad), "--out", str(tmp_path / "g")]) == 2
    assert "line 2: unknown column(s) ['colour']" in capsys.readouterr().err
    assert main(["index", "build", "--run", str(tiny_run), "--images", str(tiny_sysu), "--out",
                 str(tmp_path / "g")]) == 2
    assert "--images needs --modality" in capsys.readouterr().err
    assert main(["index", "search", str(tmp_path), "--run", str(tiny_run), "--query", "q.jpg",
                 "--modality", "ir"]) == 2
    assert "is not a gallery index" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_rescore_is_refused_for_kinds_other_than_ivfpq(tmp_path, capsys):
    assert main(["index", "build", "--run", str(tmp_path / "run"), "--images", str(tmp_path), "--modality",
                 "visible", "--kind", "hnsw", "--rescore", "4", "--out", str(tmp_path / "g")]) == 2
    assert "--rescore applies to --kind ivfpq only, not hnsw" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
