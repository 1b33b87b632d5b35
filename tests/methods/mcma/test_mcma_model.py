"""The MCMA network on tiny inputs: shapes, the EMA teacher, the decoder's use of the mask and caption."""

import torch

from vireid.methods.mcma.model import MCMA


def _model():
    torch.manual_seed(0)
    return MCMA(4, vocab_size=30, arch="resnet18", dim=16, text_heads=2, max_length=8, ema_momentum=0.5)


def test_shapes_and_teacher_ema():
    model = _model()
    images, modality = torch.randn(2, 3, 64, 32), torch.zeros(2, dtype=torch.long)
    out = model(images, modality)
    assert out.embedding.shape == (2, 16) and out.logits.shape == (2, 4) and out.extras["tokens"].shape == (2, 8, 16)
    ids = torch.tensor([[2, 5, 6, 3, 0, 0, 0, 0]] * 2)
    tokens, glob = model.encode_text(ids, ids != 0)
    assert tokens.shape == (2, 8, 16) and glob.shape == (2, 16)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    t0 = [p.clone() for p in model.teacher.parameters()]
    with torch.no_grad():
        for p in model.image.parameters():
            p.add_(1.0)
    model.update_teacher()
    for a, t, s in zip(t0, model.teacher.parameters(), model.image.parameters()):
        torch.testing.assert_close(t, 0.5 * a + 0.5 * s)  # m = 0.5


def test_reconstruction_hides_masked_tokens_and_reads_the_caption():
    model = _model().eval()
    tokens, caption = torch.randn(1, 8, 16), torch.randn(1, 16)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 3] = True
    base = model.reconstruct(tokens, mask, caption)
    changed = tokens.clone()
    changed[0, 3] += 10.0  # the hidden token's own value never reaches the decoder
    torch.testing.assert_close(model.reconstruct(changed, mask, caption), base)
    assert not torch.allclose(model.reconstruct(tokens, mask, caption + 1.0), base)  # the caption does


def _mean_offdiagonal_cosine(x: torch.Tensor) -> float:
    c = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    return float(c[~torch.eye(len(x), dtype=torch.bool)].mean())


def test_caption_embeddings_are_not_collapsed_at_initialisation():
    """Different captions must not start at cosine ~1 from each other: the scratch transformer's outputs share the
    [CLS]/position embeddings and the final LayerNorm, so without the text BatchNorm every caption of a batch sat at
    cosine 0.97 from every other one and the cosine matching loss (CMPM / 0.1) barely moved in 120 steps."""
    ids = torch.randint(5, 60, (16, 12), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, 9], ids[:, 10:] = 2, 3, 0  # [CLS] 8 pieces [SEP] [PAD] [PAD]
    for pool in ("mean", "cls"):
        torch.manual_seed(0)
        model = MCMA(4, vocab_size=60, arch="resnet18", dim=32, text_heads=2, max_length=12, text_pool=pool).train()
        with torch.no_grad():
            glob = model.encode_text(ids, ids != 0)[1]
            raw = model.text(ids, ids != 0)[1]  # the encoder's pooled output before the BatchNorm
        assert _mean_offdiagonal_cosine(glob) < 0.1, pool
        if pool == "cls":  # the collapse the BatchNorm removes
            assert _mean_offdiagonal_cosine(raw) > 0.8
