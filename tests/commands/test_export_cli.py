"""``vireid export``: writes an ONNX file that ONNX Runtime runs like PyTorch; errors exit 2."""

from __future__ import annotations

import onnx

from vireid.cli import main


def test_export_writes_metadata_and_checks_parity(tiny_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--run", str(tiny_run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parity: max |onnxruntime - pytorch| = " in printed and "(<= 0.0001)" in printed
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert set(meta) == {"vireid.preprocessing", "vireid.fingerprint", "vireid.model", "vireid.embedding"}
    assert '"height": 64' in meta["vireid.preprocessing"] and '"mean": [0.485, 0.456, 0.406]' in meta["vireid.preprocessing"]
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["images", "modality"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch


def test_export_errors_exit_2(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "is not a vireid run folder" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
