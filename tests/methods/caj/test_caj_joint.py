"""CAJ's joint-learning batch augmentation (seeds/001 §8): layout [x^v, x~^v, x^r], labels and the copies."""

from __future__ import annotations


import torch

from vireid.data.batch_augment import build_batch_augment, list_batch_augments
from vireid.methods.caj.joint import caj_joint
from vireid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vireid.types import Batch
from vireid.losses import build_loss
from vireid.models import create_model

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)




def _sampler_batch(p: int = 2, k: int = 2, h: int = 16, w: int = 8) -> Batch:
    """P ids x (K visible + K infrared), visible half first, position i of each half the same id."""
    torch.manual_seed(0)
    pids = torch.tensor([i for i in range(p) for _ in range(k)] * 2) + 10
    n = p * k
    pixels = torch.rand(2 * n, 3, h, w)
    return Batch(images=(pixels - MEAN) / STD, pids=pids, camids=torch.arange(2 * n) % 6,
                 modality=torch.tensor([0] * n + [1] * n), index=torch.arange(100, 100 + 2 * n))


def test_layout_labels_and_pairing() -> None:
    batch = _sampler_batch()
    n = 4
    out = build_batch_augment("caj_joint", seed=0)(batch)
    assert out.images.shape == (3 * n, 3, 16, 8)
    assert out.pids.tolist() == batch.pids[:n].tolist() * 2 + batch.pids[n:].tolist()  # [y^v, y^v, y^r]
    assert out.modality.tolist() == [0] * (2 * n) + [1] * n  # the copies run through the visible stream
    assert out.index[n:2 * n].tolist() == out.index[:n].tolist() == batch.index[:n].tolist()  # copy i <- row i
    assert out.camids[n:2 * n].tolist() == batch.camids[:n].tolist()
    assert torch.equal(out.images[:n], batch.images[:n])  # x^v unchanged
    assert torch.equal(out.images[2 * n:], batch.images[n:])  # x^r unchanged
    assert not torch.equal(out.images[n:2 * n], batch.images[:n])
    assert torch.equal(batch.images, _sampler_batch().images)  # the input batch is not modified


def test_copies_are_single_channel_images_in_pixel_space() -> None:
    batch = _sampler_batch()
    out = caj_joint(erase_p=0.0, seed=1)(batch)
    pixels = out.images[4:8] * STD + MEAN  # (4, 3, H, W)
    source = batch.images[:4] * STD + MEAN
    for i in range(4):  # each copy is (x^c, x^c, x^c) for one channel c of its source
        assert torch.allclose(pixels[i, 0], pixels[i, 1], atol=1e-5) and torch.allclose(pixels[i, 0], pixels[i, 2],
                                                                                          atol=1e-5)
        assert any(torch.allclose(pixels[i, 0], source[i, c], atol=1e-5) for c in range(3))


def test_erasing_writes_channel_means_and_exchange_p_zero_keeps_colour() -> None:
    batch = _sampler_batch()
    out = caj_joint(exchange_p=0.0, erase_p=1.0, erase_area=(0.2, 0.2), seed=2)(batch)
    copies, source = out.images[4:8], batch.images[:4]
    changed = copies != source  # (4, 3, H, W)
    assert bool(changed.any(dim=(2, 3)).all())  # every channel of every copy got one rectangle
    for i in range(4):
        for c in range(3):
            values = copies[i, c][changed[i, c]].unique()
            torch.testing.assert_close(values, source[i, c].mean().view(1))  # filled with the channel mean


def test_seeded_draws_repeat_and_global_rng_draws_follow_torch_seed() -> None:
    batch = _sampler_batch()
    a = caj_joint(seed=5)(batch).images
    b = caj_joint(seed=5)(batch).images
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = caj_joint()(batch).images
    torch.manual_seed(3)
    d = caj_joint()(batch).images
    assert torch.equal(c, d)


def test_general_modality_order_and_registration() -> None:
    batch = _sampler_batch()
    perm = torch.tensor([4, 0, 5, 1, 6, 2, 7, 3])  # interleaved modalities
    mixed = Batch(batch.images[perm], batch.pids[perm], batch.camids[perm], batch.modality[perm], batch.index[perm])
    out = caj_joint(seed=0)(mixed)
    assert out.index.tolist() == [100, 101, 102, 103, 100, 101, 102, 103, 104, 105, 106, 107]
    assert "caj_joint" in list_batch_augments()


def test_a_training_step_on_the_joint_batch() -> None:
    batch = caj_joint(seed=0)(_sampler_batch(h=64, w=32))
    torch.manual_seed(0)
    model = create_model("agw", num_classes=12, arch="resnet18").train()
    out = model(batch.images, batch.modality)
    assert out.logits.shape == (12, 12)  # one shared classifier for the three views
    loss = build_loss("cross_entropy")(out, batch) + build_loss("wrt_squared")(out, batch)
    loss.backward()
    assert bool(torch.isfinite(loss))
