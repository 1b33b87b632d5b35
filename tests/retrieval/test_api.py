"""``vireid.load(...).embed``: every input form gives the features the evaluation path computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vireid
from vireid.errors import ConfigError
from vireid.types import Modality


def _test_samples(run, modality):
    from vireid.commands._common import load_run_config
    from vireid.engine.build import build_dataset_from_config

    cfg = load_run_config(run)
    return cfg, [s for s in build_dataset_from_config(cfg.data).test if s.modality == modality][:6]


def test_embed_paths_arrays_tensors_agree_with_extract_features(tiny_run):
    from vireid.api import load_run_model
    from vireid.engine.inference import extract_features
    from vireid.engine.runtime import Runtime

    model = vireid.load(tiny_run)
    cfg, samples = _test_samples(tiny_run, Modality.INFRARED)
    paths = [s.path for s in samples]
    by_path = model.embed(paths, "infrared")  # (6, D)
    assert by_path.dtype == np.float32 and by_path.shape == (6, 512)
    np.testing.assert_allclose(np.linalg.norm(by_path, axis=1), 1.0, atol=1e-6)
    arrays = [np.array(Image.open(p)) for p in paths]
    tensors = [torch.from_numpy(a).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a) for a in arrays]
    # same pixels in (tested in test_preprocess); the CPU kernels may round differently between calls
    np.testing.assert_allclose(model.embed(arrays, Modality.INFRARED), by_path, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.embed(tensors, 1), by_path, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.embed(paths[0], "ir"), by_path[:1], atol=1e-6, rtol=0)  # a single image
    # the independent reference: the DataLoader path that `vireid test` scores, normalised here
    torch_model, _, _, _ = load_run_model(tiny_run)
    ref = extract_features(torch_model, samples, cfg.data, Runtime(torch.device("cpu")), batch_size=4)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(by_path, ref, atol=1e-5, rtol=0)


def test_batching_modality_per_image_and_flip(tiny_run):
    model = vireid.load(tiny_run, batch_size=2)
    _, vis = _test_samples(tiny_run, Modality.VISIBLE)
    _, ir = _test_samples(tiny_run, Modality.INFRARED)
    paths = [vis[0].path, ir[0].path, vis[1].path]
    mixed = model.embed(paths, ["visible", "infrared", "visible"])
    np.testing.assert_allclose(mixed[[0, 2]], model.embed([paths[0], paths[2]], "visible"), atol=1e-6)
    np.testing.assert_allclose(mixed[1], model.embed(paths[1], "infrared")[0], atol=1e-6)
    # flip: normalise(raw(x) + raw(mirror x)), with raw() the un-normalised post-BN feature
    x = model.embed(paths[0], "visible", flip=True)[0]
    mirrored = np.asarray(Image.open(paths[0]))[:, ::-1].copy()
    raw = model._raw_features
    from vireid.retrieval.preprocess import preprocess_images

    a = raw(preprocess_images([paths[0]], model.spec), np.array([0]))[0]
    b = raw(preprocess_images([mirrored], model.spec), np.array([0]))[0]
    expected = (a + b) / np.linalg.norm(a + b)
    np.testing.assert_allclose(x, expected, atol=1e-5)


def test_load_errors_are_clear(tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="does not exist"):
        vireid.load(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="is not a vireid run folder"):
        vireid.load(tmp_path)
    from vireid.retrieval.preprocess import ImageInputError

    with pytest.raises(ImageInputError, match="got 1 modalities for 2 images"):
        vireid.load(tiny_run).embed([np.zeros((8, 4), np.uint8)] * 2, ["visible"])
    with pytest.raises(ImageInputError, match="unknown modality 'uv'"):
        vireid.load(tiny_run).embed(np.zeros((8, 4), np.uint8), "uv")
