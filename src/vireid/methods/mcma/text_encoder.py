"""MCMA's text encoders (seeds/002 §6 leaves the text encoder open; METHODS.md §15 "External inputs").

- :class:`TransformerTextEncoder` (default): token + position embeddings, a small pre-norm
  ``nn.TransformerEncoder`` trained from scratch; the global caption embedding ``z^t_glo`` is the
  mean of its outputs over the caption's valid tokens (``pool="mean"``, padding excluded) or the
  ``[CLS]`` output (``pool="cls"``); its tokenizer is :class:`~vireid.methods.mcma.tokenizer.CaptionTokenizer`.
- :class:`HFTextEncoder`: any local Hugging Face text model (BERT-style ``AutoModel``, or the text
  tower of a CLIP model) and its tokenizer, read from a folder with ``local_files_only=True``:
  nothing is ever downloaded. Its ``[CLS]``/pooled output is projected to the shared width.

Both map ``(ids (B, L), mask (B, L))`` to ``(tokens (B, L, D), global (B, D))``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vireid.errors import ConfigError

POOLS = ("mean", "cls")


class TransformerTextEncoder(nn.Module):
    """A small transformer over caption pieces, trained from scratch.

    Args:
        vocab_size: tokenizer vocabulary size. dim: width D. depth: layers. heads: attention heads.
        max_length: longest caption (positions). dropout: inside the layers.
        pool: ``"mean"`` (mean over the valid tokens, [CLS] and [SEP] included) or ``"cls"`` (the [CLS] output).
    """

    def __init__(self, vocab_size: int, *, dim: int = 256, depth: int = 2, heads: int = 4, max_length: int = 64,
                 dropout: float = 0.1, pool: str = "mean") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"text encoder: pool must be one of {POOLS}, got {pool!r}")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dim, self.max_length, self.pool = dim, max_length, pool

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids, (B, L) bool mask (True = token) -> tokens (B, L, D), global (B, D) (mean or [CLS])."""
        if ids.shape[1] > self.max_length:
            raise ValueError(f"captions of {ids.shape[1]} tokens exceed max_length {self.max_length}")
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]  # (B, L, D)
        x = self.norm(self.layers(x, src_key_padding_mask=~mask))  # (B, L, D)
        if self.pool == "cls":
            return x, x[:, 0]
        m = mask.to(x.dtype)[..., None]  # (B, L, 1)
        return x, (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)  # (B, D): padding never enters


class HFTextEncoder(nn.Module):
    """A local Hugging Face text model (``AutoModel`` / CLIP text tower) projected to width ``dim``.

    Args:
        path: folder with ``config.json``, the weights and the tokenizer files (``save_pretrained``).
        dim: output width. freeze: keep the pretrained weights fixed (only the projection trains).
    """

    def __init__(self, path: str | os.PathLike[str], *, dim: int = 256, freeze: bool = False) -> None:
        super().__init__()
        try:
            from transformers import AutoConfig, AutoModel, AutoTokenizer
        except ImportError:
            raise ConfigError("text_model: a Hugging Face model needs `pip install 'vireid[text]'` (transformers)") from None
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ConfigError(f"text_model: {folder} is not a local Hugging Face model folder (no config.json); "
                              "models are never downloaded")
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        if getattr(config, "model_type", "") == "clip":
            from transformers import CLIPTextModel

            self.model = CLIPTextModel.from_pretrained(folder, local_files_only=True)
        else:
            self.model = AutoModel.from_pretrained(folder, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        hidden = int(getattr(self.model.config, "hidden_size", 0) or self.model.config.text_config.hidden_size)
        self.proj = nn.Linear(hidden, dim)
        self.dim = dim
        if freeze:
            self.model.requires_grad_(False)

    def encode(self, captions: Sequence[str], length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (N, length), mask (N, length) bool) from the model's own tokenizer."""
        enc = self.tokenizer(list(captions), padding="max_length", truncation=True, max_length=length,
                             return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L), (B, L) -> tokens (B, L, D), global (B, D) (the first position's output, projected)."""
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        tokens = self.proj(hidden)  # (B, L, D)
        return tokens, tokens[:, 0]
