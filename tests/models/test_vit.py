"""The re-ID ViT backbone: patch grid, modality embedding, timm equivalence, pretrained loading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vireid.errors import ConfigError
from vireid.models.vit import OverlapPatchEmbed, ReIDViT, ViTReID, attention_probs, patch_grid
from vireid.models.vit_weights import load_vit_weights, resize_pos_embed

TINY = {"arch": "vit_cpu", "depth": 2}


def _timm_vit(embed_dim: int = 128, depth: int = 2, heads: int = 4, img: int = 224, patch: int = 16):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(3)
    return VisionTransformer(img_size=img, patch_size=patch, embed_dim=embed_dim, depth=depth, num_heads=heads,
                             mlp_ratio=2.0, num_classes=10).eval()


@pytest.mark.parametrize("h,w,p,s,grid", [
    (256, 128, 16, 12, (21, 10)),  # TransReID / CMTR ViT-B/16 at 256x128: 210 patches
    (256, 128, 16, 16, (16, 8)),  # non-overlapping: the seed's (H/P)(W/P)
    (64, 32, 8, 6, (10, 5)),  # the CPU recipes
    (65, 33, 8, 6, (10, 5)),  # floor: a 1-pixel remainder adds no patch
    (16, 16, 16, 12, (1, 1)),
])
def test_overlapping_patch_count(h: int, w: int, p: int, s: int, grid: tuple[int, int]) -> None:
    assert patch_grid((h, w), p, s) == grid  # (floor((H-P)/S)+1, floor((W-P)/S)+1), METHODS.md §6
    emb = OverlapPatchEmbed((h, w), p, s, 3, 8)
    tokens = emb(torch.randn(2, 3, h, w))
    windows = F.unfold(torch.zeros(1, 3, h, w), kernel_size=p, stride=s).shape[-1]  # independent count
    assert tokens.shape == (2, grid[0] * grid[1], 8) and windows == grid[0] * grid[1]


def test_patch_errors() -> None:
    with pytest.raises(ConfigError, match="smaller than one 16x16 patch"):
        patch_grid((8, 32), 16, 12)
    emb = OverlapPatchEmbed((64, 32), 8, 6, 3, 8)
    with pytest.raises(ConfigError, match=r"built for 64x32 images .* got 128x64; set model.params.img_size"):
        emb(torch.randn(1, 3, 128, 64))
    with pytest.raises(ConfigError, match="unknown arch 'vit_huge'; valid: vit_base"):
        ReIDViT("vit_huge")


def test_pos_embed_interpolation_equals_a_reference_bicubic_resize() -> None:
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 14 * 14, 32)
    out = resize_pos_embed(pos, (21, 10))
    grid = pos[:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)  # (1, D, 14, 14)
    ref = F.interpolate(grid, size=(21, 10), mode="bicubic", align_corners=False)  # (1, D, 21, 10)
    ref = torch.cat([pos[:, :1], ref.permute(0, 2, 3, 1).reshape(1, 210, 32)], dim=1)
    assert out.shape == (1, 211, 32)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert torch.equal(out[:, 0], pos[:, 0])  # [cls] untouched
    with pytest.raises(ConfigError, match="not a square grid"):
        resize_pos_embed(torch.randn(1, 1 + 15, 4), (3, 3))


def test_same_tokens_as_timm_vision_transformer_with_its_weights(tmp_path: Path) -> None:
    """Non-overlapping patches at timm's input size and timm's weights: ReIDViT == timm's forward_features."""
    ref = _timm_vit()
    path = tmp_path / "vit.pth"
    torch.save(ref.state_dict(), path)
    model = ReIDViT("vit_cpu", img_size=(224, 224), patch_size=16, stride=16, modality_embed=False, depth=2,
                    drop_path=0.0, pretrained=str(path)).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.tensor([0, 1])), ref.forward_features(x), rtol=1e-5, atol=1e-5)


def test_timm_checkpoint_loads_with_resized_positions_and_reports_new_keys(tmp_path: Path, caplog) -> None:
    ref = _timm_vit()
    state = ref.state_dict()
    path = tmp_path / "vit.pth"
    torch.save(state, path)
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=16, stride=12, depth=2)
    with caplog.at_level(logging.INFO, logger="vireid.models.vit_weights"):
        missing, unexpected = load_vit_weights(model, path)
    assert missing == ["modality_embed"] and unexpected == []  # head.* dropped, the ME is new
    assert "new, randomly initialised: ['modality_embed']" in caplog.text
    assert model.grid_size == (5, 2)
    torch.testing.assert_close(model.pos_embed.data, resize_pos_embed(state["pos_embed"], (5, 2)))
    assert torch.equal(model.patch_embed.proj.weight, state["patch_embed.proj.weight"])  # 16x16 kernel, stride 12
    assert torch.equal(model.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])


def test_jx_vit_format_wrapped_and_flattened_projection(tmp_path: Path) -> None:
    """The original release as TransReID reads it: a (D, C*P*P) projection, a wrapper dict, DDP prefixes."""
    state = _timm_vit().state_dict()
    jx = {f"module.{k}": v for k, v in state.items()}
    jx["module.patch_embed.proj.weight"] = state["patch_embed.proj.weight"].reshape(128, -1)  # (D, 3*16*16)
    jx["module.pre_logits.fc.weight"] = torch.zeros(128, 128)
    path = tmp_path / "jx_vit.pth"
    torch.save({"model": jx}, path)
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=16, stride=12, depth=2, pretrained=str(path))
    assert torch.equal(model.patch_embed.proj.weight, state["patch_embed.proj.weight"])
    assert torch.equal(model.cls_token, state["cls_token"])


def test_missing_keys_are_reported(tmp_path: Path, caplog) -> None:
    state = {k: v for k, v in _timm_vit().state_dict().items() if not k.startswith("blocks.1.")}
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=16, stride=12, depth=2)
    with caplog.at_level(logging.WARNING, logger="vireid.models.vit_weights"):
        missing, _ = load_vit_weights(model, path)
    assert "blocks.1.attn.qkv.weight" in missing
    assert "missing keys (left at random init)" in caplog.text and "blocks.1.norm1.weight" in caplog.text


def test_bad_checkpoints_are_config_errors(tmp_path: Path) -> None:
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=16, stride=12, depth=2)
    with pytest.raises(ConfigError, match=r"pretrained='/nope/vit.pth': no such file .*never downloads"):
        load_vit_weights(model, "/nope/vit.pth")
    small = tmp_path / "small.pth"
    torch.save(_timm_vit(embed_dim=64, heads=2).state_dict(), small)
    with pytest.raises(ConfigError, match=r"does not fit this ViT \(embed_dim 128.*cls_token \(1, 1, 64\) vs model "
                                          r"\(1, 1, 128\)"):
        load_vit_weights(model, small)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ConfigError, match="none of the 1 keys is a ViT key"):
        load_vit_weights(model, other)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read a checkpoint"):
        load_vit_weights(model, junk)


def test_missing_pretrained_file_is_exit_2_through_the_cli(tiny_sysu: Path, tmp_path: Path, capsys) -> None:
    import yaml

    from vireid.cli import main

    cfg = {"name": "vit", "output_dir": str(tmp_path),
           "data": {"dataset": "sysu-mm01", "root": str(tiny_sysu), "height": 64, "width": 32, "num_ids": 2,
                    "num_instances": 2, "num_workers": 0, "val_fraction": 0.25},
           "model": {"name": "vit", "params": {"arch": "vit_cpu", "img_size": [64, 32], "patch_size": 8,
                                               "stride": 6, "pretrained": str(tmp_path / "absent.pth")}},
           "runtime": {"device": "cpu"}}
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "absent.pth" in err and "no such file" in err and "Traceback" not in err


def test_modality_embedding_is_added_to_every_token() -> None:
    torch.manual_seed(0)
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=8, stride=6, depth=1).eval()
    x = torch.randn(1, 3, 64, 32).expand(2, -1, -1, -1)
    tokens = model.embed(x, torch.tensor([0, 1]))  # (2, 51, D): same image, visible and infrared
    diff = model.modality_embed[1] - model.modality_embed[0]  # (D,)
    torch.testing.assert_close(tokens[1] - tokens[0], diff.expand(51, -1), rtol=0, atol=1e-6)
    plain = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=8, stride=6, depth=1, modality_embed=False)
    assert plain.modality_embed is None


def test_attention_probs_reproduce_the_block_attention() -> None:
    torch.manual_seed(0)
    model = ReIDViT("vit_cpu", img_size=(64, 32), patch_size=8, stride=6, depth=1).eval()
    block = model.blocks[0]
    x = block.norm1(model.embed(torch.randn(2, 3, 64, 32), torch.tensor([0, 1])))  # (2, 51, D)
    probs = attention_probs(block.attn, x)  # (2, heads, 51, 51)
    assert probs.shape == (2, 4, 51, 51)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 51))
    v = block.attn.qkv(x).reshape(2, 51, 3, 4, 32).permute(2, 0, 3, 1, 4)[2]  # (2, h, T, d)
    out = block.attn.proj((probs @ v).transpose(1, 2).reshape(2, 51, 128))
    torch.testing.assert_close(out, block.attn(x), rtol=1e-4, atol=1e-5)
    tokens, attn = model.forward_tokens(torch.randn(2, 3, 64, 32), torch.tensor([0, 1]), return_attention=True)
    assert attn.shape == (2, 4, 51, 51) and tokens.shape == (2, 51, 128)


def test_modality_embedding_gets_gradients_and_nothing_is_nan() -> None:
    torch.manual_seed(0)
    model = ViTReID(4, arch="vit_cpu", img_size=(64, 32), patch_size=8, stride=6, depth=2, modality_embed=True)
    out = model(torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 0, 1]))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and bool(torch.isfinite(p.grad).all()) and p.grad.abs().sum() > 0, name
    assert out.features.shape == out.bn_features.shape == (4, 128)
