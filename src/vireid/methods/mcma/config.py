"""The recipe of ``vireid train-text`` (MCMA, seeds/002 §6; METHODS.md §15): typed, checked whole at load.

Defaults are METHODS.md's [UNSPEC→...] readings: mask ratio 0.5, a 2-layer decoder shared by the
self- and cross-instance reconstruction, EMA teacher targets, 2-layer MLP predictors, temperature
0.07, total loss = CMPM + ID + L_self + L_cross + L_bisim (all weights 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from vireid.config import RuntimeConfig, Section, load_config


class TextDataConfig(Section):
    dataset: str = "cuhk-pedes"
    """A caption + image reader: cuhk-pedes, icfg-pedes or rstpreid (training split = its ``train`` entries)."""
    root: str = Field(min_length=1)
    height: int = Field(128, ge=16)
    width: int = Field(64, ge=16)
    num_ids: int = Field(8, ge=2)
    """P identities per batch (the bisimulation needs >= 2)."""
    num_instances: int = Field(4, ge=2)
    """K images per identity (>= 2: the cross-instance reconstruction pairs images of one identity)."""
    pad: int = Field(4, ge=0)
    flip: bool = True
    caption_length: int = Field(48, ge=3)
    """Tokens per caption, [CLS] and [SEP] included."""
    vocab_size: int = Field(2000, ge=32)
    """WordPiece vocabulary trained on the training captions (scratch text encoder)."""
    batches_per_epoch: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)


class TextModelConfig(Section):
    arch: str = "mobilenet_v2"
    pretrained: str | None = None
    """Image backbone weights: None, imagenet, imagenet-offline (MobileNetV2) or a state dict file."""
    dim: int = Field(256, ge=8)
    text_model: str | None = None
    """A local Hugging Face model folder (BERT- or CLIP-style) instead of the scratch transformer."""
    text_depth: int = Field(2, ge=1)
    text_pool: Literal["mean", "cls"] = "mean"
    """Global caption embedding of the scratch encoder: mean over valid tokens, or the [CLS] output."""
    text_heads: int = Field(4, ge=1)
    decoder_depth: int = Field(2, ge=1)
    ema_momentum: float = Field(0.99, ge=0.0, lt=1.0)
    mask_ratio: float = Field(0.5, gt=0.0, lt=1.0)


class TextLossConfig(Section):
    match: float = Field(1.0, ge=0.0)
    """CMPM, both directions."""
    match_temperature: float | None = Field(0.1, gt=0.0)
    """CMPM on cosine / temperature (IRRA's scale-free form); None: the original unnormalised image side."""
    identity: float = Field(1.0, ge=0.0)
    """Shared identity classifier on image and text embeddings."""
    self_rec: float = Field(1.0, ge=0.0)
    cross_rec: float = Field(1.0, ge=0.0)
    bisim: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.07, gt=0.0)


class TextOptimConfig(Section):
    lr: float = Field(1e-3, gt=0.0)
    """AdamW learning rate."""
    weight_decay: float = Field(5e-4, ge=0.0)
    epochs: int = Field(5, ge=1)
    warmup_epochs: float = Field(0.0, ge=0.0)
    """Linear warm-up of every learning rate from ~0 over this many epochs (fractions allowed), per step."""
    schedule: Literal["constant", "cosine"] = "constant"
    """After the warm-up: constant, or cosine decay to 0 at the last step."""
    backbone_lr_mult: float = Field(1.0, gt=0.0)
    """Learning-rate factor of the (ImageNet-initialised) image backbone; the rest trains at ``lr``."""

    @model_validator(mode="after")
    def _warmup_fits(self) -> "TextOptimConfig":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be < epochs ({self.epochs})")
        return self


class MCMAConfig(Section):
    name: str = "mcma"
    output_dir: str = "runs"
    data: TextDataConfig
    model: TextModelConfig = Field(default_factory=TextModelConfig)
    loss: TextLossConfig = Field(default_factory=TextLossConfig)
    optim: TextOptimConfig = Field(default_factory=TextOptimConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    def component_errors(self) -> list[str]:
        """The dataset name against the caption readers."""
        valid = ("cuhk-pedes", "icfg-pedes", "rstpreid")
        if self.data.dataset not in valid:
            return [f"data.dataset: {self.data.dataset!r} is not a caption + image dataset; valid: {', '.join(valid)}"]
        return []


def load_mcma_config(path: str | Path | None, overrides: list[str] | None = None) -> MCMAConfig:
    return load_config(path, overrides, cls=MCMAConfig)  # type: ignore[arg-type]
