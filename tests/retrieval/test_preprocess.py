"""One preprocessing for every input form, equal to the loader's test transform."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.loader import decode_image
from vireid.data.transforms import build_test_transform
from vireid.retrieval.preprocess import ImageInputError, Preprocessing, load_image, preprocess_images


def _picture(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(array).save(path)
    return array, path


def test_every_input_form_gives_the_loaders_tensor(tmp_path):
    array, path = _picture(tmp_path)
    spec = Preprocessing(height=16, width=8)
    forms = [str(path), path, path.read_bytes(), Image.open(path), array, array.astype(np.float32) / 255.0,
             torch.from_numpy(array).permute(2, 0, 1), torch.from_numpy(array).permute(2, 0, 1).float() / 255.0]
    got = preprocess_images(forms, spec)  # (8, 3, 16, 8)
    reference = build_test_transform(16, 8)(decode_image(str(path)))  # what vireid test feeds the model
    assert got.shape == (8, 3, 16, 8) and got.dtype == torch.float32
    for row in got:
        torch.testing.assert_close(row, reference, rtol=0, atol=0)


def test_single_channel_infrared_is_replicated(tmp_path):
    gray = np.arange(200, dtype=np.uint8).reshape(20, 10)
    x = preprocess_images([gray], Preprocessing(height=20, width=10))[0]
    # channel c = (g/255 - mean_c) / std_c, so the un-normalised channels are equal
    mean, std = torch.tensor(Preprocessing(1, 1).mean), torch.tensor(Preprocessing(1, 1).std)
    pixels = x * std[:, None, None] + mean[:, None, None]
    torch.testing.assert_close(pixels[0], pixels[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(pixels[0], torch.from_numpy(gray).float() / 255, atol=1e-6, rtol=0)


def test_spec_round_trips_and_rejects_foreign_records():
    spec = Preprocessing(height=288, width=144)
    assert Preprocessing.from_json(spec.to_json()) == spec
    with pytest.raises(ImageInputError, match="channel_order BGR|expected pixel_range 0-255, channel_order RGB"):
        Preprocessing.from_json(spec.to_json().replace('"RGB"', '"BGR"'))
    with pytest.raises(ImageInputError, match="malformed"):
        Preprocessing.from_json("{}")


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(ImageInputError, match="image file not found: .*missing.png"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageInputError, match="cannot decode image <bytes>"):
        load_image(b"not an image")
    with pytest.raises(ImageInputError, match=r"got shape \(2, 3, 4, 5\)"):
        load_image(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ImageInputError, match=r"finite values in \[0, 1\]"):
        load_image(np.full((4, 4), 2.0, np.float32))
    with pytest.raises(ImageInputError, match="unsupported image input int"):
        load_image(3)


def test_import_vireid_stays_light():
    code = "import sys, vireid; assert callable(vireid.load) or True; print('torch' in sys.modules)"
    light = "import sys, vireid; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", light], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
