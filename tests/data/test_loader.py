"""ImageDataset, collate_batch, relabel and the train/test loaders on tiny images written with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.loader import (ImageDataset, build_test_loader, build_train_loader, collate_batch, decode_image,
                                relabel)
from vireid.data.augment import AUGMENTATIONS
from vireid.data.transforms import build_test_transform, build_train_transform
from vireid.types import Batch, Modality, Sample
from vireid.errors import DatasetError

H, W = 16, 8


def write_dataset(root: Path, pids: tuple[int, ...] = (7, 105, 33, 12), per_modality: int = 3) -> list[Sample]:
    """Visible RGB JPEGs and infrared single-channel PNGs of random content, 20x10 pixels."""
    rng = np.random.default_rng(0)
    samples = []
    for pid in pids:
        for k in range(per_modality):
            rel = f"cam1/{pid:04d}/{k:04d}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 10, 3), dtype=np.uint8)).save(root / rel, quality=90)
            samples.append(Sample(rel, pid, 1, Modality.VISIBLE, str(root)))
            rel = f"cam3/{pid:04d}/{k:04d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 10), dtype=np.uint8)).save(root / rel)
            samples.append(Sample(rel, pid, 3, Modality.INFRARED, str(root)))
    return samples


@pytest.fixture
def samples(tmp_path: Path) -> list[Sample]:
    return write_dataset(tmp_path)


def test_relabel_sorted_raw_ids() -> None:
    s = [Sample("a", 105, 1, Modality.VISIBLE), Sample("b", 7, 1, Modality.VISIBLE),
         Sample("c", 33, 2, Modality.INFRARED), Sample("d", 7, 2, Modality.INFRARED)]
    assert relabel(s) == {7: 0, 33: 1, 105: 2}
    assert relabel([]) == {}


def test_item_and_collate_to_batch(samples: list[Sample]) -> None:
    ds = ImageDataset(samples, build_test_transform(H, W), pid_map=relabel(samples))
    assert len(ds) == 24
    image, label, camid, modality, index = ds[1]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert (label, camid, modality, index) == (0, 3, 1, 1)  # pid 7 -> 0, infrared cam3
    batch = collate_batch([ds[i] for i in (0, 1, 6)])
    assert isinstance(batch, Batch) and len(batch) == 3
    assert batch.images.shape == (3, 3, H, W) and batch.images.dtype == torch.float32
    for t in (batch.pids, batch.camids, batch.modality, batch.index):
        assert t.shape == (3,) and t.dtype == torch.int64
    assert batch.pids.tolist() == [0, 0, 3] and batch.modality.tolist() == [0, 1, 0]
    assert batch.camids.tolist() == [1, 3, 1] and batch.index.tolist() == [0, 1, 6]
    assert torch.equal(batch.images[2], ds[6][0])
    raw = ImageDataset(samples, build_test_transform(H, W))
    assert raw[6][1] == 105  # no pid_map: raw pids


def test_transform_by_modality(samples: list[Sample]) -> None:
    ds = ImageDataset(samples, build_test_transform(H, W),
                      transform_by_modality={"infrared": lambda img: torch.full((3, 2, 2), 9.0)})
    assert torch.all(ds[1][0] == 9.0) and ds[0][0].shape == (3, H, W)


def test_in_memory_equals_on_disk(samples: list[Sample]) -> None:
    disk = ImageDataset(samples, build_test_transform(H, W))
    mem = ImageDataset(samples, build_test_transform(H, W), in_memory=True, num_threads=2)
    assert mem.in_memory and not disk.in_memory
    for i in range(len(samples)):
        assert mem.load_image(i).mode == disk.load_image(i).mode == ("RGB" if i % 2 == 0 else "L")
        assert np.array_equal(np.asarray(mem.load_image(i)), np.asarray(disk.load_image(i)))
        torch.testing.assert_close(mem[i][0], disk[i][0], rtol=0, atol=0)
        assert mem[i][1:] == disk[i][1:]
    train = build_train_transform(H, W, augments=[AUGMENTATIONS.build("channel_random_erasing"), AUGMENTATIONS.build("channel_exchange")])
    mem_train = ImageDataset(samples, train, in_memory=True)
    torch.manual_seed(0)
    b = [mem_train[i][0] for i in range(6)]
    torch.manual_seed(0)
    c = [train(disk.load_image(i)) for i in range(6)]
    for x, y in zip(b, c):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_missing_and_corrupt_files_name_the_path(samples: list[Sample], tmp_path: Path) -> None:
    bad = Path(samples[2].path)
    bad.write_bytes(b"this is not a jpeg")
    truncated = Path(samples[4].path)
    truncated.write_bytes(truncated.read_bytes()[:60])
    Path(samples[3].path).unlink()
    ds = ImageDataset(samples, build_test_transform(H, W))
    with pytest.raises(DatasetError, match=f"cannot decode image {bad}"):
        ds[2]
    with pytest.raises(DatasetError, match=f"image file not found: {samples[3].path}"):
        ds[3]
    with pytest.raises(DatasetError, match=str(truncated)):
        ds[4]
    with pytest.raises(DatasetError, match=r"3 of 24 images could not be read; first: ") as info:
        ImageDataset(samples, build_test_transform(H, W), in_memory=True)
    for path in (bad, truncated, samples[3].path):
        assert str(path) in str(info.value)
    with pytest.raises(DatasetError, match="not found"):
        decode_image(str(tmp_path / "nope.jpg"))


def test_pid_missing_from_map(samples: list[Sample]) -> None:
    with pytest.raises(DatasetError, match=r"pid missing from pid_map; first: .*0007/0000.jpg \(pid 7\)"):
        ImageDataset(samples, build_test_transform(H, W), pid_map={105: 0})


def _epoch(loader: torch.utils.data.DataLoader, epoch: int) -> list[Batch]:
    loader.batch_sampler.set_epoch(epoch)
    return list(loader)


def test_train_loader_batches(samples: list[Sample]) -> None:
    loader = build_train_loader(samples, height=H, width=W, num_ids=2, num_instances=2, seed=0, num_workers=0,
                                in_memory=True, batches_per_epoch=5,
                                augments=[AUGMENTATIONS.build("channel_random_erasing"), AUGMENTATIONS.build("channel_exchange")])
    assert loader.dataset.pid_map == {7: 0, 12: 1, 33: 2, 105: 3}
    batches = _epoch(loader, 0)
    assert len(batches) == len(loader) == 5
    for b in batches:
        assert b.images.shape == (8, 3, H, W)
        assert b.modality.tolist() == [0] * 4 + [1] * 4
        assert torch.equal(b.pids[:4], b.pids[4:]) and len(set(b.pids.tolist())) == 2
        assert torch.isfinite(b.images).all()
    # visible images went through CA (channels equal in image space), infrared ones did not need it
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    raw = batches[0].images[0] * std + mean  # (3, H, W)
    torch.testing.assert_close(raw[0], raw[2], atol=1e-5, rtol=0)
    ranks = [build_train_loader(samples, height=H, width=W, num_ids=2, num_instances=2, seed=0, num_workers=0,
                                num_replicas=2, rank=r, batches_per_epoch=5) for r in range(2)]
    assert [len(r) for r in ranks] == [2, 2]


def test_train_loader_reproducible_with_workers(samples: list[Sample]) -> None:
    def run(seed: int) -> list[Batch]:
        loader = build_train_loader(samples, height=H, width=W, num_ids=2, num_instances=2, seed=seed,
                                    num_workers=2, in_memory=False, batches_per_epoch=4)
        assert loader.persistent_workers
        return _epoch(loader, 0) + _epoch(loader, 1)

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b):
        assert torch.equal(x.index, y.index)
        torch.testing.assert_close(x.images, y.images, rtol=0, atol=0)
    assert not all(torch.equal(x.images, y.images) for x, y in zip(a, c))
    assert not torch.equal(a[0].index, a[4].index)  # epochs differ


def test_test_loader_keeps_order_and_last_batch(samples: list[Sample]) -> None:
    loader = build_test_loader(samples, height=H, width=W, batch_size=5, num_workers=0, in_memory=False)
    batches = list(loader)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 4]
    assert torch.cat([b.index for b in batches]).tolist() == list(range(24))
    assert torch.cat([b.pids for b in batches]).tolist() == [s.pid for s in samples]
    again = torch.cat([b.images for b in loader])  # deterministic
    torch.testing.assert_close(torch.cat([b.images for b in batches]), again, rtol=0, atol=0)
