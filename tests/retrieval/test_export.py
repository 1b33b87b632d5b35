"""ONNX export: ONNX Runtime matches PyTorch (max |diff| <= 1e-4) on both modalities and ranks alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vireid
import vireid.methods  # noqa: F401  (registers agw, mrda, ...)
from vireid.models import create_model, list_models
from vireid.retrieval.embedder import OnnxEmbedder, TorchEmbedder
from vireid.retrieval.export import ExportError, ExportableEmbedding, export_onnx, why_not_exportable
from vireid.retrieval.preprocess import Preprocessing

EXPORTED = ("agw", "baseline", "cmlsp", "cmtr", "maum", "mrda", "sap", "vit")  # each trained tiny (tests/conftest.py TINY_MODELS) and checked below
# registered models that cannot be exported, with the reason
NOT_EXPORTABLE: dict[str, str] = {
    "hicmd": "HiCMD has no TwoStreamResNet backbone; its forward cannot be split per modality (the exporter's ExportError)",
    "spot": "reads keypoint heatmaps (aux_inputs); the exported graph takes images and modality only",
}
# registered models whose export has not been checked yet (no tiny run in TINY_MODELS): not claimed either way
NOT_CHECKED: dict[str, str] = {
    "msclnet": "eval mode is a two-stream ResNet + GeM + BNNeck like agw, but no ONNX parity test has been run",
    "nformer": "eval mode (the CNN embedding) as agw; the test-time refinement needs the whole set, never exported",
    "mos": "a backbone + average pooling like agw, but retrieval reads g (SetOutput.embedding = features): no ONNX parity test run",
}


def test_every_registered_model_is_covered(tiny_model_params):
    missing = set(list_models()) - set(EXPORTED) - set(NOT_EXPORTABLE) - set(NOT_CHECKED)
    assert not missing, f"add {sorted(missing)} to EXPORTED (and TINY_MODELS in tests/conftest.py) or NOT_EXPORTABLE"
    assert set(EXPORTED) <= set(tiny_model_params)


def _test_images(run):
    from vireid.commands._common import load_run_config
    from vireid.engine.build import build_dataset_from_config

    test = build_dataset_from_config(load_run_config(run).data).test
    return test


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_matches_pytorch_and_ranks_alike(name, tiny_run_factory, tmp_path):
    run = tiny_run_factory(name)
    out = tmp_path / f"{name}.onnx"
    torch_model = vireid.load(run)
    from vireid.api import load_run_model

    model, spec, model_name, _ = load_run_model(run)
    meta = export_onnx(model, spec, out, model_name=model_name)
    onnx_model = vireid.load(out)
    assert isinstance(onnx_model, OnnxEmbedder) and onnx_model.spec == spec
    assert onnx_model.fingerprint == torch_model.fingerprint == meta["vireid.fingerprint"]
    test = _test_images(run)
    ir = [s.path for s in test if s.modality == 1]
    vis = [s.path for s in test if s.modality == 0]
    for paths, modality in ((ir, "infrared"), (vis, "visible")):
        a, b = torch_model.embed(paths, modality), onnx_model.embed(paths, modality)
        assert np.abs(a - b).max() <= 1e-4, (name, modality, np.abs(a - b).max())
    # identical rankings of the synthetic test set, infrared queries -> visible gallery
    rank_torch = np.argsort(-torch_model.embed(ir, 1) @ torch_model.embed(vis, 0).T, axis=1, kind="stable")
    rank_onnx = np.argsort(-onnx_model.embed(ir, 1) @ onnx_model.embed(vis, 0).T, axis=1, kind="stable")
    np.testing.assert_array_equal(rank_torch, rank_onnx)
    # dynamic batch and mixed modalities in one batch
    mixed = [ir[0], vis[0], ir[1]]
    for bs in (1, 2, 5):
        onnx_model.batch_size = bs
        np.testing.assert_allclose(onnx_model.embed(mixed, [1, 0, 1]), torch_model.embed(mixed, [1, 0, 1]), atol=1e-4)


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Eval-mode model whose BatchNorm statistics are not the identity (as after training)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name,params", [
    ("agw", {"arch": "resnet18", "non_local": True}),  # non-local blocks
    ("agw", {"arch": "mobilenet_v2"}),  # the two-stream MobileNetV2 backbone
    ("mrda", {"arch": "resnet18", "attention": "cbam", "use_mrm": True}),
    ("mrda", {"arch": "resnet18", "attention": "iwpam", "size": (96, 48)}),  # 6x3 map: 3 parts divide 6 rows
    ("mrda", {"arch": "resnet18", "attention": "dam", "dam_mode": "route_kv", "dam_qk_channels": 16, "dam_k": 2}),
])
def test_variants_export_with_parity(name, params, tmp_path):
    torch.manual_seed(0)
    params = dict(params)
    height, width = params.pop("size", (64, 32))
    model = _randomised(create_model(name, num_classes=0, **params))
    spec = Preprocessing(height=height, width=width)
    out = tmp_path / "m.onnx"
    export_onnx(model, spec, out, model_name=name)
    assert not model.training  # the exporter must not flip the caller's model into training mode
    model.train()
    export_onnx(model, spec, out, model_name=name)
    assert model.training
    model.eval()
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (80, 40, 3), dtype=np.uint8) for _ in range(4)]
    ref = TorchEmbedder(model, spec, model_name=name).embed(images, [0, 1, 1, 0])
    got = OnnxEmbedder(out).embed(images, [0, 1, 1, 0])
    assert np.abs(ref - got).max() <= 1e-4


def test_iwpam_with_parts_not_dividing_the_map_is_refused_clearly(tmp_path):
    # IWPAM pools the map into `iwpa_parts` rows with adaptive average pooling; the ONNX exporter only
    # expresses that when the parts divide the map height (64x32 input -> 4 rows, 3 parts: refused)
    model = _randomised(create_model("mrda", num_classes=0, arch="resnet18", attention="iwpam"))
    with pytest.raises(ExportError, match="cannot export mrda at 64x32: Unsupported: ONNX export of operator "
                                          "adaptive_avg_pool2d, output size that are not factor of input size"):
        export_onnx(model, Preprocessing(height=64, width=32), tmp_path / "m.onnx", model_name="mrda")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_wrapper_equals_model_forward_and_refuses_other_models():
    torch.manual_seed(0)
    model = _randomised(create_model("baseline", num_classes=3, arch="resnet18"))
    x, mod = torch.randn(4, 3, 32, 16), torch.tensor([1, 0, 0, 1])
    with torch.no_grad():
        emb, raw = ExportableEmbedding(model)(x, mod)
        ref = model(x, mod).bn_features
    torch.testing.assert_close(raw, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb, torch.nn.functional.normalize(ref, dim=1), atol=1e-6, rtol=1e-5)
    assert "no TwoStreamResNet backbone" in why_not_exportable(torch.nn.Linear(2, 2))
    with pytest.raises(ExportError, match="cannot export: Linear has no TwoStreamResNet backbone"):
        ExportableEmbedding(torch.nn.Linear(2, 2))


def test_onnx_without_vireid_metadata_is_refused(tmp_path):
    out = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(out), dynamo=False)
    with pytest.raises(ExportError, match="has no vireid.preprocessing, vireid.fingerprint metadata"):
        vireid.load(out)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ExportError, match="is not a loadable ONNX model"):
        vireid.load(tmp_path / "junk.onnx")


@pytest.mark.parametrize("name", sorted(NOT_EXPORTABLE))
def test_a_model_that_cannot_be_exported_says_why(name, tiny_model_kwargs):
    model = create_model(name, num_classes=0, **tiny_model_kwargs.get(name, {"arch": "resnet18"}))
    assert why_not_exportable(model) is not None
    with pytest.raises(ExportError, match="cannot export"):
        ExportableEmbedding(model)
